package blueprint

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// getJSON GETs path, wanting 200 and a JSON body decoded into v.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	code, body := e.do("GET", path, "", "")
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// wantAPIError: the answer is code with an ApiError naming want.
func wantAPIError(t *testing.T, what string, code int, body string, wantCode int, want string) {
	t.Helper()
	var ae struct {
		Message string
		Error   int
	}
	if err := json.Unmarshal([]byte(body), &ae); code != wantCode || err != nil || ae.Error != wantCode || !strings.Contains(ae.Message, want) {
		t.Errorf("%s: %d %s, want %d ApiError naming %q", what, code, body, wantCode, want)
	}
}

// TestDetails: ApplicationResource.details lists every application as an
// EntityDetail with its children as summaries (depth 1), or full depth;
// items adds entities with their ancestors; sensors and config are
// filtered by glob; bad parameters are a 400 ApiError.
func TestDetails(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(twoTier)
	db := mustEntity(t, e.m, app, "db").ID
	var list []map[string]any
	e.getJSON("/v1/applications/details", &list)
	if len(list) != 1 {
		t.Fatalf("details: %v", list)
	}
	d := list[0]
	if d["id"] != app || d["applicationId"] != app || d["parentId"] != nil || d["serviceUp"] != true || d["serviceState"] != "running" ||
		d["name"] != "Visitors" || d["type"] != "org.apache.brooklyn.entity.stock.BasicApplication" {
		t.Errorf("application detail %v", d)
	}
	kids, _ := d["children"].([]any)
	if len(kids) != 2 {
		t.Fatalf("children %v", d["children"])
	}
	k0 := kids[0].(map[string]any)
	if k0["id"] != db || k0["name"] != "Visitors DB" || k0["serviceState"] != nil || k0["links"] == nil {
		t.Errorf("depth 1: a child is a summary: %v", k0)
	}
	if _, has := d["sensors"]; has {
		t.Errorf("sensors without asking: %v", d["sensors"])
	}
	// Only db (and its ancestor), with sensors host.* and one config key.
	e.getJSON("/v1/applications/details?includeAllApps=false&items="+db+",nope&sensors=host.*,service.isUp&config=openPorts", &list)
	if len(list) != 2 || list[0]["id"] != db || list[1]["id"] != app {
		t.Fatalf("items: %v", list)
	}
	s, _ := list[0]["sensors"].(map[string]any)
	if len(s) != 4 || s["host.name"] != "h1" || s["host.address"] != "192.168.1.1" || s["host.subnet.address"] == nil || s["service.isUp"] != true {
		t.Errorf("sensors %v", list[0]["sensors"])
	}
	if c, _ := list[0]["config"].(map[string]any); len(c) != 1 || c["openPorts"] == nil {
		t.Errorf("config %v", list[0]["config"])
	}
	if list[0]["parentId"] != app || list[0]["applicationId"] != app {
		t.Errorf("db detail %v", list[0])
	}
	e.getJSON(`/v1/applications/details?includeAllApplications=false&items=["`+db+`"]&depth=-1`, &list)
	if len(list) != 2 {
		t.Fatalf("JSON items: %v", list)
	}
	if k := list[1]["children"].([]any)[1].(map[string]any); k["serviceState"] != "running" || k["parentId"] != app {
		t.Errorf("depth -1: children in detail: %v", k)
	}
	for _, q := range []string{"includeAllApps=maybe", "depth=deep", `items=["x"`} {
		code, body := e.do("GET", "/v1/applications/details?"+q, "", "")
		wantAPIError(t, q, code, body, http.StatusBadRequest, strings.SplitN(q, "=", 2)[0])
	}
}

const tagged = `name: Tagged
services:
- type: docker:busybox
  id: db
  name: Store
  openPorts: [ 5432 ]
  brooklyn.tags: [ tier-db, { owner: ops } ]
- type: org.apache.brooklyn.entity.webapp.ControlledDynamicWebAppCluster
  id: web
  initialSize: 1
  memberSpec:
    $brooklyn:entitySpec:
      type: docker:busybox
      openPorts: [ 8080 ]
`

// TestEntitySpecLocationsTags: spec is the YAML an entity was made from
// (the whole blueprint for the application), as YAML text or a JSON
// string; locations the fleet; tags brooklyn.tags and the yaml_spec tag.
func TestEntitySpecLocationsTags(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(tagged)
	e.settle(app)
	get := func(path, accept string) (int, string, string) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/applications/"+app+"/entities/"+path, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	a, _ := e.m.App(app)
	code, ct, body := get(app+"/spec", "*/*")
	if code != 200 || !strings.HasPrefix(ct, "text/x-yaml") || body != a.Plan {
		t.Errorf("application spec: %d %s %q", code, ct, body)
	}
	code, ct, body = get("db/spec", "text/plain")
	var svc map[string]any
	if err := yaml.Unmarshal([]byte(body), &svc); code != 200 || !strings.HasPrefix(ct, "text/plain") || err != nil ||
		svc["id"] != "db" || svc["type"] != "docker:busybox" || svc["name"] != "Store" {
		t.Errorf("db spec: %d %s %q", code, ct, body)
	}
	code, ct, jbody := get("db/spec", "application/json")
	var s string
	if err := json.Unmarshal([]byte(jbody), &s); code != 200 || ct != "application/json" || err != nil || s != body {
		t.Errorf("db spec as JSON: %d %s %q", code, ct, jbody)
	}
	member := e.m.Sensors(mustEntity(t, e.m, app, "web cluster"))[SensorGroupMembers].([]any)[0].(string)
	if code, _, body := get(member+"/spec", "text/yaml"); code != 200 || !strings.Contains(body, "8080") || strings.Contains(body, "initialSize") {
		t.Errorf("member spec (its memberSpec): %d %q", code, body)
	}
	if code, _, body := get("web%20controller/spec", "*/*"); code != http.StatusNoContent || body != "" {
		t.Errorf("controller (made by Clocker) spec: %d %q", code, body)
	}
	var locs []map[string]any
	e.getJSON("/v1/applications/"+app+"/entities/db/locations", &locs)
	if len(locs) != 1 || locs[0]["id"] != LocationID || locs[0]["spec"] != LocationID {
		t.Errorf("locations %v", locs)
	}
	var tags []any
	e.getJSON("/v1/applications/"+app+"/entities/db/tags", &tags)
	if len(tags) != 3 || tags[0] != "tier-db" || tags[1].(map[string]any)["owner"] != "ops" ||
		tags[2].(map[string]any)["kind"] != "yaml_spec" || tags[2].(map[string]any)["contents"] != body {
		t.Errorf("tags %v", tags)
	}
	for _, p := range []string{"spec", "locations", "tags"} {
		code, body := e.do("GET", "/v1/applications/"+app+"/entities/nope/"+p, "", "")
		wantAPIError(t, p, code, body, http.StatusNotFound, "Entity 'nope' not found")
	}
}

func mustEntity(t *testing.T, m *Manager, app, ref string) *Entity {
	t.Helper()
	a, err := m.App(app)
	if err != nil {
		t.Fatal(err)
	}
	x, err := m.Entity(a, ref)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// expunge POSTs expunge and waits for its task.
func (e *env) expunge(app, ent, query string) {
	e.t.Helper()
	code, body := e.do("POST", "/v1/applications/"+app+"/entities/"+ent+"/expunge"+query, "", "")
	var task struct {
		ID, CurrentStatus string
	}
	if err := json.Unmarshal([]byte(body), &task); code != http.StatusAccepted || err != nil {
		e.t.Fatalf("expunge %s: %d %s", ent, code, body)
	}
	e.waitTask(task.ID)
	if _, err := e.m.Task(task.ID).Result(); err != nil {
		e.t.Fatalf("expunge %s: %v", ent, err)
	}
}

// TestExpunge: release=true removes the container and forgets the entity,
// across a restart; release=false leaves the container; a cluster member
// leaves its group; the application is deleted as by DELETE; bad input
// changes nothing.
func TestExpunge(t *testing.T) {
	st := tempStore(t)
	eng := newFake()
	e := newEnv(t, st, eng)
	app := e.deploy(twoTier)
	webCtr, _ := e.ctrOf(app, "web")
	dbCtr, _ := e.ctrOf(app, "db")
	for _, q := range []string{"?release=perhaps"} {
		code, body := e.do("POST", "/v1/applications/"+app+"/entities/web/expunge"+q, "", "")
		wantAPIError(t, q, code, body, http.StatusBadRequest, "release")
	}
	code, body := e.do("POST", "/v1/applications/"+app+"/entities/nope/expunge?release=true", "", "")
	wantAPIError(t, "unknown entity", code, body, http.StatusNotFound, "Entity 'nope' not found")
	if c, _, _ := eng.snapshot(); c != 2 {
		t.Fatalf("bad expunges changed things: %d containers", c)
	}
	e.expunge(app, "web", "?release=true")
	eng.mu.Lock()
	_, webLeft := eng.ctrs[webCtr]
	eng.mu.Unlock()
	if webLeft {
		t.Errorf("web's container left after release")
	}
	code, body = e.do("GET", "/v1/applications/"+app+"/entities/web", "", "")
	wantAPIError(t, "expunged entity", code, body, http.StatusNotFound, "Entity 'web' not found")
	var ents []map[string]any
	e.getJSON("/v1/applications/"+app+"/entities", &ents)
	if len(ents) != 1 || ents[0]["name"] != "Visitors DB" {
		t.Errorf("entities after expunge: %v", ents)
	}
	if got := e.sensor(app, "db", "service.isUp"); got != "true" {
		t.Errorf("db after web expunged: %s", got)
	}

	// A restart: web stays forgotten, db is adopted, nothing made.
	e2, a := e.restart(app)
	if _, err := e2.m.Entity(a, "web"); err == nil || len(a.all()) != 2 {
		t.Errorf("after restart: web back (%v), %d entities", err, len(a.all()))
	}
	if eng.creates != 2 {
		t.Errorf("%d creates after restart, want 2", eng.creates)
	}
	e2.expunge(app, "db", "")
	eng.mu.Lock()
	_, dbLeft := eng.ctrs[dbCtr]
	eng.mu.Unlock()
	if !dbLeft {
		t.Errorf("release=false removed db's container")
	}
	if len(a.all()) != 1 {
		t.Errorf("db not forgotten: %d entities", len(a.all()))
	}
	// The application itself: as DELETE (its labelled containers too).
	e2.expunge(app, app, "?release=true")
	if c, n, v := eng.snapshot(); c+n+v != 0 {
		t.Errorf("after expunging the application: %d containers, %d networks, %d volumes", c, n, v)
	}
	if code, _ := e2.do("GET", "/v1/applications/"+app, "", ""); code != 404 {
		t.Errorf("expunged application: %d", code)
	}
}

// TestExpungeMember: an expunged member leaves its cluster's group; a
// web cluster's own parts are refused.
func TestExpungeMember(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(webApp)
	e.settle(app)
	cl := mustEntity(t, e.m, app, "web cluster")
	members := cl.Children()
	if len(members) != 2 {
		t.Fatalf("%d members", len(members))
	}
	e.expunge(app, members[0].ID, "?release=true")
	e.settle(app)
	if got := e.sensor(app, "web", "group.members.count"); got != "1" {
		t.Errorf("group.members.count %s", got)
	}
	if got := e.sensor(app, "web controller", "proxy.serverpool.targets"); strings.Count(got, ":8080") != 1 {
		t.Errorf("controller targets %s", got)
	}
	code, body := e.do("POST", "/v1/applications/"+app+"/entities/web%20controller/expunge", "", "")
	wantAPIError(t, "controller", code, body, http.StatusBadRequest, "expunge the web cluster instead")
}

// TestContainerEffectors: pause, resume and shutDown on container
// entities (not on groups); a paused container is stopped, not on fire;
// docker.container.addresses lists its addresses.
func TestContainerEffectors(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(twoTier)
	names := func(ent string) []string {
		var effs []struct{ Name string }
		e.getJSON("/v1/applications/"+app+"/entities/"+ent+"/effectors", &effs)
		var out []string
		for _, f := range effs {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names("db"); !contains(got, "pause") || !contains(got, "resume") || !contains(got, "shutDown") {
		t.Errorf("db effectors %v", got)
	}
	if got := names(app); contains(got, "pause") {
		t.Errorf("application effectors %v", got)
	}
	var addrs []string
	if err := json.Unmarshal([]byte(e.sensor(app, "db", SensorAddresses)), &addrs); err != nil || len(addrs) != 1 ||
		`"`+addrs[0]+`"` != e.sensor(app, "db", "host.subnet.address") {
		t.Errorf("addresses %v (%v)", addrs, err)
	}
	invoke := func(name string) (int, string) {
		return e.do("POST", "/v1/applications/"+app+"/entities/db/effectors/"+name, "application/json", "{}")
	}
	if code, body := invoke("pause"); code != http.StatusNoContent {
		t.Fatalf("pause: %d %s", code, body)
	}
	_, ctr := e.ctrOf(app, "db")
	state := func() (running, paused bool) {
		e.eng.mu.Lock()
		defer e.eng.mu.Unlock()
		return ctr.running, ctr.paused
	}
	if _, paused := state(); !paused || e.sensor(app, "db", SensorPaused) != "true" || e.sensor(app, "db", "service.state") != `"stopped"` {
		t.Errorf("after pause: sensor %s, state %s", e.sensor(app, "db", SensorPaused), e.sensor(app, "db", "service.state"))
	}
	_ = e.m.Poll(context.Background())
	if got := e.sensor(app, "db", "service.state"); got != `"stopped"` {
		t.Errorf("paused container polled: %s", got)
	}
	code, body := invoke("pause")
	wantAPIError(t, "pause twice", code, body, http.StatusConflict, "not running")
	if code, body := invoke("resume"); code != http.StatusNoContent {
		t.Fatalf("resume: %d %s", code, body)
	}
	if _, paused := state(); paused || e.sensor(app, "db", SensorPaused) != "false" || e.sensor(app, "db", "service.isUp") != "true" {
		t.Errorf("after resume: paused %v, isUp %s", paused, e.sensor(app, "db", "service.isUp"))
	}
	code, body = invoke("resume")
	wantAPIError(t, "resume twice", code, body, http.StatusConflict, "not paused")
	// start on a paused container unpauses it (as after a restart of Clocker).
	if code, body := invoke("pause"); code != http.StatusNoContent {
		t.Fatalf("pause again: %d %s", code, body)
	}
	if code, body := invoke("start"); code != http.StatusNoContent || e.sensor(app, "db", "service.isUp") != "true" || e.sensor(app, "db", SensorPaused) != "false" {
		t.Errorf("start when paused: %d %s", code, body)
	}
	if code, body := invoke("shutDown"); code != http.StatusNoContent {
		t.Fatalf("shutDown: %d %s", code, body)
	}
	if running, _ := state(); running || e.sensor(app, "db", "service.state") != `"stopped"` || e.sensor(app, "db", "docker.container.running") != "false" {
		t.Errorf("after shutDown: running %v, state %s", running, e.sensor(app, "db", "service.state"))
	}
	if code, body := invoke("start"); code != http.StatusNoContent || e.sensor(app, "db", "service.isUp") != "true" || e.eng.creates != 2 {
		t.Errorf("start after shutDown: %d %s, %d creates", code, body, e.eng.creates)
	}
	code, body = e.do("POST", "/v1/applications/"+app+"/entities/"+app+"/effectors/pause", "application/json", "{}")
	wantAPIError(t, "pause on the application", code, body, http.StatusNotFound, "Effector 'pause' not found")
}
