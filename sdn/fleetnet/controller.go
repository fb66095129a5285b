// Package fleetnet is the manager side of fleet networks: the controller
// that keeps which hosts are members of which network (sdn/ipam's leases
// and each member engine's copy of the network), deploys the agent on
// every host and tells it what to apply, and answers the fleet-network
// side of the network routes as plain Go methods (the HTTP stays in
// proxy). It may import hosts; sdn/ipam, sdn/dns, sdn/vxlan and sdn/agent
// may not. See README.md for the flow.
//
//	docker network create ─▶ Controller.Create ─▶ ipam.Create (no engine touched)
//	docker run/create ─▶ CreateStep: validate --ip, prepare (pin or allow),
//	                     bind: join c.Host (ipam.Join + engine copy), DNS
//	docker network connect ─▶ Controller.Connect (join) ─▶ forwarded by proxy
//	Run: agent states pushed on every change; idle members leave after the grace
//	rm ─▶ Controller.Remove: refused while a copy has endpoints, copies, ipam.Remove
package fleetnet

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/keylock"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/ipam"
)

// LeaveGrace is how long a host stays a member of a network with no
// container on it after it last joined: a create that joined may still be
// on its way to the engine.
const LeaveGrace = 30 * time.Second

// builtinNetworks are the networks every engine has of its own.
var builtinNetworks = map[string]bool{"bridge": true, "host": true, "none": true}

// Controller keeps the fleet's networks: their member hosts, the engines'
// copies, and the agents that carry them across hosts. It is complete when
// made by New; its loops run only in Run (and agents only once StartAgents
// deployed them).
type Controller struct {
	fleet *hosts.Fleet
	alloc *ipam.Allocator
	log   *slog.Logger

	// mu orders membership changes: joins hold it for reading and run at
	// once (two joins of one host to one network take turns, on
	// copyLocks); a leave, an undone join, a removal or a prune holds it
	// for writing, alone.
	mu sync.RWMutex
	// copyLocks serialise the joins of one host to one network ("ID/host"),
	// its lease and its engine's copy.
	copyLocks keylock.Map
	// joined is the last join of each host to each network ("ID/host"):
	// a host is not made to leave while a create that joined may still be
	// on its way to the engine, nor by the undo of a join another one
	// followed. Joins write it under marksMu.
	marksMu sync.Mutex
	joined  map[string]joinMark
	joinSeq uint64

	changed chan struct{} // the desired agent states may have changed
	agents  *agents
	pushMu  sync.Mutex // one writer of the agents' states at a time (Run, Sync)
}

// joinMark is one join of a host to a network.
type joinMark struct {
	at  time.Time
	seq uint64
}

// New makes the controller of the networks alloc keeps over fleet, and
// registers its metrics on reg (nil: none). It starts nothing.
func New(fleet *hosts.Fleet, alloc *ipam.Allocator, log *slog.Logger, reg prometheus.Registerer) (*Controller, error) {
	c := &Controller{
		fleet:   fleet,
		alloc:   alloc,
		log:     log,
		joined:  map[string]joinMark{},
		changed: make(chan struct{}, 1),
		agents:  &agents{hosts: map[string]*agentHost{}},
	}
	if reg != nil {
		if err := reg.Register(collector{c}); err != nil {
			return nil, fmt.Errorf("fleet network metrics: %w", err)
		}
	}
	return c, nil
}

// Allocator is the allocator the controller keeps the networks in.
func (c *Controller) Allocator() *ipam.Allocator { return c.alloc }

// Changed tells the agent loop that the desired state may have changed
// (a container connected to or disconnected from a fleet network).
func (c *Controller) Changed() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Network is the fleet network ref names (ID, name or ID prefix); false
// for the built-in networks and for HOST/NAME, which names a network of
// one host.
func (c *Controller) Network(ref string) (sdn.Network, bool) {
	if builtinNetworks[ref] {
		return sdn.Network{}, false
	}
	if hn, name, ok := strings.Cut(ref, "/"); ok && name != "" {
		if _, ok := c.fleet.Host(hn); ok {
			return sdn.Network{}, false
		}
	}
	n, err := c.alloc.Get(ref)
	return n, err == nil
}

// Run keeps the fleet's networks until ctx ends: it writes each agent's
// state whenever it changes (on Changed, and when a host's cache moves:
// containers started, stopped, connected), deploys the agent on hosts
// that have none (once StartAgents ran), reads the agents' DNS counts,
// and makes idle members leave after LeaveGrace.
func (c *Controller) Run(ctx context.Context) {
	go c.statsLoop(ctx, 10*time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	idle := time.NewTicker(LeaveGrace / 3)
	defer idle.Stop()
	var last uint64
	full := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
		case <-idle.C:
			c.LeaveIdle(ctx)
			continue
		case <-tick.C:
			var gen uint64
			for _, h := range c.fleet.Hosts() {
				gen += h.Generation()
			}
			if gen == last && time.Since(full) < 5*time.Second {
				continue
			}
			last = gen
		}
		full = time.Now()
		if c.agents.started() {
			c.pushMu.Lock()
			c.pushAgentStates(ctx)
			c.pushMu.Unlock()
		}
	}
}

// --- membership --------------------------------------------------------------

// joined is what one join did, for its undo.
type joined struct {
	network  sdn.Network
	host     *hosts.Host
	slice    sdn.HostSlice
	mark     joinMark
	newHost  bool // the host was not a member before
	madeCopy bool // the engine's copy was made by this join
}

// Connect makes h a member of n for a container of h that `network
// connect` joins to it, with the addresses it asks for (--ip, --ip6).
// The proxy forwards the connect itself, then calls Changed.
func (c *Controller) Connect(ctx context.Context, n sdn.Network, h *hosts.Host, ips Addrs) error {
	if err := checkAddrs(n, ips); err != nil {
		return err
	}
	_, err := c.join(ctx, n, h, ips)
	return err
}

// join makes h a member of n: its slice, and its engine's copy of the
// network. The agents are told. An address asked for (--ip, --ip6) must
// lie in h's slice, for the engine hands out no other: otherwise nothing
// is made and the error is a 400.
func (c *Controller) join(ctx context.Context, n sdn.Network, h *hosts.Host, ips Addrs) (joined, error) {
	for _, ip := range ips.list() {
		if sub, ok := n.SubnetOf(ip); !ok || !sub.Contains(ip.Unmap()) {
			return joined{}, outsideSubnet(ip)
		}
	}
	key := n.ID + "/" + h.Name
	c.mu.RLock()
	defer c.mu.RUnlock()
	defer c.copyLocks.Lock(key)()
	if cur, err := c.alloc.Get(n.ID); err == nil {
		n = cur
	}
	_, wasMember := n.Hosts[h.Name]
	sl, err := c.alloc.Join(n.ID, h.Name)
	if err != nil {
		return joined{}, err
	}
	for _, ip := range ips.list() {
		if sl.Holds(ip) {
			continue
		}
		if !wasMember {
			_ = c.alloc.Leave(n.ID, h.Name)
		}
		sub, _ := n.SubnetOf(ip)
		rng := sl.IPRange
		if ip.Unmap().Is6() {
			rng = sl.IPRange6
		}
		return joined{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
			"Invalid address %s: fleet network %s hands out %s on host %s (each host has its slice of %s): "+
				"pick an address there, or place the container on the host whose slice holds %s",
			ip, n.Name, rng, h.Name, sub, ip))
	}
	j := joined{host: h, slice: sl, newHost: !wasMember, mark: c.markJoin(key)}
	if n, err = c.alloc.Get(n.ID); err != nil {
		return joined{}, err
	}
	j.network = n
	// A failure on the engine leaves no lease a host did not hold.
	fail := func(err error) (joined, error) {
		if !wasMember {
			_ = c.alloc.Leave(n.ID, h.Name)
			c.marksMu.Lock()
			delete(c.joined, key)
			c.marksMu.Unlock()
		}
		return joined{}, err
	}
	_, ok, err := inspectCopy(ctx, h, n)
	if err != nil {
		return fail(err)
	}
	if ok {
		c.Changed()
		return j, nil
	}
	if err := createCopy(ctx, h, n); err != nil {
		return fail(err)
	}
	j.madeCopy = true
	c.log.Info("fleet network joined", "network", n.Name, "host", h.Name, "range", sl.Ranges(), "gateway", sl.Gateway)
	c.Changed()
	return j, nil
}

// markJoin records a join of the host and network of key, now.
func (c *Controller) markJoin(key string) joinMark {
	c.marksMu.Lock()
	defer c.marksMu.Unlock()
	c.joinSeq++
	m := joinMark{at: time.Now(), seq: c.joinSeq}
	c.joined[key] = m
	return m
}

// unjoin undoes j for a create that failed after it: the engine's copy
// j made is removed and a host j made a member leaves, unless another
// join of that host followed j or a container is on the copy.
func (c *Controller) unjoin(ctx context.Context, j joined) {
	if !j.newHost && !j.madeCopy {
		return
	}
	n, h := j.network, j.host
	key := n.ID + "/" + h.Name
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joined[key] != j.mark {
		return // another create or connect joined since: it may need both
	}
	info, ok, err := inspectCopy(ctx, h, n)
	if err != nil || ok && len(info.containers) > 0 {
		c.log.Debug("fleet network join not undone", "network", n.Name, "host", h.Name, "err", err)
		return
	}
	if ok && j.madeCopy {
		if err := removeCopy(ctx, h, n, info); err != nil {
			c.log.Warn("fleet network copy not removed", "network", n.Name, "host", h.Name, "err", err)
			return
		}
	}
	if j.newHost {
		if err := c.alloc.Leave(n.ID, h.Name); err != nil {
			c.log.Warn("fleet network leave", "network", n.Name, "host", h.Name, "err", err)
			return
		}
		delete(c.joined, key)
		c.log.Info("fleet network join undone", "network", n.Name, "host", h.Name)
	}
	c.Changed()
}

// LeaveIdle makes hosts leave the networks none of their containers (in
// any state) is on any more, after LeaveGrace: their engine's copy is
// removed and their slice freed; the agents are told. Run calls it.
func (c *Controller) LeaveIdle(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	used := map[string]map[string]bool{} // host → network names
	for _, h := range c.fleet.Hosts() {
		used[h.Name] = map[string]bool{}
		for _, ctr := range h.Containers() {
			if ctr.Summary.NetworkSettings != nil {
				for name := range ctr.Summary.NetworkSettings.Networks {
					used[h.Name][name] = true
				}
			}
		}
	}
	left := false
	for _, n := range c.alloc.List() {
		for _, host := range n.Members() {
			h, ok := c.fleet.Host(host)
			if !ok || !h.Healthy() || used[host][n.Name] || time.Since(c.joined[n.ID+"/"+host].at) < LeaveGrace {
				continue
			}
			info, ok, err := inspectCopy(ctx, h, n)
			if err != nil || ok && len(info.containers) > 0 {
				continue
			}
			if ok {
				if err := removeCopy(ctx, h, n, info); err != nil {
					c.log.Debug("fleet network copy kept", "network", n.Name, "host", host, "err", err)
					continue
				}
			}
			if err := c.alloc.Leave(n.ID, host); err != nil {
				c.log.Warn("fleet network leave", "network", n.Name, "host", host, "err", err)
				continue
			}
			delete(c.joined, n.ID+"/"+host)
			c.log.Info("fleet network left", "network", n.Name, "host", host)
			left = true
		}
	}
	if left {
		c.Changed()
	}
}

// outsideSubnet is Docker's error for an address outside the network.
func outsideSubnet(ip netip.Addr) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
		"Invalid address %s: It does not belong to any of this network's subnets", ip))
}
