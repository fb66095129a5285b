package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/tenant"
)

// tenantEnv serves the env's handler with the tenant of the X-Tenant
// header in the context, as the front door puts it there (none: an
// admin).
func tenantEnv(t *testing.T) (*env, func(who, method, path string, body any) response) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	h := e.srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if who := r.Header.Get("X-Tenant"); who != "" {
			r = r.WithContext(tenant.NewContext(r.Context(), tenant.New(who)))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return e, func(who, method, path string, body any) response {
		t.Helper()
		var rd *strings.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		} else {
			rd = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, ts.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if who != "" {
			req.Header.Set("X-Tenant", who)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf strings.Builder
		_, _ = io.Copy(&buf, resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: []byte(buf.String())}
	}
}

func TestTenantsContainers(t *testing.T) {
	e, as := tenantEnv(t)
	ids := map[string]string{}
	for _, who := range []string{"alice", "bob"} {
		r := as(who, "POST", "/v1.41/containers/create?name=web", map[string]any{"Image": "busybox"})
		if r.status != http.StatusCreated {
			t.Fatalf("%s create web: %s", who, r)
		}
		var out struct{ Id string }
		_ = json.Unmarshal(r.body, &out)
		ids[who] = out.Id
		e.waitCached(out.Id)
	}
	if r := as("alice", "POST", "/v1.41/containers/create?name=web", map[string]any{"Image": "busybox"}); r.status != http.StatusConflict || strings.Contains(r.message(), "alice_") || !strings.Contains(r.message(), "/web") {
		t.Errorf("alice's second web: %s", r)
	}
	for _, who := range []string{"alice", "bob"} {
		r := as(who, "GET", "/v1.41/containers/json?all=1", nil)
		var ls []listed
		if err := json.Unmarshal(r.body, &ls); err != nil || len(ls) != 1 || ls[0].Id != ids[who] || ls[0].Names[0] != "/web" {
			t.Fatalf("%s's list: %s", who, r)
		}
		r = as(who, "GET", "/v1.41/containers/web/json", nil)
		var in struct{ Id, Name string }
		if err := json.Unmarshal(r.body, &in); err != nil || in.Id != ids[who] || in.Name != "/web" {
			t.Fatalf("%s inspects web: %s", who, r)
		}
		r = as(who, "GET", "/v1.41/containers/json?all=1&filters="+filtersQuery(map[string][]string{"name": {"^/web$"}}), nil)
		if err := json.Unmarshal(r.body, &ls); err != nil || len(ls) != 1 {
			t.Fatalf("%s's list by name: %s", who, r)
		}
	}
	// bob reaches nothing of alice's, by name or ID: 404 as if absent.
	for _, p := range []string{
		"GET /v1.41/containers/" + ids["alice"] + "/json",
		"GET /v1.41/containers/" + ids["alice"][:12] + "/logs?stdout=1",
		"POST /v1.41/containers/" + ids["alice"] + "/exec",
		"POST /v1.41/containers/" + ids["alice"] + "/stop",
		"DELETE /v1.41/containers/" + ids["alice"] + "?force=1",
		"GET /v1.41/containers/alice_web/json",
	} {
		method, path, _ := strings.Cut(p, " ")
		if r := as("bob", method, path, map[string]any{"Cmd": []string{"true"}}); r.status != http.StatusNotFound {
			t.Errorf("bob: %s: %s", p, r)
		}
	}
	// alice's exec is hers alone.
	if r := as("alice", "POST", "/v1.41/containers/web/start", nil); r.status != http.StatusNoContent {
		t.Fatalf("alice starts web: %s", r)
	}
	r := as("alice", "POST", "/v1.41/containers/web/exec", map[string]any{"Cmd": []string{"true"}})
	var ex struct{ Id string }
	if err := json.Unmarshal(r.body, &ex); err != nil || ex.Id == "" {
		t.Fatalf("alice exec: %s", r)
	}
	if r := as("bob", "GET", "/v1.41/exec/"+ex.Id+"/json", nil); r.status != http.StatusNotFound {
		t.Errorf("bob inspects alice's exec: %s", r)
	}
	if r := as("alice", "GET", "/v1.41/exec/"+ex.Id+"/json", nil); r.status != http.StatusOK {
		t.Errorf("alice inspects her exec: %s", r)
	}
	// info counts a tenant's own; an admin sees both, by their engine names.
	var info struct{ Containers int }
	_ = json.Unmarshal(as("bob", "GET", "/v1.41/info", nil).body, &info)
	if info.Containers != 1 {
		t.Errorf("bob's info counts %d containers", info.Containers)
	}
	names := map[string]bool{}
	for _, l := range e.list("?all=1") {
		names[l.Names[0]] = true
	}
	if !names["/alice_web"] || !names["/bob_web"] {
		t.Errorf("the admin's list: %v", names)
	}
	if r := as("bob", "DELETE", "/v1.41/containers/web?force=1", nil); r.status != http.StatusNoContent {
		t.Errorf("bob removes his web: %s", r)
	}
	if r := as("alice", "GET", "/v1.41/containers/web/json", nil); r.status != http.StatusOK {
		t.Errorf("alice's web after bob's rm: %s", r)
	}
}

func TestTenantsVolumesAndNetworks(t *testing.T) {
	_, as := tenantEnv(t)
	for _, who := range []string{"alice", "bob"} {
		if r := as(who, "POST", "/v1.41/volumes/create", map[string]any{"Name": "data"}); r.status != http.StatusCreated || !strings.Contains(string(r.body), `"Name":"data"`) {
			t.Fatalf("%s volume create: %s", who, r)
		}
		if r := as(who, "POST", "/v1.41/networks/create", map[string]any{"Name": "front"}); r.status != http.StatusCreated {
			t.Fatalf("%s network create: %s", who, r)
		}
	}
	if r := as("alice", "POST", "/v1.41/volumes/create", map[string]any{"Name": "only-alice"}); r.status != http.StatusCreated {
		t.Fatalf("volume create: %s", r)
	}
	var vols struct{ Volumes []struct{ Name string } }
	_ = json.Unmarshal(as("bob", "GET", "/v1.41/volumes", nil).body, &vols)
	if len(vols.Volumes) != 1 || vols.Volumes[0].Name != "data" {
		t.Errorf("bob's volumes: %+v", vols)
	}
	var nets []struct{ Name, Id string }
	_ = json.Unmarshal(as("bob", "GET", "/v1.41/networks", nil).body, &nets)
	if len(nets) != 1 || nets[0].Name != "front" {
		t.Errorf("bob's networks: %+v", nets)
	}
	if r := as("bob", "GET", "/v1.41/volumes/only-alice", nil); r.status != http.StatusNotFound {
		t.Errorf("bob inspects alice's volume: %s", r)
	}
	if r := as("bob", "DELETE", "/v1.41/volumes/alice_data", nil); r.status != http.StatusNotFound {
		t.Errorf("bob removes alice's volume by its engine name: %s", r)
	}
	var an []struct{ Name, Id string }
	_ = json.Unmarshal(as("alice", "GET", "/v1.41/networks", nil).body, &an)
	if len(an) != 1 {
		t.Fatalf("alice's networks: %+v", an)
	}
	if r := as("bob", "GET", "/v1.41/networks/"+an[0].Id, nil); r.status != http.StatusNotFound {
		t.Errorf("bob inspects alice's network by ID: %s", r)
	}
	if r := as("alice", "GET", "/v1.41/networks/"+an[0].Id, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"Name":"front"`) {
		t.Errorf("alice inspects her network by ID: %s", r)
	}
	if r := as("alice", "DELETE", "/v1.41/volumes/data", nil); r.status != http.StatusNoContent {
		t.Errorf("alice removes her volume: %s", r)
	}
	if r := as("bob", "GET", "/v1.41/volumes/data", nil); r.status != http.StatusOK {
		t.Errorf("bob's data after alice's rm: %s", r)
	}
	if r := as("bob", "POST", "/v1.41/volumes/prune", nil); r.status != http.StatusForbidden {
		t.Errorf("bob prunes volumes: %s", r)
	}
}

// A tenant's create on its network: the engine gets the tenant's names,
// and the name it gave as an alias there (what DNS answers).
func TestTenantsCreateOnNetwork(t *testing.T) {
	e, as := tenantEnv(t)
	if r := as("alice", "POST", "/v1.41/networks/create", map[string]any{"Name": "front"}); r.status != http.StatusCreated {
		t.Fatalf("network create: %s", r)
	}
	r := as("alice", "POST", "/v1.41/containers/create?name=web", map[string]any{"Image": "busybox",
		"HostConfig": map[string]any{"NetworkMode": "front"}, "NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{"front": map[string]any{}}}})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	var body string
	for _, f := range e.fakes {
		for _, c := range f.Calls("POST", "/containers/create") {
			body = c.Body + " name=" + c.Query.Get("name")
		}
	}
	for _, want := range []string{`"NetworkMode":"alice_front"`, `"alice_front":{`, `"Aliases":["web"]`, "name=alice_web"} {
		if !strings.Contains(body, want) {
			t.Errorf("engine's create lacks %s: %s", want, body)
		}
	}
}

// A tenant's name filters (unanchored, regular expressions, as an engine
// reads them) and before/since match the names it sees, never the key
// its names carry on the engines.
func TestTenantsNameFilters(t *testing.T) {
	e, as := tenantEnv(t)
	ids := map[string]string{}
	for _, c := range []struct{ who, name string }{{"alice", "web"}, {"alice", "db"}, {"bob", "web"}, {"bob", "alicefan"}} {
		r := as(c.who, "POST", "/v1.41/containers/create?name="+c.name, map[string]any{"Image": "busybox"})
		if r.status != http.StatusCreated {
			t.Fatalf("%s create %s: %s", c.who, c.name, r)
		}
		var out struct{ Id string }
		_ = json.Unmarshal(r.body, &out)
		ids[c.who+"/"+c.name] = out.Id
		e.waitCached(out.Id)
	}
	tests := []struct {
		name, who string
		filters   map[string][]string
		want      []string // names, sorted
	}{
		{"bob's unanchored alice: only his own alicefan", "bob", map[string][]string{"name": {"alice"}}, []string{"/alicefan"}},
		{"bob's alice_: nothing", "bob", map[string][]string{"name": {"alice_"}}, nil},
		{"bob's ^/alice_web$: nothing", "bob", map[string][]string{"name": {"^/alice_web$"}}, nil},
		{"alice's ^/web$", "alice", map[string][]string{"name": {"^/web$"}}, []string{"/web"}},
		{"alice's ^web$ (without the slash)", "alice", map[string][]string{"name": {"^web$"}}, []string{"/web"}},
		{"alice's regex", "alice", map[string][]string{"name": {"^/(w|d)[a-z]+$"}}, []string{"/db", "/web"}},
		{"alice's own key matches nothing", "alice", map[string][]string{"name": {"alice"}}, nil},
		{"alice's before web", "alice", map[string][]string{"before": {"db"}}, []string{"/web"}},
		{"alice's since web", "alice", map[string][]string{"since": {"web"}}, []string{"/db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := as(tc.who, "GET", "/v1.41/containers/json?all=1&filters="+filtersQuery(tc.filters), nil)
			var ls []listed
			if err := json.Unmarshal(r.body, &ls); err != nil {
				t.Fatalf("list: %s", r)
			}
			var got []string
			for _, l := range ls {
				got = append(got, l.Names[0])
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// before/since naming another's container: as absent.
	r := as("bob", "GET", "/v1.41/containers/json?all=1&filters="+filtersQuery(map[string][]string{"before": {"db"}}), nil)
	if r.status != http.StatusNotFound {
		t.Errorf("bob's before=db (alice's): %s", r)
	}
}

// A tenant's creates name its own containers by ID or ID prefix in
// --volumes-from, --link and container: modes; another's ID is no such
// container and nothing is made.
func TestTenantsCreateByContainerID(t *testing.T) {
	e, as := tenantEnv(t)
	ids := map[string]string{}
	for _, who := range []string{"alice", "bob"} {
		r := as(who, "POST", "/v1.41/containers/create?name=db", map[string]any{"Image": "busybox"})
		var out struct{ Id string }
		if err := json.Unmarshal(r.body, &out); err != nil || out.Id == "" {
			t.Fatalf("%s create db: %s", who, r)
		}
		ids[who] = out.Id
		e.waitCached(out.Id)
	}
	creates := func() []string {
		var out []string
		for _, f := range e.fakes {
			for _, c := range f.Calls("POST", "/containers/create") {
				if c.Query.Get("name") != "alice_db" && c.Query.Get("name") != "bob_db" {
					out = append(out, c.Body)
				}
			}
		}
		return out
	}
	r := as("alice", "POST", "/v1.41/containers/create?name=app", map[string]any{"Image": "busybox",
		"HostConfig": map[string]any{"VolumesFrom": []string{ids["alice"][:12] + ":ro"}, "Links": []string{ids["alice"] + ":database"},
			"PidMode": "container:" + ids["alice"][:6]}})
	got := creates()
	if r.status != http.StatusCreated || len(got) != 1 {
		t.Fatalf("alice's create by IDs: %s (%d creates)", r, len(got))
	}
	for _, want := range []string{`"VolumesFrom":["alice_db:ro"]`, `"Links":["alice_db:database"]`, `"PidMode":"container:alice_db"`} {
		if !strings.Contains(got[0], want) {
			t.Errorf("create body %s: want %s", got[0], want)
		}
	}
	for _, hc := range []map[string]any{
		{"VolumesFrom": []string{ids["bob"][:12]}},
		{"Links": []string{ids["bob"] + ":x"}},
		{"NetworkMode": "container:" + ids["bob"]},
		{"IpcMode": "container:" + ids["bob"][:10]},
	} {
		r := as("alice", "POST", "/v1.41/containers/create", map[string]any{"Image": "busybox", "HostConfig": hc})
		if r.status != http.StatusNotFound || !strings.Contains(r.message(), "No such container") {
			t.Errorf("alice names bob's db in %v: %s", hc, r)
		}
	}
	if n := len(creates()); n != 1 {
		t.Errorf("%d creates reached the engines, want 1", n)
	}
}
