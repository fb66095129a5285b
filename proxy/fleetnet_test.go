package proxy

import (
	"context"
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/fleetnet"
	"github.com/clocker/clocker/sdn/ipam"
)

// fleetNetEnv is three fake engines behind a server with fleet networks
// from pool, and a container on each host (c1 on h1 …).
func fleetNetEnv(t *testing.T, pool string) (*vnEnv, map[string]string) {
	t.Helper()
	e := newVNEnv(t, "h1", "h2", "h3")
	a, err := ipam.New(ipam.Config{Pool: netip.MustParsePrefix(pool)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.Nets, err = fleetnet.New(e.fleet, a, e.srv.Log, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for i, h := range []string{"h1", "h2", "h3"} {
		name := "c" + string(rune('1'+i))
		ids[name] = e.addContainer(h, name, nil)
	}
	return e, ids
}

func newCalls(before, after map[string][]string) []string {
	var got []string
	for host, calls := range after {
		for _, c := range calls[len(before[host]):] {
			got = append(got, host+":"+c)
		}
	}
	slices.Sort(got)
	return got
}

func TestFleetNetworkCreate(t *testing.T) {
	e, _ := fleetNetEnv(t, "10.200.0.0/23") // room for two /24s
	e.fakes["h2"].addNetwork("taken", nil)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantMsg    string
	}{
		{"default driver", `{"Name":"f1","CheckDuplicate":true}`, 201, ""},
		{"overlay, user subnet", `{"Name":"f2","Driver":"overlay","IPAM":{"Config":[{"Subnet":"10.50.0.0/24","Gateway":"10.50.0.1"}]}}`, 201, ""},
		{"duplicate fleet name", `{"Name":"f1"}`, 409, "network with name f1 already exists"},
		{"name of a host's network", `{"Name":"taken"}`, 409, "network with name taken already exists"},
		{"invalid CIDR", `{"Name":"bad","IPAM":{"Config":[{"Subnet":"10.50.300.0/24"}]}}`, 400, "invalid"},
		{"overlapping subnet", `{"Name":"bad","IPAM":{"Config":[{"Subnet":"10.50.0.128/25"}]}}`, 409, "overlap"},
		{"gateway outside the subnet", `{"Name":"bad","IPAM":{"Config":[{"Subnet":"10.60.0.0/24","Gateway":"10.61.0.1"}]}}`, 400, "gateway"},
		{"--ipv6 without an IPv6 subnet: the engine's 404", `{"Name":"bad","EnableIPv6":true}`, 404, "could not find an available, non-overlapping IPv6 address pool"},
		{"dual-stack", `{"Name":"f6","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:6::/64"},{"Subnet":"10.70.0.0/24"}]}}`, 201, ""},
		{"from the pool", `{"Name":"f3"}`, 201, ""},
		{"exhausted pool", `{"Name":"bad"}`, 409, "pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.mutations()
			r := e.do("POST", "/v1.41/networks/create", "application/json", tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantMsg != "" && !strings.Contains(strings.ToLower(r.message()), strings.ToLower(tt.wantMsg)) {
				t.Errorf("message %q, want it to mention %q", r.message(), tt.wantMsg)
			}
			// A fleet network touches no engine until a container joins it.
			if got := newCalls(before, e.mutations()); len(got) != 0 {
				t.Errorf("engines got %v", got)
			}
		})
	}
	t.Run("ls shows each fleet network once", func(t *testing.T) {
		r := e.do("GET", "/v1.41/networks", "", "")
		var list []struct{ Name, Scope string }
		if err := json.Unmarshal([]byte(r.body), &list); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range list {
			names = append(names, n.Name)
		}
		for _, n := range []string{"f1", "f2", "f3", "taken", "bridge"} {
			if c := fnCount(names, n); c != 1 {
				t.Errorf("%s listed %d times: %v", n, c, names)
			}
		}
		r = e.do("GET", `/v1.41/networks?filters={"name":{"f2":true}}`, "", "")
		if !strings.Contains(r.body, `"f2"`) || strings.Contains(r.body, `"f1"`) {
			t.Errorf("filtered list: %s", r.body)
		}
	})
	t.Run("clocker.scope=local stays on one host", func(t *testing.T) {
		before := e.mutations()
		r := e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"loc","Options":{"clocker.scope":"local"}}`)
		if r.status != 201 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := newCalls(before, e.mutations()); len(got) != 1 || !strings.HasSuffix(got[0], ":POST /networks/create") {
			t.Errorf("engines got %v, want one create", got)
		}
		if _, ok := e.srv.fleetNetwork("loc"); ok {
			t.Error("a local network became a fleet network")
		}
		for _, f := range e.fakes {
			for _, b := range f.bodies() {
				if strings.Contains(b, `"loc"`) && strings.Contains(b, "clocker.scope") {
					t.Errorf("the engine got Clocker's option: %s", b)
				}
			}
		}
		r = e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"f1","Options":{"clocker.scope":"local"}}`)
		if r.status != 409 {
			t.Errorf("local network named as a fleet network: %d %s", r.status, r.body)
		}
	})
}

func TestFleetNetworkConnectInspectRemove(t *testing.T) {
	e, ids := fleetNetEnv(t, "10.200.0.0/16")
	if r := e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"fn","Labels":{"app":"x"}}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	n, _ := e.srv.fleetNetwork("fn")

	// Containers of two hosts join: each host's engine gets its copy, with
	// its own slice, then the connect.
	for _, c := range []string{"c1", "c2"} {
		r := e.do("POST", "/v1.41/networks/fn/connect", "application/json", `{"Container":"`+c+`"}`)
		if r.status != 200 {
			t.Fatalf("connect %s: %d %s", c, r.status, r.body)
		}
	}
	n, _ = e.srv.fleetNetwork("fn")
	if got := n.Members(); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Fatalf("members %v", got)
	}
	for _, h := range []string{"h1", "h2"} {
		cp := e.fakes[h].networkByName("fn")
		if cp == nil || cp.Labels[sdn.LabelNetworkID] != n.ID || cp.Labels["app"] != "x" {
			t.Fatalf("%s's copy: %+v", h, cp)
		}
	}
	if e.fakes["h3"].networkByName("fn") != nil {
		t.Error("h3 has a copy without a member")
	}
	if n.Hosts["h1"].Gateway == n.Hosts["h2"].Gateway {
		t.Errorf("one gateway for two hosts: %v", n.Hosts)
	}

	t.Run("ls hides the copies", func(t *testing.T) {
		r := e.do("GET", "/v1.41/networks", "", "")
		if c := strings.Count(r.body, `"Name":"fn"`); c != 1 {
			t.Errorf("fn listed %d times: %s", c, r.body)
		}
	})
	t.Run("inspect lists members of every host", func(t *testing.T) {
		r := e.do("GET", "/v1.41/networks/fn", "", "")
		var got struct {
			ID         string `json:"Id"`
			Scope      string
			Containers map[string]struct{ Name string }
			IPAM       struct{ Config []struct{ Subnet string } }
		}
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != n.ID || got.Scope != "local" || len(got.Containers) != 2 ||
			got.Containers[ids["c1"]].Name != "c1" || got.Containers[ids["c2"]].Name != "c2" {
			t.Errorf("inspect: %s", r.body)
		}
		if len(got.IPAM.Config) != 1 || got.IPAM.Config[0].Subnet != n.Subnet.String() {
			t.Errorf("IPAM: %+v", got.IPAM)
		}
	})
	t.Run("containers show the fleet network's ID", func(t *testing.T) {
		// Each engine gave its copy an ID of its own; clients (compose's
		// recreate check) compare with the ID the network list shows.
		for _, c := range []string{"c1", "c2"} {
			var got struct {
				NetworkSettings struct {
					Networks map[string]struct{ NetworkID string }
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				r := e.do("GET", "/v1.41/containers/"+c+"/json", "", "")
				if err := json.Unmarshal([]byte(r.body), &got); err != nil {
					t.Fatal(err)
				}
				if _, ok := got.NetworkSettings.Networks["fn"]; ok || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if id := got.NetworkSettings.Networks["fn"].NetworkID; id != n.ID {
				t.Errorf("inspect %s: fn's NetworkID %q, want the fleet network's %s", c, id, n.ID)
			}
		}
		var list []struct {
			Names           []string
			NetworkSettings struct {
				Networks map[string]struct{ NetworkID string }
			}
		}
		r := e.do("GET", "/v1.41/containers/json?filters="+url.QueryEscape(`{"network":["`+n.ID[:12]+`"]}`), "", "")
		if err := json.Unmarshal([]byte(r.body), &list); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		var names []string
		for _, c := range list {
			names = append(names, c.Names[0])
			if id := c.NetworkSettings.Networks["fn"].NetworkID; id != n.ID {
				t.Errorf("list %s: fn's NetworkID %q, want %s", c.Names[0], id, n.ID)
			}
		}
		if slices.Sort(names); !slices.Equal(names, []string{"/c1", "/c2"}) {
			t.Errorf("network=%s lists %v, want c1 and c2", n.ID[:12], names)
		}
	})
	t.Run("rm refused while in use", func(t *testing.T) {
		before := e.mutations()
		r := e.do("DELETE", "/v1.41/networks/fn", "", "")
		if r.status != 403 || !strings.Contains(r.message(), "has active endpoints") {
			t.Fatalf("rm in use: %d %s", r.status, r.body)
		}
		if got := newCalls(before, e.mutations()); len(got) != 0 {
			t.Errorf("engines got %v", got)
		}
	})
	t.Run("disconnect, then rm everywhere", func(t *testing.T) {
		for _, c := range []string{"c1", "c2"} {
			if r := e.do("POST", "/v1.41/networks/"+n.ID[:12]+"/disconnect", "application/json", `{"Container":"`+c+`"}`); r.status != 200 {
				t.Fatalf("disconnect %s: %d %s", c, r.status, r.body)
			}
		}
		if r := e.do("DELETE", "/v1.41/networks/fn", "", ""); r.status != 204 {
			t.Fatalf("rm: %d %s", r.status, r.body)
		}
		for _, h := range []string{"h1", "h2", "h3"} {
			if e.fakes[h].networkByName("fn") != nil {
				t.Errorf("%s still has fn", h)
			}
		}
		if r := e.do("GET", "/v1.41/networks/fn", "", ""); r.status != 404 {
			t.Errorf("inspect after rm: %d", r.status)
		}
	})
}

// The fleet-network create step as the proxy wires it: a fleet network
// pins nothing; the bind joins the host and sets the DNS.
func TestFleetCreateStep(t *testing.T) {
	e, _ := fleetNetEnv(t, "10.200.0.0/16")
	e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"fa"}`)
	e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"fb"}`)
	fb, _ := e.srv.fleetNetwork("fb")
	h2, _ := e.fleet.Host("h2")
	tests := []struct {
		name    string
		spec    container.CreateRequest
		wantDNS []string // "fa"/"fb": h2's gateway in that network
		wantNM  string
		wantEPs []string
	}{
		{name: "no fleet network", spec: container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: "bridge"}}, wantNM: "bridge"},
		{name: "one, by name", spec: container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: "fa"}},
			wantDNS: []string{"fa"}, wantNM: "fa"},
		{name: "two, one by ID", spec: container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: "fa"},
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{fb.ID[:12]: {Aliases: []string{"x"}}}}},
			wantDNS: []string{"fa", "fb"}, wantNM: "fa", wantEPs: []string{"fb"}},
		{name: "the user's DNS wins", spec: container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: "fa", DNS: []netip.Addr{netip.MustParseAddr("9.9.9.9")}}},
			wantDNS: []string{"9.9.9.9"}, wantNM: "fa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(tt.spec)
			c, err := admission.NewCreate("", nil, body)
			if err != nil {
				t.Fatal(err)
			}
			step := fleetnet.NewCreateStep(e.fleet, e.srv.Nets)
			if err := step.Prepare(context.Background(), c); err != nil || len(c.Request.Pins) != 0 {
				t.Fatalf("pins %v %v: a fleet network pins nothing", c.Request.Pins, err)
			}
			c.Host = h2
			if _, err := step.Bind(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			out, err := c.Body()
			if err != nil {
				t.Fatal(err)
			}
			var got container.CreateRequest
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, d := range tt.wantDNS {
				if n, ok := e.srv.fleetNetwork(d); ok {
					d = n.Hosts["h2"].Gateway.String()
				}
				want = append(want, d)
			}
			var dns []string
			for _, a := range got.HostConfig.DNS {
				dns = append(dns, a.String())
			}
			if !slices.Equal(dns, want) {
				t.Errorf("Dns %v, want %v", dns, want)
			}
			if string(got.HostConfig.NetworkMode) != tt.wantNM {
				t.Errorf("NetworkMode %s, want %s", got.HostConfig.NetworkMode, tt.wantNM)
			}
			if got.NetworkingConfig != nil {
				var eps []string
				for k := range got.NetworkingConfig.EndpointsConfig {
					eps = append(eps, k)
				}
				if !slices.Equal(eps, tt.wantEPs) {
					t.Errorf("endpoints %v, want %v", eps, tt.wantEPs)
				}
			}
		})
	}
	if e.fakes["h2"].networkByName("fa") == nil || e.fakes["h2"].networkByName("fb") == nil {
		t.Error("h2 did not get its copies")
	}
	if e.fakes["h1"].networkByName("fa") != nil {
		t.Error("h1 got a copy without a member")
	}
}

func TestWithoutAgents(t *testing.T) {
	e, _ := fleetNetEnv(t, "10.200.0.0/16")
	e.addContainer("h1", "clocker-agent-h1", map[string]string{sdn.LabelAgent: "1"})
	r := e.do("GET", "/v1.41/containers/json?all=1", "", "")
	if strings.Contains(r.body, "clocker-agent-h1") {
		t.Errorf("the agent is listed: %s", r.body)
	}
	r = e.do("GET", `/v1.41/containers/json?all=1&filters={"label":{"io.clocker.agent":true}}`, "", "")
	if !strings.Contains(r.body, "clocker-agent-h1") {
		t.Errorf("the agent is not listed when asked for: %s", r.body)
	}
}

func fnCount(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestFleetNetworkPrune(t *testing.T) {
	e, _ := fleetNetEnv(t, "10.200.0.0/16")
	e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"idle","Labels":{"k":"v"}}`)
	e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"idle2"}`)
	e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"used"}`)
	if r := e.do("POST", "/v1.41/networks/used/connect", "application/json", `{"Container":"c1"}`); r.status != 200 {
		t.Fatalf("connect: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1.41/networks/used/disconnect", "application/json", `{"Container":"c1"}`); r.status != 200 {
		t.Fatalf("disconnect: %d %s", r.status, r.body)
	}
	prune := func(filters string) []string {
		t.Helper()
		r := e.do("POST", "/v1.41/networks/prune?filters="+filters, "", "")
		var rep struct{ NetworksDeleted []string }
		if r.status != 200 || json.Unmarshal([]byte(r.body), &rep) != nil {
			t.Fatalf("prune: %d %s", r.status, r.body)
		}
		slices.Sort(rep.NetworksDeleted)
		return rep.NetworksDeleted
	}
	if got := prune(`{"label":{"k=v":true}}`); !slices.Equal(got, []string{"idle"}) {
		t.Errorf("prune label=k=v: %v", got)
	}
	// The idle member host's copy is Clocker's to remove (after the grace),
	// not the engine's prune.
	if got := prune(""); !slices.Equal(got, []string{"idle2"}) {
		t.Errorf("prune: %v", got)
	}
	if e.fakes["h1"].networkByName("used") == nil {
		t.Error("the engine's prune removed h1's copy of a fleet network")
	}
	if _, ok := e.srv.fleetNetwork("used"); !ok {
		t.Error("a fleet network with a member was pruned")
	}
}

// --ip must lie in the slice of the host the container lands on: the
// engine hands out no other address. A refused connect makes nothing.
func TestFleetNetworkConnectRequestedIP(t *testing.T) {
	e, _ := fleetNetEnv(t, "10.200.0.0/16")
	e.do("POST", "/v1.41/networks/create", "application/json", `{"Name":"fp","IPAM":{"Config":[{"Subnet":"10.77.0.0/24"}]}}`)
	// h1 joins first and gets the first slice (10.77.0.0/27).
	if r := e.do("POST", "/v1.41/networks/fp/connect", "application/json", `{"Container":"c1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.77.0.10"}}}`); r.status != 200 {
		t.Fatalf("connect with an address of its host's slice: %d %s", r.status, r.body)
	}
	for _, tt := range []struct{ name, body, want string }{
		{"another host's slice", `{"Container":"c3","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.77.0.11"}}}`, "10.77.0.32/27"},
		{"outside the subnet", `{"Container":"c3","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.78.0.11"}}}`, "does not belong to any of this network's subnets"},
		{"not an address", `{"Container":"c3","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.77.0.300"}}}`, "invalid IPv4 address: 10.77.0.300"},
		{"no container", `{"EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.77.0.40"}}}`, `invalid name or ID supplied: ""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.mutations()
			r := e.do("POST", "/v1.41/networks/fp/connect", "application/json", tt.body)
			if r.status != 400 || !strings.Contains(r.message(), tt.want) {
				t.Fatalf("connect: %d %s, want a 400 naming %q", r.status, r.body, tt.want)
			}
			if got := newCalls(before, e.mutations()); len(got) != 0 {
				t.Errorf("engines got %v", got)
			}
			if n, _ := e.srv.fleetNetwork("fp"); !slices.Equal(n.Members(), []string{"h1"}) {
				t.Errorf("members %v, want h1 alone", n.Members())
			}
		})
	}
	if r := e.do("POST", "/v1.41/networks/fp/connect", "application/json", `{"Container":"c3","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.77.0.40"}}}`); r.status != 200 {
		t.Fatalf("connect with an address of its host's slice: %d %s", r.status, r.body)
	}
}
