package blueprint

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/store"
)

const twoTier = `name: Visitors
services:
- type: docker:busybox
  id: db
  name: Visitors DB
  openPorts: [ 8000 ]
  volumes: [ "visitors-data:/data" ]
  brooklyn.initializers:
  - type: org.apache.brooklyn.core.sensor.StaticSensor
    brooklyn.config:
      name: db.path
      static.value: visitors
- type: docker:busybox
  id: web
  name: Web
  openPorts: [ 80 ]
  env:
    DB_URL:
      $brooklyn:formatString:
      - "http://%s:8000/%s"
      - $brooklyn:component("db").attributeWhenReady("host.subnet.address")
      - $brooklyn:component("db").attributeWhenReady("db.path")
`

type env struct {
	t   *testing.T
	eng *fakeEngine
	m   *Manager
	srv *httptest.Server
}

func newEnv(t *testing.T, st store.Store, eng *fakeEngine) *env {
	return newEnvClock(t, st, eng, &fakeClock{now: time.Unix(1e9, 0)})
}

// newEnvClock: policies on clk; containers watched only when a test calls Poll.
func newEnvClock(t *testing.T, st store.Store, eng *fakeEngine, clk Clock) *env {
	m := New(Options{Engine: eng, Store: st, Version: "test", WaitTimeout: time.Minute, Clock: clk, PollInterval: -1})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(func() { srv.Close(); m.Close() })
	return &env{t: t, eng: eng, m: m, srv: srv}
}

// do sends a request as br does: Basic auth, Accept JSON then text.
func (e *env) do(method, path, ct, body string) (int, string) {
	e.t.Helper()
	h := http.Header{"Accept": {"application/json, text/plain"}, "Authorization": {"Basic YW55OnRoaW5n"}} // any:thing
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return e.doHeader(h, method, path, body)
}

// doHeader sends a request with headers h.
func (e *env) doHeader(h http.Header, method, path, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) deploy(plan string) string {
	e.t.Helper()
	code, body := e.do("POST", "/v1/applications", "application/json", plan)
	if code != http.StatusCreated {
		e.t.Fatalf("deploy: %d %s", code, body)
	}
	var task struct{ EntityID, ID string }
	_ = json.Unmarshal([]byte(body), &task)
	e.waitTask(task.ID)
	return task.EntityID
}

func (e *env) waitTask(id string) {
	e.t.Helper()
	t := e.m.Task(id)
	if t == nil {
		e.t.Fatalf("no task %s", id)
	}
	<-t.Done()
}

func (e *env) sensor(app, ent, name string) string {
	e.t.Helper()
	code, body := e.do("GET", "/v1/applications/"+app+"/entities/"+ent+"/sensors/"+name, "", "")
	if code != http.StatusOK {
		e.t.Fatalf("sensor %s of %s: %d %s", name, ent, code, body)
	}
	return strings.TrimSpace(body)
}

// TestDeployTwoTier: the web tier's env gets the database's fleet-network
// address through formatString + attributeWhenReady; the app runs; sensors
// and entities resolve by id and name; DELETE leaves nothing.
func TestDeployTwoTier(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(twoTier)
	if got := e.sensor(app, app, "service.state"); got != `"running"` {
		t.Fatalf("application state %s", got)
	}
	dbIP := strings.Trim(e.sensor("Visitors", "Visitors%20DB", "host.subnet.address"), `"`)
	webID := strings.Trim(e.sensor(app, "web", "docker.container.id"), `"`)
	e.eng.mu.Lock()
	envs := e.eng.ctrs[webID].opts.Config.Env
	e.eng.mu.Unlock()
	if want := "DB_URL=http://" + dbIP + ":8000/visitors"; !contains(envs, want) {
		t.Errorf("web env %v, want %s", envs, want)
	}
	if got := e.sensor(app, "db", "main.uri"); got != `"http://127.0.0.1:20001/"` {
		t.Errorf("main.uri %s", got)
	}
	if got := e.sensor(app, "db", "mapped.port.8000"); got != "20001" {
		t.Errorf("mapped.port.8000 %s", got)
	}
	// text/plain alone gets the raw value; an unset known sensor 204; an
	// unknown one 404 with an ApiError.
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/applications/"+app+"/entities/db/sensors/host.name", nil)
	req.Header.Set("Accept", "text/plain")
	resp, _ := http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "h1" {
		t.Errorf("text/plain host.name %q", b)
	}
	if code, _ := e.do("GET", "/v1/applications/"+app+"/entities/web/sensors/service.problems", "", ""); code != http.StatusNoContent {
		t.Errorf("unset service.problems: %d, want 204", code)
	}
	if code, body := e.do("GET", "/v1/applications/"+app+"/entities/db/sensors/nope", "", ""); code != 404 || !strings.Contains(body, `"message":"Sensor 'nope' not known"`) {
		t.Errorf("unknown sensor: %d %s", code, body)
	}
	code, body := e.do("GET", "/v1/applications", "", "")
	if code != 200 || !strings.Contains(body, `"status":"RUNNING"`) || !strings.Contains(body, `"locations":["clocker"]`) {
		t.Errorf("list: %d %s", code, body)
	}
	if code, body := e.do("GET", "/v1/applications/"+app+"/entities", "", ""); code != 200 || strings.Count(body, `"id"`) != 2 {
		t.Errorf("entities: %d %s", code, body)
	}
	if code, body := e.do("GET", "/v1/applications/fetch", "", ""); code != 200 || !strings.Contains(body, `"children":[{`) {
		t.Errorf("fetch: %d %s", code, body)
	}
	if code, body := e.do("GET", "/v1/applications/"+app+"/entities/web/config/current-state", "", ""); code != 200 || !strings.Contains(body, "http://"+dbIP) {
		t.Errorf("config: %d %s", code, body)
	}
	if code, body := e.do("GET", "/v1/locations/clocker", "", ""); code != 200 || !strings.Contains(body, `"192.168.1.1:2375"`) {
		t.Errorf("location: %d %s", code, body)
	}
	// Effectors: stop with a form body waits and answers 204; start again.
	if code, body := e.do("POST", "/v1/applications/"+app+"/entities/web/effectors/stop", "application/x-www-form-urlencoded", ""); code != 204 {
		t.Fatalf("stop: %d %s", code, body)
	}
	if got := e.sensor(app, "web", "service.isUp"); got != "false" {
		t.Errorf("isUp after stop %s", got)
	}
	code, body = e.do("POST", "/v1/applications/"+app+"/entities/web/effectors/start?timeout=0", "application/json", "{}")
	if code != 202 {
		t.Fatalf("start timeout=0: %d %s", code, body)
	}
	var task struct{ ID string }
	_ = json.Unmarshal([]byte(body), &task)
	e.waitTask(task.ID)
	if code, _ := e.do("GET", "/v1/activities/"+task.ID, "", ""); code != 200 {
		t.Errorf("activity: %d", code)
	}
	if got := e.sensor(app, "web", "service.isUp"); got != "true" {
		t.Errorf("isUp after start %s", got)
	}
	if n := e.eng.creates; n != 2 {
		t.Errorf("%d creates, want 2 (start adopts the stopped container)", n)
	}
	code, body = e.do("DELETE", "/v1/applications/"+app, "", "")
	if code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", code, body)
	}
	_ = json.Unmarshal([]byte(body), &task)
	e.waitTask(task.ID)
	if c, n, v := e.eng.snapshot(); c+n+v != 0 {
		t.Errorf("after delete: %d containers, %d networks, %d volumes", c, n, v)
	}
	if code, _ := e.do("GET", "/v1/applications/"+app, "", ""); code != 404 {
		t.Errorf("deleted app: %d", code)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBadInput: each refusal is a 4xx ApiError naming the problem, and
// nothing is made.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil, newFake())
	for _, tt := range []struct{ name, plan, want string }{
		{"malformed", "services: [ {type: docker:busybox", "malformed YAML"},
		{"unknown type", "services:\n- type: com.example.Frob\n", `unknown type "com.example.Frob"`},
		{"cycle", "services:\n- type: docker:busybox\n  id: a\n  env: {X: $brooklyn:component(\"b\").attributeWhenReady(\"x\")}\n- type: docker:busybox\n  id: b\n  env: {X: $brooklyn:component(\"a\").attributeWhenReady(\"x\")}\n", "DSL cycle: a -> b -> a"},
		{"missing component", "services:\n- type: docker:busybox\n  env: {X: $brooklyn:component(\"db\").attributeWhenReady(\"x\")}\n", `component "db" not found`},
		{"parameter type", "brooklyn.parameters: [{name: n, type: integer}]\nbrooklyn.config: {n: lots}\nservices:\n- type: docker:busybox\n", `parameter n: "lots" is not an integer`},
		{"missing image", "services:\n- type: docker:missing\n", "image missing:latest is on no host"},
		{"empty", "", "no blueprint"},
	} {
		code, body := e.do("POST", "/v1/applications", "application/json", tt.plan)
		var ae struct {
			Message string
			Error   int
		}
		if err := json.Unmarshal([]byte(body), &ae); err != nil || code != 400 || ae.Error != 400 || !strings.Contains(ae.Message, tt.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tt.name, code, body, tt.want)
		}
	}
	if c, n, v := e.eng.snapshot(); c+n+v != 0 || len(e.m.Apps()) != 0 {
		t.Errorf("refused blueprints made %d containers, %d networks, %d volumes, %d apps", c, n, v, len(e.m.Apps()))
	}
	// The plan as a form field, as curl -d plan=… sends it.
	code, body := e.do("POST", "/v1/applications", "application/x-www-form-urlencoded", "plan=services%3A%0A-+type%3A+docker%3Abusybox%0A")
	if code != 201 {
		t.Errorf("form plan: %d %s", code, body)
	}
}

// TestWaitFailsOnFire: a wait on an entity that failed fails at once,
// naming it, and the waiting entity and the application are on fire.
func TestWaitFailsOnFire(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(`services:
- type: docker:busybox
  id: db
  docker.memory: lots
- type: docker:busybox
  id: web
  env: {DB: $brooklyn:component("db").attributeWhenReady("host.subnet.address")}
`)
	if got := e.sensor(app, "web", "service.state"); got != `"on-fire"` {
		t.Errorf("web state %s", got)
	}
	if got := e.sensor(app, "web", "service.problems"); !strings.Contains(got, "db, which is on fire") {
		t.Errorf("web problems %s", got)
	}
	code, body := e.do("GET", "/v1/applications/"+app, "", "")
	if code != 200 || !strings.Contains(body, `"status":"ERROR"`) {
		t.Errorf("app: %d %s", code, body)
	}
}

// TestResume: a manager started over the same store carries on without
// making any container twice.
// restart closes e's manager and resumes a new one on the same store
// and engine, waiting for app's resumed tasks.
func (e *env) restart(app string) (*env, *App) {
	e.t.Helper()
	e.m.Close()
	e2 := newEnv(e.t, e.m.st, e.eng)
	if err := e2.m.Resume(); err != nil {
		e.t.Fatal(err)
	}
	a, err := e2.m.App(app)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tk := range e2.m.Tasks(a.Root) {
		<-tk.Done()
	}
	return e2, a
}

func TestResume(t *testing.T) {
	eng := newFake()
	e := newEnv(t, tempStore(t), eng)
	app := e.deploy(twoTier)
	e2, _ := e.restart(app)
	if got := e2.sensor(app, "web", "service.isUp"); got != "true" {
		t.Errorf("web isUp after resume: %s", got)
	}
	if eng.creates != 2 {
		t.Errorf("%d creates after resume, want 2", eng.creates)
	}
}
