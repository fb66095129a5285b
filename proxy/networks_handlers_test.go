package proxy

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestNetworkCreate(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(e *vnEnv)
		contentType string
		body        string
		wantStatus  int
		wantMsg     string
		wantHost    string // where the network must be
		wantName    string
	}{
		{name: "spread: fewest containers, then fewest networks", setup: func(e *vnEnv) {
			e.addContainer("h1", "busy", nil)
			e.fakes["h2"].addNetwork("other", nil)
		}, body: `{"Name":"n1","CheckDuplicate":true,"Driver":"bridge","Options":{},"Labels":{}}`, wantStatus: 201, wantHost: "h3", wantName: "n1"},
		{name: "the label names the host", body: `{"Name":"n1","Labels":{"io.clocker.host":"h2"}}`, wantStatus: 201, wantHost: "h2", wantName: "n1"},
		{name: "HOST/NAME names the host", body: `{"Name":"h3/n1"}`, wantStatus: 201, wantHost: "h3", wantName: "n1"},
		{name: "a compose project's network goes where the project is", setup: func(e *vnEnv) {
			e.addContainer("h2", "busy", nil)
			e.fakes["h2"].addVolume("p_data", map[string]string{"com.docker.compose.project": "p"})
		}, body: `{"Name":"p_back","Labels":{"com.docker.compose.project":"p"}}`, wantStatus: 201, wantHost: "h2", wantName: "p_back"},
		{name: "a name another host has: compose's 409", setup: func(e *vnEnv) {
			e.fakes["h3"].addNetwork("n1", nil)
		}, body: `{"Name":"n1","CheckDuplicate":true}`, wantStatus: 409, wantMsg: "network with name n1 already exists"},
		{name: "a name another host has, without CheckDuplicate", setup: func(e *vnEnv) {
			e.fakes["h3"].addNetwork("n1", nil)
		}, body: `{"Name":"n1"}`, wantStatus: 409, wantMsg: "network with name n1 already exists"},
		{name: "a built-in name: the engine's 403", body: `{"Name":"bridge"}`, wantStatus: 403,
			wantMsg: "operation is not permitted on predefined bridge network "},
		{name: "empty name", body: `{"Name":""}`, wantStatus: 400, wantMsg: "invalid name: "},
		{name: "unknown host", body: `{"Name":"n1","Labels":{"io.clocker.host":"nowhere"}}`, wantStatus: 400,
			wantMsg: `label io.clocker.host=nowhere: no host "nowhere" in the fleet (hosts: h1, h2, h3)`},
		{name: "malformed JSON", body: `{"Name":"x"`, wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "wrong types", body: `{"Name":["x"]}`, wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "empty body", body: ``, wantStatus: 400, wantMsg: "got EOF while reading request body"},
		{name: "not JSON", contentType: "application/x-www-form-urlencoded", body: `Name=x`, wantStatus: 400,
			wantMsg: "Content-Type specified (application/x-www-form-urlencoded) must be 'application/json'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newVNEnv(t, "h1", "h2", "h3")
			if tt.setup != nil {
				tt.setup(e)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			r := e.do("POST", "/v1.41/networks/create", ct, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantStatus >= 400 {
				checkMessage(t, r.message(), tt.wantMsg)
				for _, f := range e.fakes {
					if n := f.networkByName("n1"); n != nil && f.name != "h3" {
						t.Errorf("%s made n1", f.name)
					}
					if n := len(f.Networks()); n > 4 {
						t.Errorf("%s has %d networks", f.name, n)
					}
				}
				return
			}
			var got struct{ Id, Warning string }
			if err := json.Unmarshal([]byte(r.body), &got); err != nil || got.Id == "" {
				t.Fatalf("answer %s", r.body)
			}
			n := e.fakes[tt.wantHost].networkByName(tt.wantName)
			if n == nil || n.ID != got.Id {
				t.Fatalf("%s has no network %s with ID %s", tt.wantHost, tt.wantName, got.Id)
			}
			if n.Labels[HostLabel] != tt.wantHost {
				t.Errorf("labels %v", n.Labels)
			}
			for host, calls := range e.mutations() {
				if host != tt.wantHost {
					t.Errorf("%s was changed too: %v", host, calls)
				}
			}
		})
	}
}

// networkEnv: h1 has n1 and container c1, h2 has n2 and c2, h3 has c3.
func networkEnv(t *testing.T) (e *vnEnv, ids map[string]string) {
	e = newVNEnv(t, "h1", "h2", "h3")
	ids = map[string]string{
		"n1": e.fakes["h1"].addNetwork("n1", map[string]string{HostLabel: "h1"}),
		"n2": e.fakes["h2"].addNetwork("n2", map[string]string{"tier": "db"}),
		"c1": e.addContainer("h1", "c1", nil),
		"c2": e.addContainer("h2", "c2", nil),
		"c3": e.addContainer("h3", "c3", nil),
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		ids[h+"/bridge"] = e.fakes[h].networkByName("bridge").ID
	}
	return e, ids
}

func TestNetworkListInspect(t *testing.T) {
	e, ids := networkEnv(t)
	filters := func(f string) string { return "?filters=" + url.QueryEscape(f) }
	lists := []struct {
		name, query string
		want        []string
	}{
		{name: "built-ins once, user networks with their host", query: "",
			want: []string{"bridge#" + ids["h1/bridge"], "host#" + e.fakes["h1"].networkByName("host").ID, "n1@h1", "n2@h2", "none#" + e.fakes["h1"].networkByName("none").ID}},
		{name: "filters passed to the engines", query: filters(`{"label":{"tier=db":true}}`), want: []string{"n2@h2"}},
		{name: "a built-in of another host by ID", query: filters(`{"id":{"` + ids["h2/bridge"][:12] + `":true}}`), want: []string{"bridge#" + ids["h2/bridge"]}},
		{name: "host filter", query: filters(`{"label":{"io.clocker.host=h2":true}}`), want: []string{"n2@h2"}},
		{name: "legacy filter form", query: filters(`{"name":["n"]}`), want: []string{"n1@h1", "n2@h2", "none#" + e.fakes["h1"].networkByName("none").ID}},
		{name: "nothing matches: [], not null", query: filters(`{"name":{"nowhere":true}}`), want: []string{}},
	}
	for _, tt := range lists {
		t.Run("list/"+tt.name, func(t *testing.T) {
			r := e.do("GET", "/v1.41/networks"+tt.query, "", "")
			var l []json.RawMessage
			if r.status != 200 || json.Unmarshal([]byte(r.body), &l) != nil {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			if strings.TrimSpace(r.body) == "null" {
				t.Fatal("list answered null")
			}
			if got := nameAtHost(t, l); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			checkHostLabel(t, tt.query, l)
		})
	}
	if r := e.do("GET", "/networks"+filters(`{"bogus":["x"]}`), "", ""); r.status != 400 || r.message() != "Invalid filter 'bogus'" {
		t.Errorf("bad filter: %d %s", r.status, r.body)
	}

	inspects := []struct {
		name, ref  string
		wantStatus int
		want       string // NAME@HOST, NAME#ID, or the error message
	}{
		{name: "by name", ref: "n2", wantStatus: 200, want: "n2@h2"},
		{name: "by ID", ref: ids["n1"], wantStatus: 200, want: "n1@h1"},
		{name: "by ID prefix", ref: ids["n2"][:10], wantStatus: 200, want: "n2@h2"},
		{name: "HOST/NAME", ref: "h2/n2", wantStatus: 200, want: "n2@h2"},
		{name: "a built-in: the first host's", ref: "bridge", wantStatus: 200, want: "bridge#" + ids["h1/bridge"]},
		{name: "a built-in of a host", ref: "h3/bridge", wantStatus: 200, want: "bridge#" + ids["h3/bridge"]},
		{name: "a built-in by ID", ref: ids["h2/bridge"], wantStatus: 200, want: "bridge#" + ids["h2/bridge"]},
		{name: "unknown", ref: "nope", wantStatus: 404, want: "network nope not found"},
		{name: "HOST/NAME not there", ref: "h1/n2", wantStatus: 404, want: "network n2 not found"},
	}
	for _, tt := range inspects {
		t.Run("inspect/"+tt.name, func(t *testing.T) {
			r := e.do("GET", "/v1.41/networks/"+tt.ref+"?verbose=false", "", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if r.status != 200 {
				checkMessage(t, r.message(), tt.want)
				return
			}
			if got := nameAtHost(t, []json.RawMessage{json.RawMessage(r.body)}); got[0] != tt.want {
				t.Errorf("got %s, want %s", got[0], tt.want)
			}
		})
	}
	if len(e.mutations()) != 0 {
		t.Errorf("reads changed hosts: %v", e.mutations())
	}
}

func TestNetworkConnect(t *testing.T) {
	e, ids := networkEnv(t)
	tests := []struct {
		name, action string
		network      string
		body         string
		wantStatus   int
		wantMsg      string
		wantCall     string // HOST: the call the engine got
	}{
		{name: "same host, by name", action: "connect", network: "n1", body: `{"Container":"c1","EndpointConfig":{"Aliases":["a"]}}`,
			wantStatus: 200, wantCall: "h1:POST /networks/" + ids["n1"] + "/connect"},
		{name: "again: the engine's 403", action: "connect", network: "n1", body: `{"Container":"c1"}`,
			wantStatus: 403, wantMsg: "endpoint with name c1 already exists in network n1", wantCall: "h1:POST /networks/" + ids["n1"] + "/connect"},
		{name: "a container of another host", action: "connect", network: "n1", body: `{"Container":"c2"}`, wantStatus: 409,
			wantMsg: "container c2 is on host h2 but network n1 is on host h1: a container can only join a per-host network of its own host (fleet networks span hosts)"},
		{name: "a built-in: the container's host", action: "connect", network: "host", body: `{"Container":"c3"}`,
			wantStatus: 200, wantCall: "h3:POST /networks/host/connect"},
		{name: "unknown container", action: "connect", network: "n1", body: `{"Container":"nope"}`, wantStatus: 404, wantMsg: "No such container: nope"},
		{name: "unknown network", action: "connect", network: "nope", body: `{"Container":"c1"}`, wantStatus: 404, wantMsg: "network nope not found"},
		{name: "no container", action: "connect", network: "n1", body: `{"Container":""}`, wantStatus: 400, wantMsg: `invalid name or ID supplied: ""`},
		{name: "malformed JSON", action: "connect", network: "n1", body: `{"Container":"c1"`, wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "empty body", action: "connect", network: "n1", body: ``, wantStatus: 400, wantMsg: "got EOF while reading request body"},
		{name: "disconnect from another host", action: "disconnect", network: "n2", body: `{"Container":"c1"}`, wantStatus: 409,
			wantMsg: "container c1 is on host h1 but network n2 is on host h2: a container can only be connected to a per-host network of its own host (fleet networks span hosts)"},
		{name: "disconnect", action: "disconnect", network: "n1", body: `{"Container":"c1","Force":false}`,
			wantStatus: 200, wantCall: "h1:POST /networks/" + ids["n1"] + "/disconnect"},
		{name: "forced disconnect of a container that is gone", action: "disconnect", network: "n1", body: `{"Container":"ghost","Force":true}`,
			wantStatus: 404, wantMsg: "endpoint ghost not found", wantCall: "h1:POST /networks/" + ids["n1"] + "/disconnect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.mutations()
			r := e.do("POST", "/v1.41/networks/"+tt.network+"/"+tt.action, "application/json", tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantMsg != "" {
				checkMessage(t, r.message(), tt.wantMsg)
			}
			after := e.mutations()
			var got []string
			for host, calls := range after {
				for _, c := range calls[len(before[host]):] {
					got = append(got, host+":"+c)
				}
			}
			var want []string
			if tt.wantCall != "" {
				want = []string{tt.wantCall}
			}
			if !slices.Equal(got, want) {
				t.Errorf("engines got %v, want %v", got, want)
			}
		})
	}
	// The engine got the container's full ID, not the name to resolve again,
	// and the rest of the body as the client sent it.
	f := e.fakes["h1"]
	first := f.bodies()[0]
	if first != `{"Container":"`+ids["c1"]+`","EndpointConfig":{"Aliases":["a"]}}` {
		t.Errorf("connect body on h1: %s", first)
	}
}

func TestNetworkRemovePrune(t *testing.T) {
	e, ids := networkEnv(t)
	if r := e.do("POST", "/networks/n1/connect", "application/json", `{"Container":"c1"}`); r.status != 200 {
		t.Fatalf("connect: %d %s", r.status, r.body)
	}
	e.fakes["h1"].addNetwork("dup", nil)
	e.fakes["h3"].addNetwork("dup", nil)
	e.fakes["h3"].addNetwork("spare", nil)
	tests := []struct {
		name, ref  string
		wantStatus int
		wantMsg    string
		gone       string // HOST/NAME
	}{
		{name: "in use: the engine's 403", ref: "n1", wantStatus: 403,
			wantMsg: "error while removing network: network n1 id " + ids["n1"] + " has active endpoints"},
		{name: "a built-in: the engine's 403", ref: "bridge", wantStatus: 403, wantMsg: "bridge is a pre-defined network and cannot be removed"},
		{name: "unknown", ref: "nope", wantStatus: 404, wantMsg: "network nope not found"},
		{name: "on two hosts", ref: "dup", wantStatus: 400,
			wantMsg: "network dup is ambiguous (2 matches found on hosts h1, h3): name one as HOST/dup (e.g. h1/dup)"},
		{name: "HOST/NAME", ref: "h3/dup", wantStatus: 204, gone: "h3/dup"},
		{name: "by ID prefix", ref: ids["n2"][:12], wantStatus: 204, gone: "h2/n2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("DELETE", "/v1.41/networks/"+tt.ref, "", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantMsg != "" {
				checkMessage(t, r.message(), tt.wantMsg)
			}
			if host, name, ok := strings.Cut(tt.gone, "/"); ok && e.fakes[host].networkByName(name) != nil {
				t.Errorf("%s still has %s", host, name)
			}
		})
	}
	if e.fakes["h1"].networkByName("dup") == nil {
		t.Fatal("h1's dup was removed")
	}
	if r := e.do("POST", "/networks/prune?filters="+url.QueryEscape(`{"bogus":["x"]}`), "", ""); r.status != 400 {
		t.Errorf("bad prune filter: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1.41/networks/prune", "", "")
	var rep struct{ NetworksDeleted []string }
	if r.status != 200 || json.Unmarshal([]byte(r.body), &rep) != nil {
		t.Fatalf("prune: %d %s", r.status, r.body)
	}
	if !slices.Equal(rep.NetworksDeleted, []string{"dup", "spare"}) {
		t.Errorf("pruned %v", rep.NetworksDeleted)
	}
	if e.fakes["h1"].networkByName("n1") == nil || e.fakes["h2"].networkByName("bridge") == nil {
		t.Error("prune removed a network in use or a built-in")
	}
}
