package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/scheduler"
)

// Placement in the proxy: turn a create body into a scheduler.Request, the
// fleet into []scheduler.Node, and hold a reservation on the chosen host
// until its cache shows the container.
//
//	create body ─► placementRequest ─┐
//	fleet caches ─► placer.nodes ────┼─► Strategy.Decide ─► reserve ─► forward ─► Refresh ─► release
//	                pending creates ─┘         (under placer.mu: decide + reserve are one step)

func newPlacer() *placer {
	return &placer{snaps: map[*hosts.Host]*hostSnap{}, pending: map[string][]*reservation{}}
}

// placer serializes decisions: each sees the reservations of those before
// it, so concurrent creates never double-book a host.
type placer struct {
	mu      sync.Mutex
	buf     []scheduler.Node // nodes' output, reused
	snaps   map[*hosts.Host]*hostSnap
	pending map[string][]*reservation // by host name
}

// hostSnap is a host's node as of one cache generation: rebuilt only when
// the host's containers, facts or health change.
type hostSnap struct {
	gen  uint64
	node scheduler.Node
	// extra memoizes what only inspect tells (CPU shares, port bindings of
	// containers not running), by container ID and inspect body.
	extra map[string]inspectExtra
}

// has reports whether the snapshot holds a container of this name.
func (s *hostSnap) has(name string) bool {
	if name == "" {
		return false
	}
	for i := range s.node.Items {
		if s.node.Items[i].Name == name {
			return true
		}
	}
	return false
}

type inspectExtra struct {
	raw    []byte // the inspect body it was read from (identity)
	shares int64
	ports  []scheduler.Port
}

// reservation is a placed create the host's cache does not show yet.
type reservation struct {
	host     string
	mem, cpu int64
	ports    []scheduler.Port
	item     scheduler.Container
}

// WarmPlacement builds every host's placement snapshot now, so that the
// first create after a start does not pay for all of them (half a second
// at a thousand hosts).
func (s *Server) WarmPlacement() {
	all := s.Fleet.Hosts()
	s.placer.mu.Lock()
	defer s.placer.mu.Unlock()
	s.placer.nodes(all, make([]bool, len(all)), false)
}

// nodes builds the fleet's snapshot with the pending creates folded in.
// Called with p.mu held; the slice is reused by the next call (decisions
// are made one at a time and keep no reference to it), sparing the heap a
// thousand nodes per create.
func (p *placer) nodes(all []*hosts.Host, hasImage []bool, withUsage bool) []scheduler.Node {
	p.buf = slices.Grow(p.buf[:0], len(all))[:len(all)]
	out := p.buf
	for i, h := range all {
		gen := h.Generation()
		snap := p.snaps[h]
		if snap == nil || snap.gen != gen {
			snap = buildSnap(h, gen, snap)
			p.snaps[h] = snap
		}
		n := snap.node // a copy; its maps and slices stay shared and read only
		n.Healthy = h.Healthy()
		n.Draining = h.Draining()
		n.HasImage = hasImage[i]
		if withUsage {
			if u, ok := h.Usage(); ok {
				n.Usage = scheduler.Usage{Known: true, CPU: u.CPU, Memory: u.Memory}
			}
		}
		if rs := p.pending[h.Name]; len(rs) > 0 {
			n.Items = slices.Clip(n.Items) // appends copy, the snapshot stays
			copied := false
			for _, r := range rs {
				if snap.has(r.item.Name) {
					continue // the cache shows it already: count it once
				}
				n.Pending++
				n.Containers++
				n.Running++
				n.ReservedMemory += r.mem
				n.ReservedNanoCPUs += r.cpu
				n.Items = append(n.Items, r.item)
				if len(r.ports) > 0 && !copied {
					n.Ports, copied = maps.Clone(n.Ports), true
					if n.Ports == nil {
						n.Ports = map[scheduler.Port]struct{}{}
					}
				}
				for _, pt := range r.ports {
					n.Ports[pt] = struct{}{}
				}
			}
		}
		out[i] = n
	}
	if len(p.snaps) > len(all) { // a host left the fleet
		live := make(map[*hosts.Host]bool, len(all))
		for _, h := range all {
			live[h] = true
		}
		for h := range p.snaps {
			if !live[h] {
				delete(p.snaps, h)
			}
		}
	}
	return out
}

// buildSnap reads one host's cache into a node.
func buildSnap(h *hosts.Host, gen uint64, prev *hostSnap) *hostSnap {
	f := h.Facts()
	snap := &hostSnap{gen: gen, extra: map[string]inspectExtra{}}
	n := scheduler.Node{Name: h.Name, NCPU: f.NCPU, MemTotal: f.MemTotal, Labels: hostLabels(h)}
	cs := h.Containers()
	n.Items = make([]scheduler.Container, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		if IsAgent(c) {
			continue // Clocker's agent takes no slot of max-containers or headroom
		}
		x := inspectExtraOf(c, prev)
		snap.extra[c.Summary.ID] = x
		n.Containers++
		n.ReservedMemory += c.Memory
		cpu := c.NanoCPUs
		if cpu == 0 && x.shares > 0 && x.shares < 1024 {
			cpu = x.shares * 1e9 // -c as CPUs, as Swarm counted it
		}
		n.ReservedNanoCPUs += cpu
		state := c.Summary.State
		if state != container.StateExited && state != container.StateDead {
			n.Running++
		}
		var ports []scheduler.Port
		if state == container.StateCreated {
			ports = x.ports // not published until it starts, but it will be
		} else {
			for _, pt := range c.Summary.Ports {
				if pt.PublicPort != 0 {
					ports = append(ports, scheduler.Port{Proto: pt.Type, Port: pt.PublicPort})
				}
			}
		}
		if len(ports) > 0 && n.Ports == nil {
			n.Ports = map[scheduler.Port]struct{}{}
		}
		for _, pt := range ports {
			n.Ports[pt] = struct{}{}
		}
		name := ""
		if len(c.Summary.Names) > 0 {
			name = strings.TrimPrefix(c.Summary.Names[0], "/")
		}
		n.Items = append(n.Items, scheduler.Container{ID: c.Summary.ID, Name: name, Image: c.Summary.Image,
			Labels: c.Summary.Labels, Group: scheduler.GroupOf(c.Summary.Labels)})
	}
	snap.node = n
	return snap
}

// inspectExtraOf reads CPU shares and port bindings from a container's
// cached inspect body, reusing the previous snapshot's answer when the body
// is the same one.
func inspectExtraOf(c *hosts.Container, prev *hostSnap) inspectExtra {
	if len(c.Inspect) == 0 {
		return inspectExtra{}
	}
	if prev != nil {
		if x, ok := prev.extra[c.Summary.ID]; ok && len(x.raw) == len(c.Inspect) && &x.raw[0] == &c.Inspect[0] {
			return x
		}
	}
	var in struct {
		HostConfig struct {
			CPUShares    int64 `json:"CpuShares"`
			PortBindings map[string][]struct{ HostPort string }
		}
	}
	x := inspectExtra{raw: c.Inspect}
	if json.Unmarshal(c.Inspect, &in) == nil {
		x.shares = in.HostConfig.CPUShares
		for key, bs := range in.HostConfig.PortBindings {
			_, proto, _ := strings.Cut(key, "/")
			for _, b := range bs {
				if p, ok := hostPort(b.HostPort, proto); ok {
					x.ports = append(x.ports, p)
				}
			}
		}
	}
	return x
}

// hostPort parses a binding's host port; ranges and "0" (any) take no one
// port.
func hostPort(s, proto string) (scheduler.Port, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return scheduler.Port{}, false
	}
	if proto == "" {
		proto = "tcp"
	}
	return scheduler.Port{Proto: proto, Port: uint16(n)}, true
}

// ownEngineLabels are the labels the engine was started with (--label).
func ownEngineLabels(f hosts.Facts) map[string]string {
	m := make(map[string]string, len(f.Labels)+3)
	for _, kv := range f.Labels {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// engineLabels are the engine's labels as a map, with the attributes Swarm
// matched as labels when the engine does not set them itself.
func engineLabels(f hosts.Facts) map[string]string {
	m := ownEngineLabels(f)
	var info struct{ Driver, KernelVersion, OperatingSystem string }
	if len(f.Info) > 0 && json.Unmarshal(f.Info, &info) == nil {
		for k, v := range map[string]string{"storagedriver": info.Driver, "kernelversion": info.KernelVersion, "operatingsystem": info.OperatingSystem} {
			if _, set := m[k]; !set && v != "" {
				m[k] = v
			}
		}
	}
	return m
}

// placementRequest reads what placement needs from a create body: resources,
// published host ports, labels, and the Swarm and Clocker expressions. It
// returns the env without the constraint:/affinity: entries and whether
// any were removed. A malformed expression is a 400.
func placementRequest(name string, spec *container.CreateRequest) (scheduler.Request, []string, bool, error) {
	req := scheduler.Request{Name: name, Image: spec.Image, Labels: spec.Labels}
	pl, env, err := scheduler.ParsePlacement(spec.Env, spec.Labels)
	if err != nil {
		return req, nil, false, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	req.Constraints, req.Affinities, req.Rules, req.Chain = pl.Constraints, pl.Affinities, pl.Rules, pl.Chain
	req.Group = scheduler.GroupOf(spec.Labels)
	if hc := spec.HostConfig; hc != nil {
		req.Memory, req.NanoCPUs, req.CPUShares = hc.Memory, hc.NanoCPUs, hc.CPUShares
		if req.Memory < 0 || req.NanoCPUs < 0 || req.CPUShares < 0 {
			return req, nil, false, errdefs.New(errdefs.ErrInvalid, "memory, CPUs and CPU shares cannot be negative")
		}
		if hc.NetworkMode != "host" {
			seen := map[scheduler.Port]bool{}
			for port, bs := range hc.PortBindings {
				for _, b := range bs {
					if p, ok := hostPort(b.HostPort, string(port.Proto())); ok && !seen[p] {
						seen[p] = true
						req.Ports = append(req.Ports, p)
					}
				}
			}
		}
	}
	return req, env, len(env) != len(spec.Env), nil
}

// imagePresence tells, per host, whether it holds the image: from the
// host's image cache when it knows, else by asking the healthy hosts whose
// cache cannot tell (at once).
func (s *Server) imagePresence(ctx context.Context, all []*hosts.Host, image string) []bool {
	out := make([]bool, len(all))
	if image == "" {
		return out
	}
	var ask []int
	ref := hosts.ParseImageRef(image)
	for i, h := range all {
		if has, known := h.HasImageRef(ref); known {
			out[i] = has
			continue
		}
		if h.Healthy() {
			ask = append(ask, i)
		}
	}
	if len(ask) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, i := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, status, err := all[i].GetJSON(ctx, "/images/"+image+"/json", nil)
			out[i] = err == nil && status == http.StatusOK
		}()
	}
	wg.Wait()
	return out
}

// decide runs the strategy over the fleet and, unless dry, reserves the
// chosen host; release gives the reservation back (call it once the host's
// cache shows the container, or the create failed).
func (s *Server) decide(ctx context.Context, req *scheduler.Request, dry bool) (d *scheduler.Decision, h *hosts.Host, release func(), err error) {
	all := s.Fleet.Hosts()
	hasImage := make([]bool, len(all))
	if req.Image == "" {
		for i := range hasImage {
			hasImage[i] = true
		}
	} else {
		hasImage = s.imagePresence(ctx, all, req.Image)
	}
	p := s.placer
	start := time.Now()
	p.mu.Lock()
	nodes := p.nodes(all, hasImage, s.Strategy.NeedsUsage() || (req.Chain != nil && req.Chain.NeedsUsage()))
	if dry {
		d, err = s.Strategy.Explain(req, nodes)
	} else {
		d, err = s.Strategy.Decide(req, nodes)
	}
	var r *reservation
	if err == nil && !dry {
		r = &reservation{host: d.Hosts[0].Host, mem: req.Memory, cpu: req.CPUs(), ports: req.Ports,
			item: scheduler.Container{Name: req.Name, Image: req.Image, Labels: req.Labels, Group: req.Group}}
		p.pending[r.host] = append(p.pending[r.host], r)
	}
	p.mu.Unlock()
	s.metrics.observePlacement(d, err, dry, time.Since(start))
	if err != nil {
		return d, nil, func() {}, err
	}
	release = func() {}
	if r != nil {
		release = sync.OnceFunc(func() { p.release(r) })
	}
	for _, c := range all {
		if c.Name == d.Hosts[0].Host {
			h = c
		}
	}
	if h == nil {
		release()
		return d, nil, func() {}, errdefs.New(errdefs.ErrUnavailable, "host "+d.Hosts[0].Host+" left the fleet")
	}
	return d, h, release, nil
}

func (p *placer) release(r *reservation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.pending[r.host]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(p.pending, r.host)
	} else {
		p.pending[r.host] = rs
	}
}

// placementError maps a "no host fits" to Docker's answer: 404 "No such
// image" when pulling would make a host fit (the CLI pulls and retries),
// else the scheduler's error (409, or 503 when no host is healthy).
func placementError(err error, image string) error {
	var nf *scheduler.NoHostFitsError
	if errors.As(err, &nf) && nf.ImageMissing {
		return errdefs.NoSuchImage(image)
	}
	return err
}

// placementDryRun answers POST /v1/fleet/placement: the body is a
// container-create body; the answer ranks the hosts with their scores and
// says why each other host was turned down. Nothing is created.
func (s *Server) placementDryRun(w http.ResponseWriter, r *http.Request) error {
	_, spec, err := s.readCreateBody(r)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	req, _, _, err := placementRequest(name, &spec)
	if err != nil {
		return err
	}
	pins, err := s.pins(r.Context(), &spec)
	if err != nil {
		return err
	}
	req.Pins = pins
	d, _, _, err := s.decide(r.Context(), &req, true)
	out := struct {
		*scheduler.Decision
		// Host is where the container would go ("" when no host fits).
		Host string `json:"Host"`
		// Status and Error are what the create would answer when no host
		// fits.
		Status int    `json:"Status,omitempty"`
		Error  string `json:"Error,omitempty"`
	}{Decision: d}
	if out.Hosts == nil {
		out.Hosts = []scheduler.Candidate{}
	}
	if out.Rejected == nil {
		out.Rejected = []scheduler.Rejection{}
	}
	if err != nil {
		perr := placementError(err, spec.Image)
		out.Status, out.Error = statusOf(perr), perr.Error()
	} else {
		out.Host = d.Hosts[0].Host
	}
	return writeJSON(w, http.StatusOK, out)
}
