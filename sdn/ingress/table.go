package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// Config configures a Table.
type Config struct {
	// Address is where the manager listens for published ports, and what
	// inspect, `docker port` and `docker ps` show.
	Address net.IP
	// PortMin and PortMax bound the ports the manager picks for -P, -p 80
	// and HostPort "0".
	PortMin, PortMax uint16
	// Local reports whether a host publishes its ports in the manager's
	// own network namespace, where no forward is needed (default: a unix
	// socket engine, or one at a loopback or local address).
	Local func(*hosts.Host) bool
	// Mode is how ports are forwarded: ModeAuto (iptables DNAT when it
	// can, else userland), ModeKernel or ModeUserland (the default when
	// empty).
	Mode string
	// Instance names this manager's iptables chains, the same across its
	// restarts (serve uses its first listen address).
	Instance string
}

// Table is the fleet's published host ports and the forwards that reach
// them: who holds each port (a container in the caches, or a create in
// flight), and one forward per held port of a container on a healthy,
// remote host. A nil *Table is the ingress turned off: its methods then
// do nothing, and addresses are shown as the hosts' own.
type Table struct {
	cfg   Config
	shown string // the address as inspect shows it
	fwd   Forwards
	fleet *hosts.Fleet
	log   *slog.Logger
	// local reports whether a host publishes in the manager's network
	// namespace (tests replace it).
	local func(*hosts.Host) bool

	mu     sync.Mutex
	closed bool                       // Close ran: the forwards are gone
	held   map[Key]portHolder         // by containers in the caches
	claims map[Key]*portClaim         // by creates in flight
	next   uint16                     // where the next random search starts
	hosts  map[*hosts.Host]*hostEntry // each host's ports, by cache generation
	failed map[Key]string             // listeners that could not be bound, by the error last logged
	locals map[*hosts.Host]bool       // t.local's answers
	done   chan struct{}              // closed once Close has closed every forward

	// Claims in the store the fleet's managers share (Share); nil: this
	// manager alone hands out ports.
	shared      hosts.NameStore
	sharedOwner string
	sharedTTL   time.Duration
}

// portHolder is the container that holds a published port.
type portHolder struct {
	id, name, host string
	target         string // host IP:port while it runs ("" when local)
	local          bool
	running        bool
	service        string // the compose service it is a replica of, if any
}

// replaces tells which of two containers that ask one port gets it: the
// one holding it keeps it; else (a manager that just started) a running
// one before a created one (a compose service's replacement, created
// while the old container still runs).
func replaces(hd, prev, holder portHolder) bool {
	switch {
	case prev.id == holder.id:
		return false
	case hd.id == holder.id:
		return true
	}
	return hd.running && !prev.running
}

// portClaim is a port held by a create the caches do not show yet.
type portClaim struct{ name string }

// createdPorts memoizes a created container's explicit bindings, by the
// inspect body they were read from.
type createdPorts struct {
	raw  []byte
	keys []Key
}

// NewTable opens the forwards of cfg.Address, registers their metrics on
// reg (may be nil) and re-establishes the forwards of every container in
// the fleet's caches (fill them first). It starts nothing: Run keeps the
// table in step with the caches.
func NewTable(fleet *hosts.Fleet, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Table, error) {
	if cfg.Address == nil {
		return nil, errors.New("ingress: no address")
	}
	if cfg.PortMin == 0 || cfg.PortMax < cfg.PortMin {
		return nil, fmt.Errorf("ingress: bad port range %d-%d", cfg.PortMin, cfg.PortMax)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mode := cfg.Mode
	if mode == "" {
		mode = ModeUserland
	}
	fwd, err := Start(cfg.Address, ForwardsConfig{Mode: mode, Instance: cfg.Instance, Options: Options{Log: log}})
	if err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	t := &Table{
		cfg:    cfg,
		shown:  cfg.Address.String(),
		fwd:    fwd,
		fleet:  fleet,
		log:    log,
		local:  cfg.Local,
		held:   map[Key]portHolder{},
		claims: map[Key]*portClaim{},
		next:   cfg.PortMin,
		hosts:  map[*hosts.Host]*hostEntry{},
		failed: map[Key]string{},
		locals: map[*hosts.Host]bool{},
		done:   make(chan struct{}),
	}
	if t.local == nil {
		t.local = publishesLocally
	}
	if cfg.Address.IsUnspecified() {
		t.shown = "0.0.0.0"
	}
	if reg != nil {
		if err := reg.Register(Collector{F: t.fwd}); err != nil {
			fwd.CloseAll()
			return nil, fmt.Errorf("ingress metrics: %w", err)
		}
	}
	t.reconcile()
	return t, nil
}

// Mode is how published ports are forwarded: "kernel", "userland", or ""
// with ingress off.
func (t *Table) Mode() string {
	if t == nil {
		return ""
	}
	return t.fwd.Mode()
}

// Run reconciles whenever a host's cache moves, until ctx ends; then it
// closes every forward (Close).
func (t *Table) Run(ctx context.Context) {
	defer t.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// Generations only grow: their sum and the number of hosts move
	// whenever a cache, a host's health or the fleet changes.
	var last [2]uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		all := t.fleet.Hosts()
		now := [2]uint64{uint64(len(all)), 0}
		for _, h := range all {
			now[1] += h.Generation()
		}
		if now == last {
			continue
		}
		last = now
		t.reconcile()
	}
}

// Close closes every forward (kernel mode: removes its iptables rules);
// the table forwards nothing more and refuses new claims. Run calls it
// when its ctx ends; call it when Run never started.
func (t *Table) Close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.fwd.CloseAll()
	close(t.done)
}

// Wait waits until Close has closed every forward, at most d.
func (t *Table) Wait(d time.Duration) {
	if t == nil {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
	}
}

// publishesLocally reports whether a host's published ports are in the
// manager's own network namespace: a unix socket, or an engine at a
// loopback or local address.
func publishesLocally(h *hosts.Host) bool {
	if h.Endpoint.Network != "tcp" {
		return true
	}
	ip := net.ParseIP(h.Endpoint.IP())
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// isLocal is t.local, asked once per host. Called with t.mu held.
func (t *Table) isLocal(h *hosts.Host) bool {
	l, ok := t.locals[h]
	if !ok {
		l = t.local(h)
		t.locals[h] = l
	}
	return l
}

// wildcardIP is a binding on every address of its host: the kind the
// ingress forwards.
func wildcardIP(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

func wildcardAddr(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }

// reconcile makes the listeners match the caches: one per port of every
// created or running container on a healthy host, pointed at the host
// while the container runs; every other listener not claimed by a create
// in flight is closed.
func (t *Table) reconcile() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	want := map[Key]portHolder{}
	all := t.fleet.Hosts()
	live := make(map[*hosts.Host]bool, len(all))
	for _, h := range all {
		live[h] = true
		if !h.Healthy() {
			continue // its forwards go; they come back with the host
		}
		for _, hp := range t.hostPorts(h) {
			k, hd := hp.key, hp.holder
			if prev, dup := want[k]; dup && !replaces(hd, prev, t.held[k]) {
				continue
			}
			want[k] = hd
		}
	}
	for h := range t.hosts {
		if !live[h] {
			delete(t.hosts, h)
			delete(t.locals, h)
		}
	}
	t.held = want
	for k, hd := range want {
		if hd.local {
			continue
		}
		if err := t.fwd.Open(k); err != nil {
			if msg := err.Error(); t.failed[k] != msg {
				t.failed[k] = msg
				t.log.Warn("ingress: cannot listen for a published port", "port", k.String(), "container", hd.name, "host", hd.host, "err", err)
			}
			continue
		}
		delete(t.failed, k)
		t.fwd.SetTarget(k, hd.target)
	}
	for _, k := range t.fwd.Keys() {
		if hd, ok := want[k]; (ok && !hd.local) || t.claims[k] != nil {
			continue
		}
		t.fwd.Close(k)
	}
	for k := range t.failed {
		if _, ok := want[k]; !ok {
			delete(t.failed, k)
		}
	}
}

// publishedPort is one published port of a host's container.
type publishedPort struct {
	key    Key
	holder portHolder
}

// hostEntry is a host's published ports as of one cache generation.
type hostEntry struct {
	gen     uint64
	ports   []publishedPort
	created map[string]createdPorts // by container ID
}

// hostPorts lists the ports a host's created and running containers
// publish, recomputed only when the host's cache has moved.
func (t *Table) hostPorts(h *hosts.Host) []publishedPort {
	gen := h.Generation()
	prev := t.hosts[h]
	if prev != nil && prev.gen == gen {
		return prev.ports
	}
	e := &hostEntry{gen: gen, created: map[string]createdPorts{}}
	local := t.isLocal(h)
	ip := h.Endpoint.IP()
	for _, c := range h.Containers() {
		var keys []Key
		running := false
		switch c.Summary.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			running = true
			for _, p := range c.Summary.Ports {
				k := Key{Proto: protoOf(p.Type), Port: p.PublicPort}
				if p.PublicPort != 0 && wildcardAddr(p.IP) && !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		case container.StateCreated:
			var old map[string]createdPorts
			if prev != nil {
				old = prev.created
			}
			keys = createdKeys(&c, old, e.created)
		default:
			continue
		}
		name := ""
		if len(c.Summary.Names) > 0 {
			name = strings.TrimPrefix(c.Summary.Names[0], "/")
		}
		for _, k := range keys {
			hd := portHolder{id: c.ID(), name: name, host: h.Name, local: local, running: running, service: labels.ComposeReplicaOf(c.Summary.Labels)}
			if running && !local {
				hd.target = net.JoinHostPort(ip, strconv.Itoa(int(k.Port)))
			}
			e.ports = append(e.ports, publishedPort{key: k, holder: hd})
		}
	}
	t.hosts[h] = e
	return e.ports
}

// createdKeys reads a created container's explicit host ports from its
// cached inspect (it publishes nothing until it starts, but holds them),
// reusing the previous answer for the same inspect body.
func createdKeys(c *hosts.Container, prev, next map[string]createdPorts) []Key {
	if len(c.Inspect) == 0 {
		return nil
	}
	if m, ok := prev[c.ID()]; ok && len(m.raw) == len(c.Inspect) && &m.raw[0] == &c.Inspect[0] {
		next[c.ID()] = m
		return m.keys
	}
	var in struct {
		HostConfig struct {
			NetworkMode  container.NetworkMode
			PortBindings network.PortMap
		}
	}
	var keys []Key
	if json.Unmarshal(c.Inspect, &in) == nil && in.HostConfig.NetworkMode != "host" {
		for port, bs := range in.HostConfig.PortBindings {
			for _, b := range bs {
				if n, err := strconv.ParseUint(b.HostPort, 10, 16); err == nil && n > 0 && wildcardAddr(b.HostIP) {
					k := Key{Proto: protoOf(string(port.Proto())), Port: uint16(n)}
					if !slices.Contains(keys, k) {
						keys = append(keys, k)
					}
				}
			}
		}
	}
	next[c.ID()] = createdPorts{raw: c.Inspect, keys: keys}
	return keys
}

func protoOf(p string) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(p)
}

// CheckStart refuses, as an engine does, the start of a container whose
// published host port another container holds (a stopped container holds
// none, so another may have taken it).
func (t *Table) CheckStart(c *hosts.Container) error {
	if t == nil {
		return nil
	}
	keys := createdKeys(c, nil, map[string]createdPorts{})
	t.reconcile()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if hd, ok := t.held[k]; ok && hd.id != c.ID() {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated (by container %q on host %s)", k.Port, hd.name, hd.host))
		}
		if cl := t.claims[k]; cl != nil {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated (by container %q, being created)", k.Port, cl.name))
		}
	}
	return nil
}
