package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn/ingress"
)

// Ingress: published ports reachable at Clocker's own address.
//
//	create ─► ingressCreate: ports checked fleet-wide, random ones allocated,
//	          the manager's ports bound, bindings made explicit ─► engine
//	host caches (Generation) ─► reconcile: a listener per published port of
//	          every created or running container, pointed at host IP:port
//	          while it runs; closed when it stops, is removed, or its host
//	          is down
//	inspect / ps ─► HostIp shown as the ingress address
//
// A host that publishes in the manager's own network namespace (a unix
// socket engine, or one at a local address) gets no listener: its port is
// already there. Its ports are held fleet-wide all the same.
//
// The forwards are sdn/ingress's: iptables DNAT rules (kernel mode) or
// userland listeners; this file only opens, points and closes them.

// IngressConfig configures the ingress of published ports.
type IngressConfig struct {
	// Address is where the manager listens for published ports, and what
	// inspect, `docker port` and `docker ps` show.
	Address net.IP
	// PortMin and PortMax bound the ports the manager picks for -P, -p 80
	// and HostPort "0".
	PortMin, PortMax uint16
	// Registerer receives the ingress metrics (may be nil).
	Registerer prometheus.Registerer
	// Local reports whether a host publishes its ports in the manager's
	// own network namespace, where no forward is needed (default: a unix
	// socket engine, or one at a loopback or local address).
	Local func(*hosts.Host) bool
	// Mode is how ports are forwarded: ingress.ModeAuto (iptables DNAT
	// when it can, else userland), ModeKernel or ModeUserland (the
	// default when empty).
	Mode string
	// Instance names this manager's iptables chains, the same across its
	// restarts (serve uses its first listen address).
	Instance string
}

// ingressTable is the fleet's published host ports and the listeners that
// forward them.
type ingressTable struct {
	cfg   IngressConfig
	shown string // the address as inspect shows it
	fwd   ingress.Forwards
	s     *Server
	// local reports whether a host publishes in the manager's network
	// namespace (tests replace it).
	local func(*hosts.Host) bool

	mu     sync.Mutex
	held   map[ingress.Key]portHolder // by containers in the caches
	claims map[ingress.Key]*portClaim // by creates in flight
	next   uint16                     // where the next random search starts
	hosts  map[*hosts.Host]*hostEntry // each host's ports, by cache generation
	failed map[ingress.Key]string     // listeners that could not be bound, by the error last logged
	locals map[*hosts.Host]bool       // t.local's answers
	done   chan struct{}              // closed once run has closed every forward
}

// portHolder is the container that holds a published port.
type portHolder struct {
	id, name, host string
	target         string // host IP:port while it runs ("" when local)
	local          bool
}

// portClaim is a port held by a create the caches do not show yet.
type portClaim struct{ name string }

// createdPorts memoizes a created container's explicit bindings, by the
// inspect body they were read from.
type createdPorts struct {
	raw  []byte
	keys []ingress.Key
}

// EnableIngress turns on the forwarding of published ports, re-establishes
// the forwards of every container in the caches, and keeps them in step
// with the caches until ctx ends (then every listener is closed).
func (s *Server) EnableIngress(ctx context.Context, cfg IngressConfig) error {
	if cfg.Address == nil {
		return errors.New("ingress: no address")
	}
	if cfg.PortMin == 0 || cfg.PortMax < cfg.PortMin {
		return fmt.Errorf("ingress: bad port range %d-%d", cfg.PortMin, cfg.PortMax)
	}
	mode := cfg.Mode
	if mode == "" {
		mode = ingress.ModeUserland
	}
	fwd, err := ingress.Start(cfg.Address, ingress.Config{Mode: mode, Instance: cfg.Instance, Options: ingress.Options{Log: s.Log}})
	if err != nil {
		return fmt.Errorf("ingress: %w", err)
	}
	t := &ingressTable{
		cfg:    cfg,
		shown:  cfg.Address.String(),
		fwd:    fwd,
		s:      s,
		local:  cfg.Local,
		held:   map[ingress.Key]portHolder{},
		claims: map[ingress.Key]*portClaim{},
		next:   cfg.PortMin,
		hosts:  map[*hosts.Host]*hostEntry{},
		failed: map[ingress.Key]string{},
		locals: map[*hosts.Host]bool{},
		done:   make(chan struct{}),
	}
	if t.local == nil {
		t.local = publishesLocally
	}
	if cfg.Address.IsUnspecified() {
		t.shown = "0.0.0.0"
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(ingress.Collector{F: t.fwd}); err != nil {
			fwd.CloseAll()
			return fmt.Errorf("ingress metrics: %w", err)
		}
	}
	s.ingress = t
	t.reconcile()
	go t.run(ctx)
	return nil
}

// IngressMode is how published ports are forwarded: "kernel",
// "userland", or "" with ingress off.
func (s *Server) IngressMode() string {
	if s.ingress == nil {
		return ""
	}
	return s.ingress.fwd.Mode()
}

// WaitIngress waits, once EnableIngress's ctx has ended, until every
// forward is closed (kernel mode: its iptables rules removed), at most d.
func (s *Server) WaitIngress(d time.Duration) {
	if s.ingress == nil {
		return
	}
	select {
	case <-s.ingress.done:
	case <-time.After(d):
	}
}

// run reconciles whenever a host's cache moves, until ctx ends.
func (t *ingressTable) run(ctx context.Context) {
	defer close(t.done)
	defer t.fwd.CloseAll()
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
		all := t.s.Fleet.Hosts()
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

// publishesLocally reports whether a host's published ports are in the
// manager's own network namespace: a unix socket, or an engine at a
// loopback or local address.
func publishesLocally(h *hosts.Host) bool {
	if h.Endpoint.Network != "tcp" {
		return true
	}
	ip := net.ParseIP(hostIP(h))
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
func (t *ingressTable) isLocal(h *hosts.Host) bool {
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

// withProto spells a port key with its protocol ("80" is "80/tcp").
func withProto(p string) string {
	if !strings.Contains(p, "/") {
		return p + "/tcp"
	}
	return p
}

// reconcile makes the listeners match the caches: one per port of every
// created or running container on a healthy host, pointed at the host
// while the container runs; every other listener not claimed by a create
// in flight is closed.
func (t *ingressTable) reconcile() {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := map[ingress.Key]portHolder{}
	all := t.s.Fleet.Hosts()
	live := make(map[*hosts.Host]bool, len(all))
	for _, h := range all {
		live[h] = true
		if !h.Healthy() {
			continue // its forwards go; they come back with the host
		}
		for _, hp := range t.hostPorts(h) {
			k, hd := hp.key, hp.holder
			if prev, dup := want[k]; dup && (prev.id == t.held[k].id || hd.id != t.held[k].id) {
				continue // two containers ask one port: the one holding it keeps it
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
				t.s.Log.Warn("ingress: cannot listen for a published port", "port", k.String(), "container", hd.name, "host", hd.host, "err", err)
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
	key    ingress.Key
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
func (t *ingressTable) hostPorts(h *hosts.Host) []publishedPort {
	gen := h.Generation()
	prev := t.hosts[h]
	if prev != nil && prev.gen == gen {
		return prev.ports
	}
	e := &hostEntry{gen: gen, created: map[string]createdPorts{}}
	local := t.isLocal(h)
	ip := hostIP(h)
	for _, c := range h.Containers() {
		var keys []ingress.Key
		running := false
		switch c.Summary.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			running = true
			for _, p := range c.Summary.Ports {
				k := ingress.Key{Proto: protoOf(p.Type), Port: p.PublicPort}
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
			hd := portHolder{id: c.ID(), name: name, host: h.Name, local: local}
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
func createdKeys(c *hosts.Container, prev, next map[string]createdPorts) []ingress.Key {
	if len(c.Inspect) == 0 {
		return nil
	}
	if m, ok := prev[c.ID()]; ok && len(m.raw) == len(c.Inspect) && &m.raw[0] == &c.Inspect[0] {
		next[c.ID()] = m
		return m.keys
	}
	var in struct {
		HostConfig struct {
			NetworkMode  string
			PortBindings map[string][]struct{ HostIP, HostPort string }
		}
	}
	var keys []ingress.Key
	if json.Unmarshal(c.Inspect, &in) == nil && in.HostConfig.NetworkMode != "host" {
		for port, bs := range in.HostConfig.PortBindings {
			_, proto, _ := strings.Cut(port, "/")
			for _, b := range bs {
				if n, err := strconv.ParseUint(b.HostPort, 10, 16); err == nil && n > 0 && wildcardIP(b.HostIP) {
					k := ingress.Key{Proto: protoOf(proto), Port: uint16(n)}
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

// portBinding is one host binding of a create body.
type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// ingressCreate runs once the host is chosen: with ingress on, it checks
// the create's published host ports against the fleet's, picks the random
// ones from the ingress range, binds the manager's listeners (unless the
// host publishes locally) and returns the body with every binding explicit.
// release gives the claims back once the cache shows the container (or the
// create failed: the listeners then close).
func (s *Server) ingressCreate(ctx context.Context, h *hosts.Host, name string, body []byte) ([]byte, func(), error) {
	t := s.ingress
	if t == nil {
		return body, func() {}, nil
	}
	// The body's own keys ("80", "53/udp", "8000-8010/tcp") and bindings,
	// as the client sent them.
	var in struct {
		Image        string
		ExposedPorts map[string]json.RawMessage
		HostConfig   *struct {
			NetworkMode     string
			PublishAllPorts bool
			PortBindings    map[string][]portBinding
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	hc := in.HostConfig
	if hc == nil || hc.NetworkMode == "host" || (!hc.PublishAllPorts && len(hc.PortBindings) == 0) {
		return body, func() {}, nil
	}
	bindings := hc.PortBindings
	if bindings == nil {
		bindings = map[string][]portBinding{}
	}
	if hc.PublishAllPorts {
		exposed := map[string]bool{}
		for p := range in.ExposedPorts {
			exposed[withProto(p)] = true
		}
		for _, p := range imageExposedPorts(ctx, h, in.Image) {
			exposed[p] = true
		}
		for p := range bindings {
			delete(exposed, withProto(p))
		}
		for p := range exposed {
			bindings[p] = []portBinding{{}}
		}
	}
	// HostIp "" and 0.0.0.0 print as 0.0.0.0 in Docker's message.
	shownIP := func(ip string) string {
		if ip == "" {
			return "0.0.0.0"
		}
		return ip
	}
	t.reconcile() // the table as the caches are now (a container just stopped holds nothing)
	t.mu.Lock()
	local := t.isLocal(h)
	var mine []ingress.Key
	undo := func() {
		for _, k := range mine {
			delete(t.claims, k)
			if !local {
				if hd, ok := t.held[k]; !ok || hd.local {
					t.fwd.Close(k)
				}
			}
		}
	}
	claim := &portClaim{name: name}
	taken := func(k ingress.Key) (string, bool) {
		if hd, ok := t.held[k]; ok {
			return fmt.Sprintf("container %q on host %s", hd.name, hd.host), true
		}
		if c, ok := t.claims[k]; ok {
			return fmt.Sprintf("container %q, being created", c.name), true
		}
		return "", false
	}
	bind := func(k ingress.Key) error {
		if local {
			return nil
		}
		return t.fwd.Open(k)
	}
	ports := slices.Sorted(func(yield func(string) bool) {
		for p := range bindings {
			if !yield(p) {
				return
			}
		}
	})
	for _, port := range ports {
		_, proto, _ := strings.Cut(port, "/")
		proto = protoOf(proto)
		bs := bindings[port]
		for i, b := range bs {
			if !wildcardIP(b.HostIP) {
				continue // bound to one address of its host: not forwarded
			}
			lo, hi, random, err := parseHostPort(b.HostPort)
			if err != nil {
				undo()
				t.mu.Unlock()
				return nil, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid port specification: %q", b.HostPort))
			}
			if random {
				lo, hi = t.cfg.PortMin, t.cfg.PortMax
			}
			var picked ingress.Key
			var lastErr error
			found := false
			if !random && lo == hi {
				k := ingress.Key{Proto: proto, Port: lo}
				if holder, ok := taken(k); ok {
					undo()
					t.mu.Unlock()
					return nil, nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for %s:%d failed: port is already allocated (by %s)", shownIP(b.HostIP), lo, holder))
				}
				if err := bind(k); err != nil {
					undo()
					t.mu.Unlock()
					return nil, nil, cannotListen(k, t.shown, err)
				}
				picked, found = k, true
			} else {
				// A range: the first free port from the cursor (random
				// ports) or from its start, as Docker's allocator does.
				n := int(hi) - int(lo) + 1
				start := lo
				if random && t.next >= lo && t.next <= hi {
					start = t.next
				}
				for j := 0; j < n && !found; j++ {
					p := uint16(int(lo) + (int(start)-int(lo)+j)%n)
					k := ingress.Key{Proto: proto, Port: p}
					if _, ok := taken(k); ok {
						continue
					}
					if err := bind(k); err != nil {
						lastErr = err
						continue // another process has it: try the next
					}
					picked, found = k, true
					if random {
						t.next = p + 1
						if p == hi {
							t.next = lo
						}
					}
				}
				if !found {
					undo()
					t.mu.Unlock()
					msg := fmt.Sprintf("Bind for %s:%d-%d failed: port is already allocated (no free port in the range)", shownIP(b.HostIP), lo, hi)
					if lastErr != nil {
						msg += ": " + lastErr.Error()
					}
					return nil, nil, errdefs.New(errdefs.ErrConflict, msg)
				}
			}
			t.claims[picked] = claim
			mine = append(mine, picked)
			bs[i].HostPort = strconv.Itoa(int(picked.Port))
		}
	}
	t.mu.Unlock()
	out, err := withPortBindings(body, bindings)
	if err != nil {
		t.mu.Lock()
		undo()
		t.mu.Unlock()
		return nil, nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	release := sync.OnceFunc(func() {
		t.mu.Lock()
		for _, k := range mine {
			if t.claims[k] == claim {
				delete(t.claims, k)
			}
		}
		t.mu.Unlock()
		t.reconcile() // adopts the container's listeners, or closes them
	})
	return out, release, nil
}

// cannotListen is the create's error when the manager cannot bind a port.
func cannotListen(k ingress.Key, addr string, err error) error {
	why := err.Error()
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		why = "address already in use"
	case errors.Is(err, syscall.EACCES):
		why = "permission denied"
	}
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Clocker cannot listen on %s for the published port %s: %s", net.JoinHostPort(addr, strconv.Itoa(int(k.Port))), k, why))
}

// parseHostPort reads a binding's HostPort: "" and "0" are any port, "N"
// one port, "A-B" a range.
func parseHostPort(s string) (lo, hi uint16, random bool, err error) {
	if s == "" || s == "0" {
		return 0, 0, true, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	x, err := strconv.ParseUint(a, 10, 16)
	if err != nil || x == 0 {
		return 0, 0, false, fmt.Errorf("bad port %q", s)
	}
	if !isRange {
		return uint16(x), uint16(x), false, nil
	}
	y, err := strconv.ParseUint(b, 10, 16)
	if err != nil || y < x {
		return 0, 0, false, fmt.Errorf("bad port range %q", s)
	}
	return uint16(x), uint16(y), false, nil
}

// imageExposedPorts are the ports the image exposes, from the chosen host
// (which has it); none when it cannot tell.
func imageExposedPorts(ctx context.Context, h *hosts.Host, image string) []string {
	if image == "" {
		return nil
	}
	body, status, err := h.GetJSON(ctx, "/images/"+url.PathEscape(image)+"/json", nil)
	if err != nil || status != http.StatusOK {
		return nil
	}
	var in struct {
		Config struct{ ExposedPorts map[string]struct{} }
	}
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	out := make([]string, 0, len(in.Config.ExposedPorts))
	for p := range in.Config.ExposedPorts {
		out = append(out, withProto(p))
	}
	sort.Strings(out)
	return out
}

// withPortBindings replaces HostConfig.PortBindings in a create body,
// keeping every other field as the client sent it.
func withPortBindings(body []byte, bindings map[string][]portBinding) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, err
	}
	var hc map[string]json.RawMessage
	if raw, ok := fields["HostConfig"]; ok && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &hc); err != nil {
			return nil, err
		}
	}
	if hc == nil {
		hc = map[string]json.RawMessage{}
	}
	raw, err := json.Marshal(bindings)
	if err != nil {
		return nil, err
	}
	hc["PortBindings"] = raw
	if fields["HostConfig"], err = json.Marshal(hc); err != nil {
		return nil, err
	}
	return json.Marshal(fields)
}

// localHosts caches publishesLocally by host, for shownAddress without
// ingress.
var localHosts sync.Map

// shownAddress is the address that replaces 0.0.0.0 and :: in a container's
// published ports: the ingress address when ingress is on, else the host's
// own address ("": keep the engine's answer, for a host that publishes in
// Clocker's network namespace).
func (s *Server) shownAddress(h *hosts.Host) string {
	if s.ingress != nil {
		return s.ingress.shown
	}
	local, ok := localHosts.Load(h)
	if !ok {
		local, _ = localHosts.LoadOrStore(h, publishesLocally(h))
	}
	if local.(bool) {
		return ""
	}
	return hostIP(h)
}

// ingressInspect shows where a container's published ports are reached in
// an inspect body's NetworkSettings.Ports (see shownAddress), leaving every
// other byte as it is.
func (s *Server) ingressInspect(h *hosts.Host, body []byte) []byte {
	shown := s.shownAddress(h)
	if shown == "" || !bytes.Contains(body, []byte(`"HostIp"`)) {
		return body
	}
	start, end, ok := jsonValueAt(body, "NetworkSettings", "Ports")
	if !ok {
		return body
	}
	var ports map[string][]portBinding
	if json.Unmarshal(body[start:end], &ports) != nil || ports == nil {
		return body
	}
	for p, bs := range ports {
		ports[p] = showBindings(bs, shown)
	}
	raw, err := json.Marshal(ports)
	if err != nil {
		return body
	}
	return splice(body, start, end, raw)
}

// showBindings rewrites wildcard host addresses to shown, once per port
// (the engine lists 0.0.0.0 and :: apart).
func showBindings(bs []portBinding, shown string) []portBinding {
	if bs == nil {
		return nil
	}
	out := make([]portBinding, 0, len(bs))
	for _, b := range bs {
		if wildcardIP(b.HostIP) {
			b.HostIP = shown
		}
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// listPort is one entry of Ports in GET /containers/json, in the engine's
// field order.
type listPort struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// ingressList does for a `docker ps` entry what ingressInspect does for
// inspect.
func (s *Server) ingressList(host string, raw []byte) []byte {
	if !bytes.Contains(raw, []byte(`"PublicPort"`)) {
		return raw
	}
	h, ok := s.Fleet.Host(host)
	if !ok {
		return raw
	}
	shown := s.shownAddress(h)
	if shown == "" {
		return raw
	}
	start, end, ok := jsonValueAt(raw, "Ports")
	if !ok {
		return raw
	}
	var ports []listPort
	if json.Unmarshal(raw[start:end], &ports) != nil {
		return raw
	}
	out := make([]listPort, 0, len(ports))
	for _, p := range ports {
		if p.PublicPort != 0 && wildcardIP(p.IP) {
			p.IP = shown
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return raw
	}
	return splice(raw, start, end, b)
}

func splice(body []byte, start, end int, value []byte) []byte {
	out := make([]byte, 0, len(body)-(end-start)+len(value))
	out = append(out, body[:start]...)
	out = append(out, value...)
	return append(out, body[end:]...)
}

// jsonValueAt finds the bytes of the value at a path of object keys.
func jsonValueAt(body []byte, path ...string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	for depth, want := range path {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return 0, 0, false
		}
		for {
			tok, err := dec.Token()
			if err != nil {
				return 0, 0, false
			}
			key, isKey := tok.(string)
			if !isKey {
				return 0, 0, false // the object ended without the key
			}
			if key == want {
				break
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, 0, false
			}
		}
		if depth == len(path)-1 {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return 0, 0, false
			}
			end = int(dec.InputOffset())
			return end - len(v), end, true
		}
	}
	return 0, 0, false
}

// startContainer refuses, as an engine does, to start a container whose
// published host port another container holds (a stopped container holds
// none, so another may have taken it); otherwise it is changeContainer.
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if t := s.ingress; t != nil {
		_, c, err := s.resolve(r)
		if err != nil {
			return err
		}
		if err := t.checkStart(&c); err != nil {
			return err
		}
	}
	return s.changeContainer(w, r)
}

func (t *ingressTable) checkStart(c *hosts.Container) error {
	keys := createdKeys(c, nil, map[string]createdPorts{})
	t.reconcile()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if hd, ok := t.held[k]; ok && hd.id != c.ID() {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated (by container %q on host %s)", k.Port, hd.name, hd.host))
		}
		if c := t.claims[k]; c != nil {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated (by container %q, being created)", k.Port, c.name))
		}
	}
	return nil
}
