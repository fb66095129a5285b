package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type listedHost struct {
	Name, Address, Provisioner, State string
	Containers, NCPU                  int
	MemTotal                          int64
	Labels, ClockerLabels             map[string]string
}

func (e *env) fleetHosts() map[string]listedHost {
	e.t.Helper()
	r := e.do("GET", "/v1/fleet/hosts", nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET /v1/fleet/hosts: %s", r)
	}
	var list []listedHost
	if err := json.Unmarshal(r.body, &list); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]listedHost{}
	for _, h := range list {
		out[h.Name] = h
	}
	return out
}

// The fleet API lists hosts, labels and drains them for placement, and
// refuses bad input without changing anything.
func TestFleetHostsAPI(t *testing.T) {
	e := newEnv(t,
		fakeOpts{name: "h1", images: []string{"busybox"}, labels: []string{"zone=z1"}},
		fakeOpts{name: "h2", images: []string{"busybox"}},
	)
	hs := e.fleetHosts()
	if len(hs) != 2 || hs["h1"].State != "healthy" || hs["h1"].Provisioner != "static" || hs["h1"].Labels["zone"] != "z1" ||
		!strings.HasPrefix(hs["h1"].Address, "tcp://") {
		t.Fatalf("hosts %+v", hs)
	}

	// Clocker's labels are matched by constraints.
	if r := e.do("POST", "/v1/fleet/hosts/h2/labels", map[string]any{"Labels": map[string]string{"storage": "ssd"}}); r.status != http.StatusOK {
		t.Fatalf("label: %s", r)
	}
	if got := e.fleetHosts()["h2"]; got.ClockerLabels["storage"] != "ssd" || got.Labels["storage"] != "ssd" {
		t.Errorf("h2 after label: %+v", got)
	}
	for i := range 3 {
		id := e.create("", map[string]any{"Image": "busybox", "Env": []string{"constraint:storage==ssd"}})
		if o := e.owner(id); o != "h2" {
			t.Fatalf("create %d with constraint:storage==ssd went to %s", i, o)
		}
	}

	// A draining host takes nothing; with every host draining the fleet is
	// unavailable (503), as with none healthy.
	if r := e.do("POST", "/v1/fleet/hosts/h2/drain", nil); r.status != http.StatusOK {
		t.Fatalf("drain: %s", r)
	}
	if got := e.fleetHosts()["h2"].State; got != "draining" {
		t.Errorf("h2 state %q", got)
	}
	for range 3 {
		if o := e.owner(e.create("", map[string]any{"Image": "busybox"})); o != "h1" {
			t.Fatalf("placed on draining %s", o)
		}
	}
	e.do("POST", "/v1/fleet/hosts/h1/drain", nil)
	if r := e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "busybox"}); r.status != http.StatusServiceUnavailable || !strings.Contains(r.message(), "draining") {
		t.Errorf("create with every host draining: %s", r)
	}
	if r := e.do("POST", "/v1/fleet/hosts/h1/drain?drain=false", nil); r.status != http.StatusOK || e.fleetHosts()["h1"].State != "healthy" {
		t.Errorf("undrain: %s", r)
	}

	// Bad input: clear errors, nothing changes.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		says         string
	}{
		{"POST", "/v1/fleet/hosts", map[string]any{"URL": "ftp://x:1"}, 400, "ftp://x:1"},
		{"POST", "/v1/fleet/hosts", map[string]any{"Nme": "x", "URL": "tcp://127.0.0.1:1"}, 400, "unknown field"},
		{"POST", "/v1/fleet/hosts", map[string]any{}, 400, "URL or Provisioner is required"},
		{"POST", "/v1/fleet/hosts", map[string]any{"Provisioner": "local"}, 400, "no provisioner is configured"},
		{"POST", "/v1/fleet/hosts", map[string]any{"Provisioner": "ssh", "URL": "tcp://127.0.0.1:1"}, 400, "not both"},
		{"POST", "/v1/fleet/hosts", map[string]any{"URL": "tcp://127.0.0.1:1", "Target": "root@x"}, 400, "for a Provisioner"},
		{"POST", "/v1/fleet/hosts", "{", 400, "invalid JSON"},
		{"POST", "/v1/fleet/hosts", map[string]any{"URL": "tcp://127.0.0.1:1"}, 503, "does not answer"},
		{"POST", "/v1/fleet/hosts", map[string]any{"Name": "h1", "URL": e.fakes["h2"].URL}, 409, "already"},
		{"DELETE", "/v1/fleet/hosts/nope", nil, 404, "no such host: nope"},
		{"DELETE", "/v1/fleet/hosts/h1", nil, 409, "drain the host first"},
		{"POST", "/v1/fleet/hosts/nope/drain", nil, 404, "no such host"},
		{"POST", "/v1/fleet/hosts/h1/labels", map[string]any{}, 400, "Labels is required"},
	} {
		r := e.do(c.method, c.path, c.body)
		if r.status != c.status || !strings.Contains(r.message(), c.says) {
			t.Errorf("%s %s %v: %s; want %d saying %q", c.method, c.path, c.body, r, c.status, c.says)
		}
	}
	if hs := e.fleetHosts(); len(hs) != 2 {
		t.Errorf("bad input changed the fleet: %+v", hs)
	}

	// Clocker's own agent does not keep a host busy; it goes with it.
	e3 := newEnv(t, fakeOpts{name: "h3", images: []string{"busybox"}})
	e3.fakes["h3"].addContainer("", "clocker-agent-h3", "busybox", "running", map[string]string{"io.clocker.agent": "1"})
	waitFor(t, "the agent cached", func() bool { return len(e3.fleet.Containers()) == 1 })
	if got := e3.fleetHosts()["h3"].Containers; got != 0 {
		t.Errorf("h3 lists %d containers, want its agent left out", got)
	}
	if r := e3.do("DELETE", "/v1/fleet/hosts/h3", nil); r.status != http.StatusNoContent {
		t.Errorf("remove a host with only its agent: %s", r)
	}
	if n := e3.fakes["h3"].Len(); n != 0 {
		t.Errorf("the removed host's agent is still on its engine (%d containers)", n)
	}

	// A drained host goes, with its containers left on its engine.
	e.do("POST", "/v1/fleet/hosts/h2/drain", nil)
	if r := e.do("DELETE", "/v1/fleet/hosts/h2", nil); r.status != http.StatusNoContent {
		t.Fatalf("remove drained h2: %s", r)
	}
	if hs := e.fleetHosts(); len(hs) != 1 {
		t.Errorf("after remove: %+v", hs)
	}
	if n := e.fakes["h2"].Len(); n != 3 {
		t.Errorf("h2's engine holds %d containers after the remove, want its 3", n)
	}
}
