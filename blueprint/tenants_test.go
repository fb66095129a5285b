package blueprint

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
)

// ownerKey carries the test's tenant in a request's context, as the
// front door's tenant layer does in clocker serve.
type ownerKey struct{}

// asOwner is the engine of one tenant: its creates carry the owner label,
// as the front door's tenant step adds it, and its networks are recorded
// as the tenant's.
type asOwner struct {
	*fakeEngine
	owner string
	nets  *sync.Map
}

func (a asOwner) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	l := map[string]string{labels.Owner: a.owner}
	for k, v := range o.Config.Labels {
		l[k] = v
	}
	o.Config.Labels = l
	return a.fakeEngine.ContainerCreate(ctx, o)
}

func (a asOwner) NetworkCreate(ctx context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	a.nets.Store(name, a.owner)
	return a.fakeEngine.NetworkCreate(ctx, name, o)
}

// newTenantEnv is newEnv with tenants: the header X-Test-Owner is the
// request's tenant (none: an admin).
func newTenantEnv(t *testing.T, st store.Store, eng *fakeEngine, nets *sync.Map) *env {
	m := New(Options{Engine: eng, Store: st, Version: "test", WaitTimeout: time.Minute, Clock: &fakeClock{now: time.Unix(1e9, 0)}, PollInterval: -1,
		Owner:    func(ctx context.Context) string { s, _ := ctx.Value(ownerKey{}).(string); return s },
		EngineAs: func(owner string) Engine { return asOwner{fakeEngine: eng, owner: owner, nets: nets} },
	})
	h := m.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("X-Test-Owner"); o != "" {
			r = r.WithContext(context.WithValue(r.Context(), ownerKey{}, o))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); m.Close() })
	return &env{t: t, eng: eng, m: m, srv: srv}
}

func (e *env) doAs(owner, method, path, body string) (int, string) {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if owner != "" {
		h.Set("X-Test-Owner", owner)
	}
	return e.doHeader(h, method, path, body)
}

// An application is its submitter's: what it makes is made as that
// tenant (owner label, its networks); another tenant neither lists nor
// reaches it (404 as for an unknown application, its activities too);
// admins see every one; the owner outlives a restart.
func TestApplicationsOwnedByTenant(t *testing.T) {
	st := tempStore(t)
	eng := newFake()
	nets := &sync.Map{}
	e := newTenantEnv(t, st, eng, nets)
	code, body := e.doAs("alice", "POST", "/v1/applications", twoTier)
	if code != http.StatusCreated {
		t.Fatalf("alice deploys: %d %s", code, body)
	}
	var task struct{ EntityID, ID string }
	_ = json.Unmarshal([]byte(body), &task)
	e.waitTask(task.ID)
	app := task.EntityID

	eng.mu.Lock()
	for id, c := range eng.ctrs {
		if c.opts.Config.Labels[labels.Owner] != "alice" {
			t.Errorf("container %s labels %v: not alice's", id, c.opts.Config.Labels)
		}
	}
	eng.mu.Unlock()
	if o, _ := nets.Load("brooklyn-" + app); o != "alice" {
		t.Errorf("application network made by %v, want alice", o)
	}

	visible := func(who string, want bool) {
		t.Helper()
		code, body := e.doAs(who, "GET", "/v1/applications", "")
		if code != 200 || strings.Contains(body, app) != want {
			t.Errorf("%s lists: %d %s (want it listed: %v)", who, code, body, want)
		}
		code, body = e.doAs(who, "GET", "/v1/applications/fetch", "")
		if code != 200 || strings.Contains(body, app) != want {
			t.Errorf("%s fetch: %d %s", who, code, body)
		}
		code, body = e.doAs(who, "GET", "/v1/applications/details?items="+app, "")
		if code != 200 || strings.Contains(body, app) != want {
			t.Errorf("%s details: %d %s", who, code, body)
		}
		wantCode := 200
		if !want {
			wantCode = 404
		}
		for _, p := range []string{"/v1/applications/" + app, "/v1/applications/" + app + "/entities",
			"/v1/applications/" + app + "/entities/web/sensors/service.state", "/v1/activities/" + task.ID} {
			if code, body := e.doAs(who, "GET", p, ""); code != wantCode {
				t.Errorf("%s GET %s: %d %s, want %d", who, p, code, body, wantCode)
			}
		}
	}
	visible("alice", true)
	visible("bob", false)
	visible("", true) // an admin
	if code, body := e.doAs("bob", "GET", "/v1/applications/Visitors", ""); code != 404 {
		t.Errorf("bob finds alice's app by name: %d %s", code, body)
	}

	// Bob can neither invoke an effector on it nor delete it.
	if code, body := e.doAs("bob", "POST", "/v1/applications/"+app+"/entities/web/effectors/stop", ""); code != 404 || !strings.Contains(body, "not found") {
		t.Errorf("bob stops alice's web: %d %s", code, body)
	}
	if code, body := e.doAs("bob", "DELETE", "/v1/applications/"+app, ""); code != 404 {
		t.Errorf("bob deletes alice's app: %d %s", code, body)
	}
	// Bob's application of the same name is his own; names resolve per tenant.
	code, body = e.doAs("bob", "POST", "/v1/applications", twoTier)
	if code != http.StatusCreated {
		t.Fatalf("bob deploys: %d %s", code, body)
	}
	var bobTask struct{ EntityID, ID string }
	_ = json.Unmarshal([]byte(body), &bobTask)
	e.waitTask(bobTask.ID)
	if code, body := e.doAs("bob", "GET", "/v1/applications/Visitors", ""); code != 200 || !strings.Contains(body, bobTask.EntityID) {
		t.Errorf("bob's Visitors: %d %s", code, body)
	}
	if code, body := e.doAs("alice", "GET", "/v1/applications/Visitors", ""); code != 200 || !strings.Contains(body, app) {
		t.Errorf("alice's Visitors: %d %s", code, body)
	}

	// A restart: the stored owner comes back.
	e.srv.Close()
	e.m.Close()
	e2 := newTenantEnv(t, st, eng, nets)
	if err := e2.m.Resume(); err != nil {
		t.Fatal(err)
	}
	e = e2
	visible("alice", true)
	visible("bob", false)
	if code, body := e.doAs("alice", "POST", "/v1/applications/"+app+"/entities/web/effectors/stop", ""); code != 204 {
		t.Errorf("alice stops her web after the restart: %d %s", code, body)
	}
	code, body = e.doAs("alice", "DELETE", "/v1/applications/"+app, "")
	if code != http.StatusAccepted {
		t.Fatalf("alice deletes: %d %s", code, body)
	}
}

// Compose projects found on the fleet are their containers' owner's:
// alice's and bob's project "web" are two applications, each seen by its
// owner alone (and the admins), also after a restart.
func TestProjectsOwnedByTenant(t *testing.T) {
	st := tempStore(t)
	eng := newFake()
	nets := &sync.Map{}
	e := newTenantEnv(t, st, eng, nets)
	eng.composeUp("web", "app", 1, map[string]string{labels.Owner: "alice"})
	eng.composeUp("web", "app", 2, map[string]string{labels.Owner: "bob"})
	e.poll()
	lists := func(e *env) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, who := range []string{"alice", "bob", ""} {
			code, body := e.doAs(who, "GET", "/v1/applications", "")
			var list []struct{ ID string }
			if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
				t.Fatalf("%q lists: %d %s", who, code, body)
			}
			for _, a := range list {
				out[who] = append(out[who], a.ID)
			}
		}
		return out
	}
	got := lists(e)
	if len(got["alice"]) != 1 || len(got["bob"]) != 1 || got["alice"][0] == got["bob"][0] || len(got[""]) != 2 {
		t.Fatalf("applications by who lists them: %v", got)
	}
	for who, n := range map[string]int{"alice": 1, "bob": 2} {
		code, body := e.doAs(who, "GET", "/v1/applications/web/entities/app/children", "")
		var kids []struct{ ID string }
		if code != 200 || json.Unmarshal([]byte(body), &kids) != nil || len(kids) != n {
			t.Errorf("%s's web/app replicas: %d %s, want %d", who, code, body, n)
		}
	}
	e.srv.Close()
	e.m.Close()
	e2 := newTenantEnv(t, st, eng, nets)
	if err := e2.m.Resume(); err != nil {
		t.Fatal(err)
	}
	e2.poll()
	if after := lists(e2); !reflect.DeepEqual(after, got) {
		t.Errorf("after a restart: %v, want %v", after, got)
	}
}

// A tenant's catalog items are its own: another tenant neither lists,
// shows, deploys from nor deletes them (its own item of the same id is
// another item); the fleet's items are everyone's to use and only an
// admin's to delete; a tenant's items outlive a restart.
func TestCatalogOfTenant(t *testing.T) {
	st := tempStore(t)
	eng := newFake()
	e := newTenantEnv(t, st, eng, &sync.Map{})
	bom := func(env string) string {
		return "brooklyn.catalog:\n  id: tweb\n  version: 1.0\n  itemType: entity\n  item:\n    type: docker:busybox\n    env: {WHO: " + env + "}\n"
	}
	if code, body := e.doAs("alice", "POST", "/v1/catalog", bom("alice")); code != http.StatusCreated {
		t.Fatalf("alice adds tweb: %d %s", code, body)
	}
	listed := func(who string) bool {
		_, body := e.doAs(who, "GET", "/v1/catalog/entities?fragment=tweb", "")
		return strings.Contains(body, `"tweb:1.0"`)
	}
	if !listed("alice") || listed("bob") || listed("") {
		t.Fatalf("tweb listed: alice %v, bob %v, admin %v; want alice alone", listed("alice"), listed("bob"), listed(""))
	}
	if code, _ := e.doAs("bob", "GET", "/v1/catalog/entities/tweb/1.0", ""); code != http.StatusNotFound {
		t.Errorf("bob shows alice's tweb: %d", code)
	}
	if code, body := e.doAs("bob", "POST", "/v1/applications", "services:\n- type: tweb\n"); code != http.StatusBadRequest || !strings.Contains(body, "tweb") {
		t.Errorf("bob deploys alice's tweb: %d %s", code, body)
	}
	if code, _ := e.doAs("bob", "DELETE", "/v1/catalog/entities/tweb/1.0", ""); code != http.StatusNotFound {
		t.Errorf("bob deletes alice's tweb: %d", code)
	}
	// bob's own tweb:1.0 is another item: no conflict, each deploys its own.
	if code, body := e.doAs("bob", "POST", "/v1/catalog", bom("bob")); code != http.StatusCreated {
		t.Fatalf("bob adds his tweb: %d %s", code, body)
	}
	for _, who := range []string{"alice", "bob"} {
		code, body := e.doAs(who, "POST", "/v1/applications", "name: tw-"+who+"\nservices:\n- type: tweb\n  id: w\n")
		if code != http.StatusCreated {
			t.Fatalf("%s deploys tweb: %d %s", who, code, body)
		}
		var task struct{ ID, EntityID string }
		_ = json.Unmarshal([]byte(body), &task)
		e.waitTask(task.ID)
		_, c := e.ctrOf(task.EntityID, "w")
		if !slices.Contains(c.opts.Config.Env, "WHO="+who) {
			t.Errorf("%s's tweb deployed with env %v", who, c.opts.Config.Env)
		}
	}
	// The fleet's items: a tenant uses them, cannot delete them.
	if code, body := e.doAs("alice", "DELETE", "/v1/catalog/entities/org.apache.brooklyn.entity.database.mysql.MySqlNode", ""); code != http.StatusForbidden || !strings.Contains(body, "only an administrator") {
		t.Errorf("alice deletes a fleet item: %d %s", code, body)
	}
	if code, _ := e.doAs("", "GET", "/v1/catalog/entities/org.apache.brooklyn.entity.database.mysql.MySqlNode", ""); code != http.StatusOK {
		t.Errorf("the fleet's MySqlNode after alice's attempt: %d", code)
	}
	// After a restart: alice's tweb is still hers alone.
	e.m.Close()
	e2 := newTenantEnv(t, st, eng, &sync.Map{})
	if _, body := e2.doAs("alice", "GET", "/v1/catalog/entities/tweb/1.0", ""); !strings.Contains(body, "WHO: alice") {
		t.Errorf("alice's tweb after a restart: %s", body)
	}
	if code, _ := e2.doAs("", "GET", "/v1/catalog/entities/tweb/1.0", ""); code != http.StatusNotFound {
		t.Errorf("admin sees a tenant's tweb after a restart: %d", code)
	}
	if code, _ := e2.doAs("alice", "DELETE", "/v1/catalog/entities/tweb/1.0", ""); code != http.StatusNoContent {
		t.Errorf("alice deletes her tweb: %d", code)
	}
	if _, body := e2.doAs("bob", "GET", "/v1/catalog/entities/tweb/1.0", ""); !strings.Contains(body, "WHO: bob") {
		t.Errorf("bob's tweb after alice deleted hers: %s", body)
	}
}
