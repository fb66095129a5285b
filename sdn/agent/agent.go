// Package agent is the per-host side of fleet networks (`clocker agent`):
// it reads the state the manager wrote for this host, makes the data plane
// match it through an SDN provider, and answers fleet names on each
// network's gateway address.
//
//	manager ──PUT /containers/{agent}/archive──▶ /state/desired.json
//	                                               │ read every Interval
//	                                               ▼
//	             sdn.Reconcile(provider, state.Networks)   (VXLAN devices, FDB)
//	             one dns.Server per network on gateway:53  (state.Records)
//
// The state file is the only input, and the kernel and the listeners the
// only output: the agent keeps no state of its own, so a restart re-reads
// the file, finds its devices by their aliases and converges again without
// touching traffic. Until a state file exists the agent changes nothing.
package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/dns"
)

// Defaults of Config.
const (
	DefaultInterval = 100 * time.Millisecond
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
	// Interval is how often the state file is read. Default 100ms.
	Interval time.Duration
	// Resync is how often an unchanged state is applied again. Default 30s.
	Resync time.Duration
	// Log receives what the agent does.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.StatePath == "" {
		c.StatePath = sdn.AgentStateDir + "/" + sdn.AgentStateFile
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
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Agent applies one host's state.
type Agent struct {
	cfg      Config
	provider sdn.Provider
	servers  map[string]*dnsServer // by network ID
}

// dnsServer is one network's name server on this host.
type dnsServer struct {
	addr   string
	table  *dns.Table
	server *dns.Server
}

// New opens the provider; Run does the work.
func New(cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	p, err := sdn.NewProvider(cfg.Provider, cfg.ProviderConfig)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, provider: p, servers: map[string]*dnsServer{}}, nil
}

// Run reads the state file every Interval and applies it when it changed,
// when the last apply failed (retried every second), or every Resync. It
// returns when ctx ends, leaving the data plane in place.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	var (
		last      []byte
		applied   time.Time
		failed    bool
		lastTried time.Time
	)
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(a.cfg.StatePath)
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
				a.cfg.Log.Info("state applied", "networks", len(st.Networks))
			}
			last, applied = data, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Apply makes the data plane and the name servers match st.
func (a *Agent) Apply(ctx context.Context, st sdn.AgentState) error {
	errs := []error{sdn.Reconcile(ctx, a.provider, st.Networks)}
	upstreams := a.upstreams(st)
	want := map[string]bool{}
	for _, hn := range st.Networks {
		want[hn.NetworkID] = true
		addr := net.JoinHostPort(hn.Gateway.String(), fmt.Sprint(a.cfg.DNSPort))
		s := a.servers[hn.NetworkID]
		if s != nil && s.addr != addr {
			a.stop(hn.NetworkID)
			s = nil
		}
		if s == nil {
			t := dns.NewTable()
			srv := dns.NewServer(t, dns.Config{Addr: addr, Upstreams: upstreams})
			if err := srv.Start(); err != nil {
				// The bridge may not hold the gateway yet: retried.
				errs = append(errs, fmt.Errorf("network %s: DNS on %s: %w", hn.Name, addr, err))
				continue
			}
			s = &dnsServer{addr: addr, table: t, server: srv}
			a.servers[hn.NetworkID] = s
		}
		s.table.Replace(Names(st, hn.NetworkID))
	}
	for id := range a.servers {
		if !want[id] {
			a.stop(id)
		}
	}
	return errors.Join(errs...)
}

// Names is what the name server of network id answers: its own members'
// names first, then those of the host's other networks that it does not
// name itself (so that a container on several networks, which has one of
// them as its DNS server, finds the members of all).
func Names(st sdn.AgentState, id string) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for name, addrs := range st.Records[id] {
		out[name] = addrs
	}
	for _, hn := range st.Networks {
		if hn.NetworkID == id {
			continue
		}
		for name, addrs := range st.Records[hn.NetworkID] {
			if _, ok := out[name]; !ok {
				out[name] = addrs
			}
		}
	}
	return out
}

// upstreams are the name servers of the host's resolv.conf, less the
// agent's own addresses and loopback (Docker's embedded resolver).
func (a *Agent) upstreams(st sdn.AgentState) []string {
	f, err := os.Open(a.cfg.ResolvConf)
	if err != nil {
		return nil
	}
	defer f.Close()
	own := map[netip.Addr]bool{}
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
		if err != nil || ip.IsLoopback() || own[ip] {
			continue
		}
		if s := net.JoinHostPort(ip.String(), "53"); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (a *Agent) stop(id string) {
	s := a.servers[id]
	delete(a.servers, id)
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.server.Shutdown(ctx)
}

func (a *Agent) close() {
	for id := range a.servers {
		a.stop(id)
	}
	_ = a.provider.Close()
}
