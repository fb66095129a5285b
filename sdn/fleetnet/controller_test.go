package fleetnet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/dns"
)

func TestCreate(t *testing.T) {
	e := newEnv(t, "10.200.0.0/23", nil, "h1", "h2") // room for two /24s
	e.fakes["h2"].AddNetwork("taken", nil)
	ipamCfg := func(subnet, gateway string) *IPAMRequest {
		return &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: subnet, Gateway: gateway}}}
	}
	tests := []struct {
		name    string
		req     NetworkRequest
		wantErr error
		wantMsg string
	}{
		{"default driver", NetworkRequest{Name: "f1"}, nil, ""},
		{"overlay, user subnet", NetworkRequest{Name: "f2", Driver: "overlay", IPAM: ipamCfg("10.50.0.0/24", "10.50.0.1")}, nil, ""},
		{"no name", NetworkRequest{}, errdefs.ErrInvalid, "invalid name"},
		{"duplicate fleet name", NetworkRequest{Name: "f1"}, errdefs.ErrConflict, "network with name f1 already exists"},
		{"name of a host's network", NetworkRequest{Name: "taken"}, errdefs.ErrConflict, "network with name taken already exists"},
		{"invalid CIDR", NetworkRequest{Name: "bad", IPAM: ipamCfg("10.50.300.0/24", "")}, errdefs.ErrInvalid, "invalid"},
		{"overlapping subnet", NetworkRequest{Name: "bad", IPAM: ipamCfg("10.50.0.128/25", "")}, errdefs.ErrConflict, "overlap"},
		{"gateway outside the subnet", NetworkRequest{Name: "bad", IPAM: ipamCfg("10.60.0.0/24", "10.61.0.1")}, errdefs.ErrInvalid, "gateway"},
		{"--ipv6 without an IPv6 subnet: the engine's answer", NetworkRequest{Name: "bad", EnableIPv6: true}, errdefs.ErrNotFound, "non-overlapping IPv6 address pool"},
		{"another IPAM driver", NetworkRequest{Name: "bad", IPAM: &IPAMRequest{Driver: "other"}}, errdefs.ErrInvalid, "fleet networks use Clocker's"},
		{"from the pool", NetworkRequest{Name: "f3"}, nil, ""},
		{"exhausted pool", NetworkRequest{Name: "bad"}, errdefs.ErrConflict, "pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.mutations()
			_, err := e.ctl.Create(context.Background(), tt.req)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to mention %q", err, tt.wantMsg)
			}
			// A fleet network touches no engine until a container joins it.
			if got := e.mutations(); !slices.Equal(got, before) {
				t.Errorf("engines got %v", got[len(before):])
			}
		})
	}
	t.Run("list", func(t *testing.T) {
		var names []string
		for _, o := range e.ctl.List("") {
			names = append(names, o.Name)
			// As an engine shows one: lists and objects, never null (but
			// IPAM's Options, null when the create sent none); a Gateway.
			if want := map[string]string{"overlay": "global"}[o.Driver]; o.Scope != cmp.Or(want, "local") || o.Containers == nil ||
				o.Options == nil || o.Labels == nil || len(o.IPAM.Config) != 1 || o.IPAM.Config[0].Gateway == "" {
				t.Errorf("listed %+v", o)
			}
		}
		if !slices.Equal(names, []string{"f1", "f2", "f3"}) {
			t.Errorf("listed %v", names)
		}
		for _, tt := range []struct{ filters, want string }{
			{`{"name":{"f2":true}}`, "f2"},
			{`{"driver":["overlay"]}`, "f2"},
			{`{"id":["` + e.network("f3").ID[:10] + `"]}`, "f3"},
		} {
			if got := e.ctl.List(tt.filters); len(got) != 1 || got[0].Name != tt.want {
				t.Errorf("list %s: %v, want %s", tt.filters, got, tt.want)
			}
		}
		// Scope is what the driver asked for shows: bridge local, overlay global.
		if got := e.ctl.List(`{"scope":["global"]}`); len(got) != 1 || got[0].Name != "f2" {
			t.Errorf("scope=global listed %v", got)
		}
		if got := e.ctl.List(`{"scope":["local"]}`); len(got) != 2 {
			t.Errorf("scope=local listed %v", got)
		}
	})
}

func TestIsFleet(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1")
	for _, tt := range []struct {
		name string
		req  NetworkRequest
		want bool
	}{
		{"default driver", NetworkRequest{Name: "n"}, true},
		{"bridge", NetworkRequest{Name: "n", Driver: "bridge"}, true},
		{"overlay", NetworkRequest{Name: "n", Driver: "overlay"}, true},
		{"another driver", NetworkRequest{Name: "n", Driver: "macvlan"}, false},
		{"clocker.scope=local", NetworkRequest{Name: "n", Options: map[string]string{sdn.OptionScope: sdn.ScopeLocal}}, false},
		{"io.clocker.host", NetworkRequest{Name: "n", Labels: map[string]string{"io.clocker.host": "h1"}}, false},
		{"HOST/NAME", NetworkRequest{Name: "h1/n"}, false},
		{"a slash, no such host", NetworkRequest{Name: "x/n"}, true},
		{"built-in", NetworkRequest{Name: "bridge"}, false},
	} {
		if got := e.ctl.IsFleet(tt.req); got != tt.want {
			t.Errorf("%s: IsFleet %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestConnectInspectRemove(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2", "h3")
	ctx := context.Background()
	e.create(NetworkRequest{Name: "fn", Labels: map[string]string{"app": "x"}})
	// Containers of two hosts join: each host's engine gets its copy, with
	// its own slice.
	e.connect("h1", "fn", "c1")
	e.connect("h2", "fn", "c2")
	n := e.network("fn")
	if got := n.Members(); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Fatalf("members %v", got)
	}
	for _, h := range []string{"h1", "h2"} {
		cp := e.copyOf(h, "fn")
		if cp == nil || cp.Labels[sdn.LabelNetworkID] != n.ID || cp.Labels["app"] != "x" {
			t.Fatalf("%s's copy: %+v", h, cp)
		}
	}
	if e.copyOf("h3", "fn") != nil {
		t.Error("h3 has a copy without a member")
	}
	if n.Hosts["h1"].Gateway == n.Hosts["h2"].Gateway {
		t.Errorf("one gateway for two hosts: %v", n.Hosts)
	}
	if _, ok := e.ctl.Network("h1/fn"); ok {
		t.Error("HOST/NAME named the fleet network")
	}

	obj, err := e.ctl.Inspect(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if obj.ID != n.ID || len(obj.Containers) != 2 || obj.IPAM.Config[0].Subnet != n.Subnet.String() {
		t.Errorf("inspect: %+v", obj)
	}
	for _, c := range []string{"c1", "c2"} {
		var ep struct{ Name string }
		if err := json.Unmarshal(obj.Containers[e.ids[c]], &ep); err != nil || ep.Name != c {
			t.Errorf("inspect: %s's endpoint %s", c, obj.Containers[e.ids[c]])
		}
	}

	before := e.mutations()
	err = e.ctl.Remove(ctx, n)
	if !errors.Is(err, errdefs.ErrForbidden) || !strings.Contains(err.Error(), "has active endpoints") {
		t.Fatalf("remove in use: %v", err)
	}
	if got := e.mutations(); !slices.Equal(got, before) {
		t.Errorf("a refused remove changed %v", got[len(before):])
	}
	e.disconnect("h1", "fn", "c1")
	e.disconnect("h2", "fn", "c2")
	if err := e.ctl.Remove(ctx, n); err != nil {
		t.Fatal(err)
	}
	if got := e.engineNets("fn"); len(got) != 0 {
		t.Errorf("copies left on %v", got)
	}
	if _, ok := e.ctl.Network("fn"); ok {
		t.Error("the network is still there")
	}
}

// A host that made a copy of another network of the name is in conflict.
func TestJoinForeignNetwork(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1")
	e.create(NetworkRequest{Name: "fx"})
	e.fakes["h1"].AddNetwork("fx", nil)
	err := e.ctl.Connect(context.Background(), e.network("fx"), e.host("h1"), Addrs{})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("err %v, want a conflict", err)
	}
	if got := e.members("fx"); len(got) != 0 {
		t.Errorf("members %v: a failed join left a lease", got)
	}
}

// A copy of a network the fleet does not know (an orphan: another
// manager's store, a removal that failed) is the host's own network: new
// fleet networks stay clear of its subnet, so joining that host works,
// and it is not hidden as a copy.
func TestOrphanCopy(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	e.fakes["h2"].AddNetworkSubnet("gone", "10.200.0.0/24", map[string]string{sdn.LabelNetworkID: strings.Repeat("ab", 32)})
	n := e.create(NetworkRequest{Name: "fo"})
	if n.Subnet.Overlaps(netip.MustParsePrefix("10.200.0.0/24")) {
		t.Fatalf("fo got %s, the orphan's subnet", n.Subnet)
	}
	e.connect("h1", "fo", "c1")
	e.connect("h2", "fo", "c2")
	if got := e.members("fo"); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Fatalf("members %v", got)
	}
	var copies []string
	for _, nw := range e.fakes["h2"].Networks() {
		if e.ctl.IsCopy(nw.Labels) {
			copies = append(copies, nw.Name)
		}
	}
	if !slices.Equal(copies, []string{"fo"}) {
		t.Errorf("h2's copies: %v, want fo alone (gone is an orphan)", copies)
	}
}

func TestLeaveIdle(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2", "h3")
	ctx := context.Background()
	e.create(NetworkRequest{Name: "fl"})
	e.connect("h1", "fl", "c1")
	e.connect("h2", "fl", "c2")
	e.ctl.LeaveIdle(ctx)
	if got := e.members("fl"); len(got) != 2 {
		t.Fatalf("left within the grace: %v", got)
	}
	backdateJoins(e.ctl)
	e.ctl.LeaveIdle(ctx)
	if got := e.members("fl"); len(got) != 2 {
		t.Fatalf("members with endpoints left: %v", got)
	}
	e.disconnect("h1", "fl", "c1")
	e.ctl.LeaveIdle(ctx)
	if got := e.members("fl"); !slices.Equal(got, []string{"h2"}) {
		t.Fatalf("members %v, want h2 alone", got)
	}
	if e.copyOf("h1", "fl") != nil {
		t.Error("h1 kept its copy")
	}
}

// Joins of different hosts do not wait for each other: a compose up
// creates its containers at once, and each host's first join makes its
// engine's copy (a network create, slow on a busy engine).
func TestJoinsOfHostsAtOnce(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	n := e.create(NetworkRequest{Name: "fn"})
	reached, release := make(chan struct{}), make(chan struct{})
	e.fakes["h1"].Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/networks/create") {
			close(reached)
			<-release
		}
		next.ServeHTTP(w, r)
	})
	ctx := context.Background()
	slow := make(chan error, 1)
	go func() { slow <- e.ctl.Connect(ctx, n, e.host("h1"), Addrs{}) }()
	<-reached
	done := make(chan error, 1)
	go func() { done <- e.ctl.Connect(ctx, n, e.host("h2"), Addrs{}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("join of h2: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the join of h2 waited for h1's engine")
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("join of h1: %v", err)
	}
	e.fakes["h1"].Intercept(nil)
	if got := e.members("fn"); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("members %v", got)
	}
	for _, h := range []string{"h1", "h2"} {
		if e.copyOf(h, "fn") == nil {
			t.Errorf("no copy on %s", h)
		}
	}
}

// Every label filter must hold, as on an engine: compose's down lists
// its relay networks with the project's label and the relay label, and
// took the project's default network for one when any label matched.
func TestListLabels(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1")
	e.create(NetworkRequest{Name: "default", Labels: map[string]string{"project": "p"}})
	e.create(NetworkRequest{Name: "relay", Labels: map[string]string{"project": "p", "relay": "true"}})
	e.create(NetworkRequest{Name: "other", Labels: map[string]string{"project": "q", "relay": "true"}})
	for _, tt := range []struct {
		filters string
		want    []string
	}{
		{`{"label":{"project=p":true,"relay":true}}`, []string{"relay"}},
		{`{"label":["project=p"]}`, []string{"default", "relay"}},
		{`{"label":["relay"]}`, []string{"other", "relay"}},
		{`{"label":["project=p","relay=false"]}`, nil},
	} {
		var got []string
		for _, o := range e.ctl.List(tt.filters) {
			got = append(got, o.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("list %s: %v, want %v", tt.filters, got, tt.want)
		}
	}
}

func TestPrune(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1")
	e.create(NetworkRequest{Name: "idle", Labels: map[string]string{"k": "v"}})
	e.create(NetworkRequest{Name: "idle2"})
	e.create(NetworkRequest{Name: "used"})
	e.connect("h1", "used", "c1")
	if got := e.ctl.Prune(`{"until":["1h"]}`); len(got) != 0 {
		t.Errorf("prune until: %v", got)
	}
	if got := e.ctl.Prune(`{"label":{"k=v":true}}`); !slices.Equal(got, []string{"idle"}) {
		t.Errorf("prune label=k=v: %v", got)
	}
	if got := e.ctl.Prune(`{"label!":["k"]}`); !slices.Equal(got, []string{"idle2"}) {
		t.Errorf("prune label!=k: %v", got)
	}
	if _, ok := e.ctl.Network("used"); !ok {
		t.Error("a fleet network with a member was pruned")
	}
	for _, tt := range []struct{ in, want string }{
		{"", `{"label!":["io.clocker.network.id"]}`},
		{`{"label":{"a":true}}`, `{"label":["a"],"label!":["io.clocker.network.id"]}`},
		{`{"label!":["mine"]}`, `{"label!":["mine"]}`},
		{`not json`, `not json`},
	} {
		if got := e.ctl.EnginePruneFilters(tt.in); got != tt.want {
			t.Errorf("engine prune filters of %q: %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFleetClients(t *testing.T) {
	nets := []sdn.Network{{ID: "ida", Name: "fa"}, {ID: "idb", Name: "fb"}, {ID: "idc", Name: "fc"}}
	served := []sdn.HostNetwork{{NetworkID: "ida"}, {NetworkID: "idb"}} // fc has no member here
	ctr := func(labels map[string]string, eps map[string]string) hosts.Container {
		ns := &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}
		for n, ip := range eps {
			ep := &network.EndpointSettings{}
			if ip != "" {
				ep.IPAddress = netip.MustParseAddr(ip)
			}
			ns.Networks[n] = ep
		}
		return hosts.Container{Summary: container.Summary{Labels: labels, NetworkSettings: ns}}
	}
	got := fleetClients([]hosts.Container{
		ctr(nil, map[string]string{"bridge": "172.17.0.2", "fa": "10.200.0.2", "fb": "10.200.1.2"}),
		ctr(nil, map[string]string{"local": "172.20.0.2", "fb": "10.200.1.3"}),
		ctr(nil, map[string]string{"bridge": "172.17.0.3"}),           // on no fleet network
		ctr(nil, map[string]string{"bridge": "172.17.0.4", "fc": ""}), // on one not served here
		ctr(nil, map[string]string{"fa": ""}),                         // created, not running
		ctr(map[string]string{sdn.LabelAgent: "1"}, map[string]string{"fa": "10.200.0.9"}),
	}, nets, served)
	want := map[netip.Addr][]string{
		netip.MustParseAddr("172.17.0.2"): {"ida", "idb"},
		netip.MustParseAddr("10.200.0.2"): {"ida", "idb"},
		netip.MustParseAddr("10.200.1.2"): {"ida", "idb"},
		netip.MustParseAddr("172.20.0.2"): {"idb"},
		netip.MustParseAddr("10.200.1.3"): {"idb"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("clients %v, want %v", got, want)
	}
}

// withAgent makes host's agent known as running and told to answer on dns.
func withAgent(c *Controller, host string, dns netip.Addr) *agentHost {
	ah := c.agents.host(host)
	c.agents.mu.Lock()
	defer c.agents.mu.Unlock()
	ah.id, ah.dns, ah.dnsReady = "agent-"+host, dns, dns
	return ah
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, "10.200.0.0/16", reg, "h1", "h2", "h3")
	e.create(NetworkRequest{Name: "fm"})
	e.create(NetworkRequest{Name: "fm2"})
	e.connect("h1", "fm", "c1")
	e.connect("h2", "fm", "c2")
	withAgent(e.ctl, "h1", netip.MustParseAddr("10.214.1.1")).stats = dns.Stats{Answered: 7, Forwarded: 3}
	e.ctl.agents.host("h3") // not running: no series
	want := `
# HELP clocker_fleetnet_dns_queries_total DNS queries to each host's agent since it started: answered with fleet names, or forwarded to the host's resolvers.
# TYPE clocker_fleetnet_dns_queries_total counter
clocker_fleetnet_dns_queries_total{host="h1",result="answered"} 7
clocker_fleetnet_dns_queries_total{host="h1",result="forwarded"} 3
# HELP clocker_fleetnet_network_hosts Member hosts of each fleet network.
# TYPE clocker_fleetnet_network_hosts gauge
clocker_fleetnet_network_hosts{network="fm"} 2
clocker_fleetnet_network_hosts{network="fm2"} 0
# HELP clocker_fleetnet_networks Fleet networks.
# TYPE clocker_fleetnet_networks gauge
clocker_fleetnet_networks 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"clocker_fleetnet_networks", "clocker_fleetnet_network_hosts", "clocker_fleetnet_dns_queries_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "clocker_fleetnet_network_containers"); err != nil || n != 2 {
		t.Errorf("container series: %d %v", n, err)
	}
	counts := map[string]int{}
	ctr := func(labels map[string]string, nets ...string) hosts.Container {
		ns := &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}
		for _, n := range nets {
			ns.Networks[n] = &network.EndpointSettings{}
		}
		return hosts.Container{Summary: container.Summary{Labels: labels, NetworkSettings: ns}}
	}
	countByNetwork([]hosts.Container{ctr(nil, "fm", "bridge"), ctr(nil, "fm"), ctr(map[string]string{sdn.LabelAgent: "1"}, "fm")}, counts)
	countByNetwork([]hosts.Container{ctr(nil, "fm2"), {}}, counts)
	if want := map[string]int{"fm": 2, "fm2": 1, "bridge": 1}; !maps.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}

// backdateJoins makes every join older than the grace.
func backdateJoins(c *Controller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, m := range c.joined {
		m.at = m.at.Add(-2 * LeaveGrace)
		c.joined[k] = m
	}
}

// A fleet network named like the prefix of another network's ID (names
// such as "cfc" are hex): the engine resolves a name it does not have as
// an ID prefix, which is not the copy.
func TestJoinNameLikeAnIDPrefix(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1")
	id := e.fakes["h1"].AddNetwork("other", nil)
	e.create(NetworkRequest{Name: id[:5]})
	e.connect("h1", id[:5], "c1")
	if cp := e.copyOf("h1", id[:5]); cp == nil || cp.Labels[sdn.LabelNetworkID] != e.network(id[:5]).ID {
		t.Fatalf("copy %+v", cp)
	}
	e.disconnect("h1", id[:5], "c1")
	if err := e.ctl.Remove(context.Background(), e.network(id[:5])); err != nil {
		t.Fatal(err)
	}
	if e.copyOf("h1", id[:5]) != nil || e.copyOf("h1", "other") == nil {
		t.Errorf("networks left: %v", e.fakes["h1"].Networks())
	}
}

func TestFleetLinks(t *testing.T) {
	nets := []sdn.Network{{ID: "ida", Name: "fa"}, {ID: "idb", Name: "fb"}}
	up, other := netip.MustParseAddr("10.200.0.40"), netip.MustParseAddr("10.200.1.40")
	records := map[string]map[string][]netip.Addr{
		"ida": {"upstream": {up}},
		"idb": {"upstream": {other}, "db": {other}},
	}
	ctr := func(state string, inspect string, eps map[string]string) hosts.Container {
		ns := &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}
		for n, ip := range eps {
			ns.Networks[n] = &network.EndpointSettings{IPAddress: netip.MustParseAddr(ip)}
		}
		return hosts.Container{Summary: container.Summary{State: container.ContainerState(state), NetworkSettings: ns}, Inspect: json.RawMessage(inspect)}
	}
	got := fleetLinks([]hosts.Container{
		// Links on fa: bar is upstream's address in fa (not fb's).
		ctr("running", `{"NetworkSettings":{"Networks":{"fa":{"Links":["Upstream:Bar","/db:/me/dbalias","nosuch:gone"]},"fb":{"Links":["db"]}}}}`,
			map[string]string{"fa": "10.200.0.2", "fb": "10.200.1.2"}),
		ctr("running", `{"NetworkSettings":{"Networks":{"fa":{}}}}`, map[string]string{"fa": "10.200.0.3"}),                      // no links
		ctr("exited", `{"NetworkSettings":{"Networks":{"fa":{"Links":["upstream:x"]}}}}`, map[string]string{"fa": "10.200.0.4"}), // not running
		ctr("running", `{"NetworkSettings":{"Networks":{"local":{"Links":["upstream:x"]}}}}`, map[string]string{"local": "172.20.0.2"}),
	}, nets, records)
	aliases := map[string][]netip.Addr{"bar": {up}, "db": {other}}
	want := map[netip.Addr]map[string][]netip.Addr{
		netip.MustParseAddr("10.200.0.2"): aliases,
		netip.MustParseAddr("10.200.1.2"): aliases,
	}
	if !maps.EqualFunc(got, want, func(a, b map[string][]netip.Addr) bool { return maps.EqualFunc(a, b, slices.Equal) }) {
		t.Errorf("links %v, want %v", got, want)
	}
}

// A fleet network shows its IPAM part as an engine shows what the create
// sent: Options as sent (null when absent, {} when empty), the auxiliary
// addresses; every member's copy reserves them (but its own gateway).
func TestCreateIPAMAsSent(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	withAux := &IPAMRequest{Driver: "default", Config: []IPAMConfigRequest{{
		Subnet: "172.28.0.0/16", IPRange: "172.28.5.0/24", Gateway: "172.28.5.254",
		AuxiliaryAddresses: map[string]string{"a": "172.28.1.5", "b": "172.28.1.6"},
	}}}
	n := e.create(NetworkRequest{Name: "fa", IPAM: withAux})
	e.create(NetworkRequest{Name: "fe", IPAM: &IPAMRequest{Options: map[string]string{}}})
	e.create(NetworkRequest{Name: "fo", IPAM: &IPAMRequest{Options: map[string]string{"x": "y"}}})
	e.create(NetworkRequest{Name: "fn"})
	want := map[string]string{"fa": "null", "fe": "{}", "fo": `{"x":"y"}`, "fn": "null"}
	for _, o := range e.ctl.List("") {
		got, _ := json.Marshal(o.IPAM.Options)
		if string(got) != want[o.Name] || o.IPAM.Driver != "default" {
			t.Errorf("%s: IPAM %+v, want Options %s", o.Name, o.IPAM, want[o.Name])
		}
	}
	o, err := e.ctl.Inspect(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(o.IPAM.Config)
	if w := `[{"Subnet":"172.28.0.0/16","IPRange":"172.28.5.0/24","Gateway":"172.28.5.254","AuxiliaryAddresses":{"a":"172.28.1.5","b":"172.28.1.6"}}]`; string(got) != w {
		t.Errorf("IPAM config %s, want %s", got, w)
	}
	// A --subnet without --gateway shows no Gateway, as on an engine; a
	// pool the fleet chose shows the one an engine would have picked.
	e.create(NetworkRequest{Name: "fs", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "172.29.0.0/24"}}}})
	for _, o := range e.ctl.List("") {
		if gw := o.IPAM.Config[0].Gateway; (gw == "") != (o.Name == "fs") {
			t.Errorf("%s: IPAM config %+v", o.Name, o.IPAM.Config)
		}
	}
	// A member's copy reserves the aux addresses, less its own gateway.
	n.Hosts = map[string]sdn.HostSlice{"h1": {IPRange: netip.MustParsePrefix("172.28.1.0/27"), Gateway: netip.MustParseAddr("172.28.1.5")}}
	en, err := n.Engine("h1")
	if err != nil {
		t.Fatal(err)
	}
	if len(en.Aux) != 1 || en.Aux["b"] != netip.MustParseAddr("172.28.1.6") {
		t.Errorf("copy's aux addresses %v, want b only", en.Aux)
	}
	for _, tt := range []struct {
		aux     string
		wantErr error
	}{{"172.29.0.1", errdefs.ErrForbidden}, {"nonsense", errdefs.ErrInvalid}} {
		req := NetworkRequest{Name: "bad", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "172.30.0.0/16", AuxiliaryAddresses: map[string]string{"a": tt.aux}}}}}
		if _, err := e.ctl.Create(context.Background(), req); !errors.Is(err, tt.wantErr) {
			t.Errorf("aux %s: %v, want %v", tt.aux, err, tt.wantErr)
		}
	}
	if _, ok := e.ctl.Network("bad"); ok {
		t.Error("a refused create made a network")
	}
}
