package proxy

// The agents: the manager runs `clocker agent` on every host as a
// container of its own making, and tells each what to apply.
//
//	image  clocker-agent:<sha of this binary>, built ON each host through
//	       its engine (FROM scratch, the static binary; no registry)
//	box    clocker-agent-<host>: --network host, --cap-add NET_ADMIN,
//	       restart unless-stopped, label io.clocker.agent=1 (hidden from
//	       `docker ps` through Clocker, so that `docker rm -f $(docker ps -aq)`
//	       cannot break the fleet's networks)
//	state  sdn.AgentState as /state/desired.json, written into the box with
//	       the engine's archive API whenever it changes
//	dns    the host's DNS address: its engine's default bridge gateway,
//	       which every container of the host reaches whatever its networks
//	       (its own gateway, or the host through its default route); once
//	       the agent has it, containers created there get it as DNS server
//
// The channel is the engine API the manager already holds: no listener, no
// credentials of its own. The file lives in the box's layer, so an agent
// that restarts (or an engine) reads it again at once; a manager that
// restarts computes the same state and writes it once more.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/dns"
)

// agentImageRepo is the repository of the agent images.
const agentImageRepo = "clocker-agent"

// agentName is the agent container's name on host h.
func agentName(h string) string { return "clocker-agent-" + h }

// agents runs the agent loop.
type agents struct {
	image  string // repo:tag
	binary []byte

	mu    sync.Mutex
	hosts map[string]*agentHost
}

// agentHost is what the manager knows of one host's agent.
type agentHost struct {
	id      string // container ID, "" until ensured
	busy    bool
	nextTry time.Time
	pushed  []byte // the state last written
	// dns is the host's DNS address (its default bridge's gateway), read
	// from the engine when the agent is ensured; invalid when it has none.
	dns netip.Addr
	// dnsReady is the DNS address of the state last written to the
	// running agent: the address creates may hand out.
	dnsReady netip.Addr
	// stats are the agent's DNS counts, read from it now and then.
	stats dns.Stats
}

// StartAgents makes sure every healthy host runs the agent of this binary
// (at most wait for it), then keeps them so and keeps their state current
// until ctx ends: hosts that join later get theirs on the next turn.
func (s *Server) StartAgents(ctx context.Context, binary string, wait time.Duration) error {
	if s.Nets == nil {
		return errors.New("fleet networks are off")
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	if err := checkStatic(binary); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	a := &agents{image: agentImageRepo + ":" + hex.EncodeToString(sum[:6]), binary: data, hosts: map[string]*agentHost{}}
	s.Nets.agents = a
	wctx, cancel := context.WithTimeout(ctx, wait)
	var wg sync.WaitGroup
	for _, h := range s.Fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ensureAgentLogged(wctx, h)
		}()
	}
	wg.Wait()
	cancel()
	go s.agentLoop(ctx)
	go s.agentStatsLoop(ctx, 10*time.Second)
	return nil
}

// checkStatic refuses a dynamically linked binary: a FROM scratch image
// has no C library.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("agent binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("agent binary %s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

func (s *Server) agentHost(name string) *agentHost {
	a := s.Nets.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	ah := a.hosts[name]
	if ah == nil {
		ah = &agentHost{}
		a.hosts[name] = ah
	}
	return ah
}

func (s *Server) ensureAgentLogged(ctx context.Context, h *hosts.Host) {
	a := s.Nets.agents
	ah := s.agentHost(h.Name)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute) // a build included
	defer cancel()
	id, err := s.ensureAgent(ctx, h)
	var dnsAddr netip.Addr
	if err == nil {
		dnsAddr, err = bridgeGateway(ctx, h)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ah.busy = false
	if err != nil {
		s.Log.Warn("agent not running", "host", h.Name, "err", err)
		ah.nextTry = time.Now().Add(10 * time.Second)
		return
	}
	if ah.id != id {
		ah.pushed, ah.dnsReady = nil, netip.Addr{}
	}
	ah.id, ah.dns = id, dnsAddr
}

// bridgeGateway is the IPv4 gateway of h's default bridge network (docker0):
// an address of the host that its containers reach on whatever networks
// they are (directly on the default bridge, through their default route on
// the others; it is the host's, so no FORWARD rule applies). Invalid when
// the engine runs without the default bridge.
func bridgeGateway(ctx context.Context, h *hosts.Host) (netip.Addr, error) {
	status, data, err := engineCall(ctx, h, http.MethodGet, "/networks/bridge", nil, nil, "")
	if err != nil {
		return netip.Addr{}, err
	}
	if status == http.StatusNotFound {
		return netip.Addr{}, nil
	}
	if status != http.StatusOK {
		return netip.Addr{}, relayError(status, data)
	}
	var n struct {
		IPAM struct{ Config []struct{ Gateway string } }
	}
	if err := json.Unmarshal(data, &n); err != nil {
		return netip.Addr{}, fmt.Errorf("host %s: bad default bridge: %w", h.Name, err)
	}
	for _, c := range n.IPAM.Config {
		if a, err := netip.ParseAddr(c.Gateway); err == nil && a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, nil
}

// hostDNS is the DNS address containers created on host get: the host's
// default bridge gateway, once its running agent has been told to answer
// there. Invalid when fleet networks are off or the agent is not there
// yet (such containers get the engine's default DNS, as without agents).
func (s *Server) hostDNS(host string) netip.Addr {
	if s.Nets == nil || s.Nets.agents == nil {
		return netip.Addr{}
	}
	a := s.Nets.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	if ah := a.hosts[host]; ah != nil && ah.id != "" {
		return ah.dnsReady
	}
	return netip.Addr{}
}

// ensureAgent builds the agent image on h if missing and runs the agent
// container of that image, replacing one of another image.
func (s *Server) ensureAgent(ctx context.Context, h *hosts.Host) (string, error) {
	a := s.Nets.agents
	status, _, err := engineCall(ctx, h, http.MethodGet, "/images/"+a.image+"/json", nil, nil, "")
	if err != nil {
		return "", err
	}
	if status == http.StatusNotFound {
		if err := s.buildAgentImage(ctx, h); err != nil {
			return "", err
		}
	}
	name := agentName(h.Name)
	var oldImage string
	status, data, err := engineCall(ctx, h, http.MethodGet, "/containers/"+name+"/json", nil, nil, "")
	if err != nil {
		return "", err
	}
	if status == http.StatusOK {
		var c struct {
			ID     string `json:"Id"`
			Config struct{ Image string }
			State  struct{ Running bool }
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return "", err
		}
		if c.Config.Image == a.image {
			if !c.State.Running {
				if _, err := engineJSON(ctx, h, http.MethodPost, "/containers/"+c.ID+"/start", nil, nil); err != nil {
					return "", err
				}
			}
			return c.ID, nil
		}
		// Another binary's agent: replaced (the data plane stays; the new
		// agent re-learns it).
		q := url.Values{"force": {"1"}}
		if st, body, err := engineCall(ctx, h, http.MethodDelete, "/containers/"+c.ID, q, nil, ""); err != nil || st >= 300 && st != http.StatusNotFound {
			return "", fmt.Errorf("host %s: remove old agent: %v %s", h.Name, err, body)
		}
		oldImage = c.Config.Image
	}
	create := map[string]any{
		"Image":  a.image,
		"Labels": map[string]string{sdn.LabelAgent: "1", HostLabel: h.Name},
		"HostConfig": map[string]any{
			"NetworkMode":   "host",
			"CapAdd":        []string{"NET_ADMIN"},
			"RestartPolicy": map[string]any{"Name": "unless-stopped"},
			"LogConfig":     map[string]any{"Type": "json-file", "Config": map[string]string{"max-size": "1m"}},
		},
	}
	data, err = engineJSON(ctx, h, http.MethodPost, "/containers/create", url.Values{"name": {name}}, create)
	if err != nil {
		return "", err
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(data, &created); err != nil {
		return "", err
	}
	if _, err := engineJSON(ctx, h, http.MethodPost, "/containers/"+created.ID+"/start", nil, nil); err != nil {
		return "", err
	}
	_ = h.Refresh(ctx, created.ID)
	if strings.HasPrefix(oldImage, agentImageRepo+":") {
		_, _, _ = engineCall(ctx, h, http.MethodDelete, "/images/"+oldImage, nil, nil, "")
	}
	s.Log.Info("agent started", "host", h.Name, "image", a.image)
	return created.ID, nil
}

// buildAgentImage builds the agent image on h from this binary.
func (s *Server) buildAgentImage(ctx context.Context, h *hosts.Host) error {
	a := s.Nets.agents
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dockerfile := "FROM scratch\nCOPY clocker /clocker\nCOPY state /state\n" +
		"LABEL " + sdn.LabelAgent + "=1\nENTRYPOINT [\"/clocker\", \"agent\"]\n"
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(dockerfile)},
		{"clocker", 0o755, a.binary},
		{"state/.keep", 0o644, nil},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	q := url.Values{"t": {a.image}, "rm": {"1"}, "forcerm": {"1"}}
	status, out, err := engineCall(ctx, h, http.MethodPost, "/build", q, &buf, "application/x-tar")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("host %s: build agent image: %w", h.Name, relayError(status, out))
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Error string }
		if dec.Decode(&m) != nil {
			break
		}
		if m.Error != "" {
			return fmt.Errorf("host %s: build agent image: %s", h.Name, m.Error)
		}
	}
	s.Log.Info("agent image built", "host", h.Name, "image", a.image)
	return nil
}

// agentLoop writes each host's state whenever it changes: on a kick from
// a network change, and when a host's cache moves (containers started,
// stopped, connected). Hosts without an agent get one.
func (s *Server) agentLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	full := time.Now()
	idle := time.NewTicker(leaveGrace / 3)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Nets.changed:
		case <-idle.C:
			s.leaveIdle(ctx)
			continue
		case <-tick.C:
			var gen uint64
			for _, h := range s.Fleet.Hosts() {
				gen += h.Generation()
			}
			if gen == last && time.Since(full) < 5*time.Second {
				continue
			}
			last = gen
		}
		full = time.Now()
		s.pushAgentStates(ctx)
	}
}

// pushAgentStates writes the state of every healthy host whose state
// changed since it was last written.
func (s *Server) pushAgentStates(ctx context.Context) {
	a := s.Nets.agents
	states := s.AgentStates()
	for _, h := range s.Fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		ah := s.agentHost(h.Name)
		a.mu.Lock()
		if ah.id != "" && !ah.busy {
			if _, ok := h.Container(ah.id); !ok {
				// Gone (removed on the engine, or the host left the fleet
				// and came back): run it again and push the state anew.
				ah.id, ah.pushed = "", nil
			}
		}
		id, busy, next, pushed := ah.id, ah.busy, ah.nextTry, ah.pushed
		if id == "" && !busy && time.Now().After(next) {
			ah.busy = true
			go s.ensureAgentLogged(ctx, h)
		}
		a.mu.Unlock()
		st, ok := states[h.Name]
		if id == "" || !ok {
			continue
		}
		data, err := json.Marshal(st)
		if err != nil || bytes.Equal(data, pushed) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pushState(pctx, h, id, data)
		cancel()
		if err != nil {
			s.Log.Warn("agent state not written", "host", h.Name, "err", err)
			if errors.Is(err, errNoAgent) {
				a.mu.Lock()
				ah.id = ""
				a.mu.Unlock()
			}
			continue
		}
		a.mu.Lock()
		if ah.id == id {
			ah.pushed, ah.dnsReady = data, st.DNS
		}
		a.mu.Unlock()
		s.Log.Debug("agent state written", "host", h.Name, "networks", len(st.Networks))
	}
}

var errNoAgent = errors.New("agent container is gone")

// agentStatsLoop reads every agent's DNS counts every interval (its stats
// file, through the engine's archive API) for the metrics.
func (s *Server) agentStatsLoop(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a := s.Nets.agents
		for _, h := range s.Fleet.Hosts() {
			if !h.Healthy() {
				continue
			}
			ah := s.agentHost(h.Name)
			a.mu.Lock()
			id := ah.id
			a.mu.Unlock()
			if id == "" {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := readAgentStats(rctx, h, id)
			cancel()
			if err != nil {
				s.Log.Debug("agent stats not read", "host", h.Name, "err", err)
				continue
			}
			a.mu.Lock()
			ah.stats = st
			a.mu.Unlock()
		}
	}
}

// readAgentStats reads the agent's stats file out of its container.
func readAgentStats(ctx context.Context, h *hosts.Host, id string) (dns.Stats, error) {
	var st dns.Stats
	q := url.Values{"path": {sdn.AgentStateDir + "/" + sdn.AgentStatsFile}}
	status, data, err := engineCall(ctx, h, http.MethodGet, "/containers/"+id+"/archive", q, nil, "")
	if err != nil {
		return st, err
	}
	if status == http.StatusNotFound {
		return st, nil // no query yet
	}
	if status != http.StatusOK {
		return st, relayError(status, data)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	if _, err := tr.Next(); err != nil {
		return st, err
	}
	err = json.NewDecoder(io.LimitReader(tr, 1<<16)).Decode(&st)
	return st, err
}

// pushState writes data as the agent's state file.
func pushState(ctx context.Context, h *hosts.Host, id string, data []byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: sdn.AgentStateFile, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	q := url.Values{"path": {sdn.AgentStateDir}}
	status, out, err := engineCall(ctx, h, http.MethodPut, "/containers/"+id+"/archive", q, &buf, "application/x-tar")
	if err != nil {
		return err
	}
	switch {
	case status == http.StatusNotFound:
		return errNoAgent
	case status >= 300:
		return relayError(status, out)
	}
	return nil
}

// AgentStates computes what every host's agent must apply: the host's part
// of each network it is a member of, each such network's names, the host's
// DNS address, and which of the host's containers are on which networks.
func (s *Server) AgentStates() map[string]sdn.AgentState {
	all := s.Fleet.Hosts()
	underlay := map[string]netip.Addr{}
	for _, h := range all {
		if a, ok := underlayAddr(h); ok {
			underlay[h.Name] = a
		}
	}
	nets := s.Nets.Alloc.List()
	records := fleetRecords(all, nets)
	out := map[string]sdn.AgentState{}
	for _, h := range all {
		st := sdn.AgentState{Host: h.Name, Networks: []sdn.HostNetwork{}, Records: map[string]map[string][]netip.Addr{}}
		for _, n := range nets {
			if _, ok := n.Hosts[h.Name]; !ok {
				continue
			}
			hn, err := n.HostNetwork(h.Name, underlay)
			if err != nil {
				s.Log.Debug("network left out of agent state", "host", h.Name, "network", n.Name, "err", err)
				continue
			}
			st.Networks = append(st.Networks, hn)
			st.Records[n.ID] = records[n.ID]
		}
		st.DNS = s.agentDNSAddr(h.Name)
		st.Clients = fleetClients(h.Containers(), nets, st.Networks)
		out[h.Name] = st
	}
	return out
}

// agentDNSAddr is the DNS address host's agent is to answer on.
func (s *Server) agentDNSAddr(host string) netip.Addr {
	if s.Nets.agents == nil {
		return netip.Addr{}
	}
	a := s.Nets.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	if ah := a.hosts[host]; ah != nil {
		return ah.dns
	}
	return netip.Addr{}
}

// fleetClients maps every address (on any network: the default bridge,
// local networks, fleet networks) of a host's containers cs that are on
// fleet networks its agent serves (served) to those networks' IDs, so
// that the agent answers a query by the networks of the container it
// comes from, whichever of its networks the query leaves by. Only running
// containers have addresses.
func fleetClients(cs []hosts.Container, nets []sdn.Network, served []sdn.HostNetwork) map[netip.Addr][]string {
	byName := map[string]string{}
	for _, n := range nets {
		if slices.ContainsFunc(served, func(hn sdn.HostNetwork) bool { return hn.NetworkID == n.ID }) {
			byName[n.Name] = n.ID
		}
	}
	if len(byName) == 0 {
		return nil
	}
	out := map[netip.Addr][]string{}
	for _, c := range cs {
		sum := c.Summary
		if sum.NetworkSettings == nil || sum.Labels[sdn.LabelAgent] != "" {
			continue
		}
		var ids []string
		for netName := range sum.NetworkSettings.Networks {
			if id, ok := byName[netName]; ok {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		slices.Sort(ids)
		for _, ep := range sum.NetworkSettings.Networks {
			if ep == nil || !ep.IPAddress.IsValid() {
				continue
			}
			a := ep.IPAddress.Unmap()
			// Two containers never share an address on one host; if the
			// cache briefly says so (one gone, one new), both sets count.
			out[a] = slices.Compact(slices.Sorted(slices.Values(append(out[a], ids...))))
		}
	}
	return out
}

// fleetRecords lists each network's names from the caches of all hosts:
// the running members' container names, aliases and compose service names.
func fleetRecords(all []*hosts.Host, nets []sdn.Network) map[string]map[string][]netip.Addr {
	byName := map[string]string{}
	out := map[string]map[string][]netip.Addr{}
	for _, n := range nets {
		byName[n.Name] = n.ID
		out[n.ID] = map[string][]netip.Addr{}
	}
	add := func(id, name string, a netip.Addr) {
		if name == "" {
			return
		}
		name = strings.ToLower(name)
		if !slices.Contains(out[id][name], a) {
			out[id][name] = append(out[id][name], a)
		}
	}
	for _, h := range all {
		for _, c := range h.Containers() {
			sum := c.Summary
			if sum.NetworkSettings == nil || sum.State != "running" || sum.Labels[sdn.LabelAgent] != "" {
				continue
			}
			var aliases map[string][]string
			for netName, ep := range sum.NetworkSettings.Networks {
				id, ok := byName[netName]
				if !ok || ep == nil || !ep.IPAddress.IsValid() {
					continue
				}
				a := ep.IPAddress.Unmap()
				for _, n := range sum.Names {
					add(id, strings.TrimPrefix(n, "/"), a)
				}
				add(id, sum.Labels[labels.ComposeService], a)
				if aliases == nil {
					aliases = inspectAliases(c.Inspect)
				}
				for _, al := range aliases[netName] {
					add(id, al, a)
				}
			}
		}
	}
	for _, recs := range out {
		for _, addrs := range recs {
			slices.SortFunc(addrs, netip.Addr.Compare)
		}
	}
	return out
}

// inspectAliases reads a container's aliases per network from its inspect
// answer (Aliases, and DNSNames on newer engines).
func inspectAliases(raw json.RawMessage) map[string][]string {
	var in struct {
		NetworkSettings struct {
			Networks map[string]struct {
				Aliases  []string
				DNSNames []string
			}
		}
	}
	out := map[string][]string{}
	if json.Unmarshal(raw, &in) != nil {
		return out
	}
	for n, ep := range in.NetworkSettings.Networks {
		out[n] = append(slices.Clone(ep.Aliases), ep.DNSNames...)
	}
	return out
}

// withoutAgents leaves the agent containers out of a list, unless the
// client asks for them by their label.
func withoutAgents(all []hosts.Container, q url.Values) []hosts.Container {
	if strings.Contains(q.Get("filters"), sdn.LabelAgent) {
		return all
	}
	out := make([]hosts.Container, 0, len(all))
	for i := range all {
		if !IsAgent(&all[i]) {
			out = append(out, all[i])
		}
	}
	return out
}

// --- metrics -----------------------------------------------------------------

// Fleet network metrics, computed when scraped: the networks from the
// allocator, their members from the hosts' caches, the DNS counts from
// what the agents last reported.
var (
	fleetNetNetworksDesc = prometheus.NewDesc("clocker_fleetnet_networks",
		"Fleet networks.", nil, nil)
	fleetNetHostsDesc = prometheus.NewDesc("clocker_fleetnet_network_hosts",
		"Member hosts of each fleet network.", []string{"network"}, nil)
	fleetNetContainersDesc = prometheus.NewDesc("clocker_fleetnet_network_containers",
		"Containers (in any state) on each fleet network, on all hosts.", []string{"network"}, nil)
	fleetNetDNSDesc = prometheus.NewDesc("clocker_fleetnet_dns_queries_total",
		"DNS queries to each host's agent since it started: answered with fleet names, or forwarded to the host's resolvers.",
		[]string{"host", "result"}, nil)
)

type fleetNetCollector struct{ s *Server }

// RegisterFleetNetMetrics adds the fleet network metrics to reg.
func (s *Server) RegisterFleetNetMetrics(reg prometheus.Registerer) error {
	if s.Nets == nil || reg == nil {
		return nil
	}
	return reg.Register(fleetNetCollector{s})
}

// countByNetwork adds the containers of cs (the agents left out) to the
// count of each network they are on, by network name.
func countByNetwork(cs []hosts.Container, counts map[string]int) {
	for _, ctr := range cs {
		if ctr.Summary.NetworkSettings == nil || ctr.Summary.Labels[sdn.LabelAgent] != "" {
			continue
		}
		for name := range ctr.Summary.NetworkSettings.Networks {
			counts[name]++
		}
	}
}

func (c fleetNetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- fleetNetNetworksDesc
	ch <- fleetNetHostsDesc
	ch <- fleetNetContainersDesc
	ch <- fleetNetDNSDesc
}

func (c fleetNetCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	nets := s.Nets.Alloc.List()
	ch <- prometheus.MustNewConstMetric(fleetNetNetworksDesc, prometheus.GaugeValue, float64(len(nets)))
	containers := map[string]int{}
	for _, h := range s.Fleet.Hosts() {
		countByNetwork(h.Containers(), containers)
	}
	for _, n := range nets {
		ch <- prometheus.MustNewConstMetric(fleetNetHostsDesc, prometheus.GaugeValue, float64(len(n.Hosts)), n.Name)
		ch <- prometheus.MustNewConstMetric(fleetNetContainersDesc, prometheus.GaugeValue, float64(containers[n.Name]), n.Name)
	}
	a := s.Nets.agents
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for host, ah := range a.hosts {
		if ah.id == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(fleetNetDNSDesc, prometheus.CounterValue, float64(ah.stats.Answered), host, "answered")
		ch <- prometheus.MustNewConstMetric(fleetNetDNSDesc, prometheus.CounterValue, float64(ah.stats.Forwarded), host, "forwarded")
	}
}
