// Package agent is the per-host side of fleet networks (`clocker agent`):
// it applies the state the manager gives this host, makes the data plane
// match it through an SDN provider, and answers fleet names on the host's
// DNS address and on each network's gateway address.
//
//	manager ──stdin, held attached: one JSON line per state──▶ applied at once,
//	   │                                                      kept as /state/desired.json
//	   │ ◀──stdout: "applied <sum>" per pushed state──────────┘
//	   └──PUT /containers/{agent}/archive (no link)──▶ /state/desired.json
//	                                                     │ read every Interval
//	                                                     ▼
//	             sdn.Reconcile(provider, state.Networks)   (VXLAN devices, FDB)
//	             dns.Server on state.DNS:53 and each gateway:53, every one
//	             answering by the querier's address (state.Clients, the
//	             networks' subnets) from state.Records
//
// The state is the only input, and the kernel and the listeners the only
// output: the agent keeps no state of its own beside the state file, so a
// restart re-reads the file, finds its devices by their aliases and
// converges again without touching traffic. Until there is a state the
// agent changes nothing.
package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/dns"
)

// Defaults of Config.
const (
	// DefaultInterval is short: a start through the manager waits for
	// the state it brings to be applied (reading a small file is cheap).
	DefaultInterval = 20 * time.Millisecond
	// DefaultResync is how often the state is applied again though it did
	// not change (heals what someone else changed).
	DefaultResync = 30 * time.Second
)

// Config configures an agent. Zero fields take the defaults.
type Config struct {
	// StatePath is the state file. Default /state/desired.json.
	StatePath string
	// Provider is the SDN provider's name. Default sdn.DefaultProvider.
	Provider string
	// ProviderConfig configures it.
	ProviderConfig sdn.ProviderConfig
	// ResolvConf lists the upstream DNS servers. Default /etc/resolv.conf.
	ResolvConf string
	// DNSPort is the port of the DNS servers. Default 53.
	DNSPort int
	// AppliedPath is where the agent writes sdn.AppliedSum of each state
	// it applied. Default /state/applied.
	AppliedPath string
	// Interval is how often the state file is read. Default 20ms.
	Interval time.Duration
	// Resync is how often an unchanged state is applied again. Default 30s.
	Resync time.Duration
	// StatsPath is where the name servers' counts (dns.Stats as JSON) are
	// written when they change, at most every StatsInterval, for the
	// manager's metrics. Default /state/stats.json.
	StatsPath string
	// StatsInterval: default 5s.
	StatsInterval time.Duration
	// Pushes, when set, carries states pushed by the manager, one JSON
	// line each (the agent's stdin, which the manager holds attached).
	Pushes io.Reader
	// Acks, when set, gets sdn.AgentAckPrefix and the sdn.AppliedSum of
	// each pushed state once applied, one line each (the agent's stdout).
	Acks io.Writer
	// Log receives what the agent does.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.StatePath == "" {
		c.StatePath = sdn.AgentStateDir + "/" + sdn.AgentStateFile
	}
	if c.AppliedPath == "" {
		c.AppliedPath = sdn.AgentStateDir + "/" + sdn.AgentAppliedFile
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.DNSPort == 0 {
		c.DNSPort = 53
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Resync == 0 {
		c.Resync = DefaultResync
	}
	if c.StatsPath == "" {
		c.StatsPath = sdn.AgentStateDir + "/" + sdn.AgentStatsFile
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Agent applies one host's state.
type Agent struct {
	cfg      Config
	provider sdn.Provider
	// views says which names each querier sees; every server answers
	// from it, whatever address the query came to.
	views    *dns.Views
	counters *dns.Counters          // of all the servers, across restarts of them
	servers  map[string]*dns.Server // by listen address (host:port)
}

// New opens the provider; Run does the work.
func New(cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	p, err := sdn.NewProvider(cfg.Provider, cfg.ProviderConfig)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, provider: p, views: &dns.Views{}, counters: &dns.Counters{}, servers: map[string]*dns.Server{}}, nil
}

// Run applies the state when it changes: a state pushed on Pushes at
// once (then kept as the state file, for a restart), else the state file
// read every Interval; the same again when the last apply failed (retried
// every second) or every Resync. Each pushed state is acknowledged on
// Acks once applied. It returns when ctx ends, leaving the data plane in
// place.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	var (
		last      []byte
		applied   time.Time
		failed    bool
		lastTried time.Time
		stats     dns.Stats
		statsAt   time.Time
	)
	var pushes chan []byte
	if a.cfg.Pushes != nil {
		pushes = make(chan []byte, 64)
		go readPushes(a.cfg.Pushes, pushes, a.cfg.Log)
	}
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	var (
		data   []byte
		err    error
		pushed []string // sums of the pushed states this turn applies
	)
	data, err = os.ReadFile(a.cfg.StatePath)
	for {
		switch {
		case errors.Is(err, os.ErrNotExist):
			// No state yet: change nothing.
		case err != nil:
			a.cfg.Log.Warn("read state", "err", err)
		case !bytes.Equal(data, last) || failed && time.Since(lastTried) > time.Second || time.Since(applied) > a.cfg.Resync:
			var st sdn.AgentState
			if err := json.Unmarshal(data, &st); err != nil {
				// Being written: read again next time.
				break
			}
			lastTried = time.Now()
			err := a.Apply(ctx, st)
			failed = err != nil
			if failed {
				a.cfg.Log.Warn("apply state", "err", err)
			} else if !bytes.Equal(data, last) {
				a.cfg.Log.Info("state applied", "networks", len(st.Networks), "dns", st.DNS)
			}
			if !bytes.Equal(data, last) {
				// The names are served now, even when part of the data
				// plane failed (retried): the manager waits no longer.
				if err := writeFile(a.cfg.AppliedPath, []byte(sdn.AppliedSum(data))); err != nil {
					a.cfg.Log.Warn("write applied", "err", err)
				}
			}
			last, applied = data, time.Now()
		}
		a.ack(pushed)
		pushed = pushed[:0]
		if now := a.counters.Stats(); now != stats && time.Since(statsAt) >= a.cfg.StatsInterval {
			if err := writeStats(a.cfg.StatsPath, now); err != nil {
				a.cfg.Log.Debug("write stats", "err", err)
			}
			stats, statsAt = now, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			data, err = os.ReadFile(a.cfg.StatePath)
		case p := <-pushes:
			// The newest of what is queued is the state; the older ones
			// are acknowledged with it (it supersedes them).
			pushed = append(pushed, sdn.AppliedSum(p))
			for more := true; more; {
				select {
				case q := <-pushes:
					p = q
					pushed = append(pushed, sdn.AppliedSum(p))
				default:
					more = false
				}
			}
			data, err = p, nil
			if werr := writeFile(a.cfg.StatePath, p); werr != nil {
				a.cfg.Log.Warn("keep the pushed state", "err", werr)
			}
		}
	}
}

// readPushes sends each line of r (a state, as the manager pushes it)
// to out, until r ends.
func readPushes(r io.Reader, out chan<- []byte, log *slog.Logger) {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out <- line
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Warn("read pushed states", "err", err)
			}
			return
		}
	}
}

// ack tells the manager which pushed states are applied.
func (a *Agent) ack(sums []string) {
	if a.cfg.Acks == nil {
		return
	}
	for _, s := range sums {
		if _, err := fmt.Fprintf(a.cfg.Acks, "%s%s\n", sdn.AgentAckPrefix, s); err != nil {
			a.cfg.Log.Warn("acknowledge a pushed state", "err", err)
		}
	}
}

// Apply makes the data plane and the name servers match st: a server on
// the host's DNS address and on each network's gateway, all answering
// each querier the names of its own networks.
func (a *Agent) Apply(ctx context.Context, st sdn.AgentState) error {
	errs := []error{sdn.Reconcile(ctx, a.provider, st.Networks)}
	a.views.Set(Views(st, hostAddrs()))
	upstreams := a.upstreams(st)
	want := map[string]bool{}
	listen := func(ip netip.Addr, what string) {
		if !ip.IsValid() {
			return
		}
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(a.cfg.DNSPort))
		if want[addr] {
			return
		}
		want[addr] = true
		if a.servers[addr] != nil {
			return
		}
		srv := dns.NewServer(a.views, dns.Config{Addr: addr, Upstreams: upstreams, Counters: a.counters})
		if err := srv.Start(); err != nil {
			// The bridge may not hold the gateway yet: retried.
			errs = append(errs, fmt.Errorf("%s: DNS on %s: %w", what, addr, err))
			return
		}
		a.servers[addr] = srv
	}
	listen(st.DNS, "host")
	for _, hn := range st.Networks {
		listen(hn.Gateway, "network "+hn.Name)
	}
	for addr := range a.servers {
		if !want[addr] {
			a.stop(addr)
		}
	}
	return errors.Join(errs...)
}

// Views is who sees which names on this host. A listed client sees the
// names of its networks, and its link aliases over them; any other querier inside a network's subnet
// sees that network's (the manager may not know it yet: it just
// started); the rest see none. Networks do not see each other's names.
// The host itself sees the names of all its networks, as it reaches
// them all: from self, its own addresses (Docker masquerades what the
// host sends from a bridge's address to itself, so it arrives from
// another of them), 127.0.0.1, its DNS address and its gateways.
func Views(st sdn.AgentState, self []netip.Addr) (map[netip.Addr]*dns.Table, []dns.Subnet) {
	all := dns.NewTable()
	ids := make([]string, 0, len(st.Networks))
	for _, hn := range st.Networks {
		ids = append(ids, hn.NetworkID)
	}
	all.Replace(Names(st, ids...))
	tables := map[string]*dns.Table{}
	var subnets []dns.Subnet
	for _, hn := range st.Networks {
		t := dns.NewTable()
		t.Replace(st.Records[hn.NetworkID])
		tables[hn.NetworkID] = t
		for _, p := range []netip.Prefix{hn.Subnet, hn.Subnet6} {
			if p.IsValid() {
				subnets = append(subnets, dns.Subnet{Prefix: p, Table: t})
			}
		}
	}
	merged := map[string]*dns.Table{} // by the networks' IDs in order
	clients := make(map[netip.Addr]*dns.Table, len(st.Clients)+len(st.Networks)+len(self)+2)
	clients[loopback] = all
	for _, a := range self {
		clients[a.Unmap()] = all
	}
	for _, hn := range st.Networks {
		clients[hn.Gateway] = all
	}
	if st.DNS.IsValid() {
		clients[st.DNS] = all
	}
	for src, ids := range st.Clients {
		// The network the query comes from first (its names win), then
		// the others in the state's order.
		var order []string
		for _, hn := range st.Networks {
			if slices.Contains(ids, hn.NetworkID) && (hn.Subnet.Contains(src) || hn.Subnet6.Contains(src)) {
				order = append(order, hn.NetworkID)
			}
		}
		for _, hn := range st.Networks {
			if slices.Contains(ids, hn.NetworkID) && !slices.Contains(order, hn.NetworkID) {
				order = append(order, hn.NetworkID)
			}
		}
		switch {
		case len(order) == 0:
		case len(st.Links[src]) > 0:
			// Its own view: its networks' names under its link aliases.
			t := dns.NewTable()
			names := Names(st, order...)
			for alias, addrs := range st.Links[src] {
				names[dns.Normalize(alias)] = addrs
			}
			t.Replace(names)
			clients[src] = t
		case len(order) == 1:
			clients[src] = tables[order[0]]
		default:
			key := strings.Join(order, ",")
			t := merged[key]
			if t == nil {
				t = dns.NewTable()
				t.Replace(Names(st, order...))
				merged[key] = t
			}
			clients[src] = t
		}
	}
	return clients, subnets
}

// Names merges the names of the networks ids: where two networks have a
// name, the earlier one's addresses win.
func Names(st sdn.AgentState, ids ...string) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, id := range ids {
		for name, addrs := range st.Records[id] {
			if _, ok := out[name]; !ok {
				out[name] = addrs
			}
		}
	}
	return out
}

// Stats are the name servers' counts since the agent started.
func (a *Agent) Stats() dns.Stats { return a.counters.Stats() }

// writeStats replaces the stats file whole (the manager may read it at
// any time).
func writeStats(path string, st dns.Stats) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFile(path, data)
}

// writeFile replaces path with data at once (readers see the old file or
// the new one).
func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// upstreams are the name servers of the host's resolv.conf, less the
// agent's own addresses and Docker's embedded resolver. Other loopback
// servers stay: the agent shares the host's namespace, so a local
// resolver (systemd-resolved's 127.0.0.53) is its upstream as the host's.
func (a *Agent) upstreams(st sdn.AgentState) []string {
	f, err := os.Open(a.cfg.ResolvConf)
	if err != nil {
		return nil
	}
	defer f.Close()
	own := map[netip.Addr]bool{st.DNS: true, embeddedResolver: true}
	for _, hn := range st.Networks {
		own[hn.Gateway] = true
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(fields[1])
		if err != nil || own[ip.Unmap()] {
			continue
		}
		if s := net.JoinHostPort(ip.String(), "53"); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// hostAddrs are the addresses of the agent's namespace (the host's).
func hostAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

var (
	// embeddedResolver is Docker's resolver inside containers.
	embeddedResolver = netip.MustParseAddr("127.0.0.11")
	loopback         = netip.MustParseAddr("127.0.0.1")
)

func (a *Agent) stop(addr string) {
	s := a.servers[addr]
	delete(a.servers, addr)
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
}

func (a *Agent) close() {
	for addr := range a.servers {
		a.stop(addr)
	}
	_ = a.provider.Close()
}
