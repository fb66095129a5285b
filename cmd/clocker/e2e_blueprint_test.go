//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Blueprints over HTTP as br sends them: Basic auth, YAML under
// Content-Type application/json, Accept: application/json, text/plain.

func brDo(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Basic YWRtaW46cGFzc3dvcmQ=") // admin:password
	h.Set("Accept", "application/json, text/plain")
	if method == http.MethodPost {
		h.Set("Content-Type", "application/json")
	}
	return apiCallHeader(t, method, path, h, strings.NewReader(body))
}

// brWaitTask polls /v1/activities/ID until it has ended (200).
// brSubmit posts a blueprint and answers its application id and the id of
// its start task (not waited for); the application is deleted, and the
// delete waited for, when the test ends.
func brSubmit(t testing.TB, plan string) (app, startTask string) {
	t.Helper()
	code, body := brDo(t, "POST", "/v1/applications", plan)
	if code != 201 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	var task struct{ ID, EntityID string }
	if err := json.Unmarshal([]byte(body), &task); err != nil || task.EntityID == "" {
		t.Fatalf("deploy answer %s", body)
	}
	t.Cleanup(func() {
		if code, body := brDo(t, "DELETE", "/v1/applications/"+task.EntityID, ""); code == 202 {
			var tk struct{ ID string }
			_ = json.Unmarshal([]byte(body), &tk)
			brWaitTask(t, tk.ID)
		}
	})
	return task.EntityID, task.ID
}

func brWaitTask(t testing.TB, id string) map[string]any {
	t.Helper()
	return brWaitTaskEvery(t, id, 200*time.Millisecond)
}

// brWaitTaskEvery polls the task every interval.
func brWaitTaskEvery(t testing.TB, id string, every time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		code, body := brDo(t, "GET", "/v1/activities/"+id, "")
		if code == 200 {
			var task map[string]any
			_ = json.Unmarshal([]byte(body), &task)
			return task
		}
		if code != 202 {
			t.Fatalf("activity %s: %d %s", id, code, body)
		}
		time.Sleep(every)
	}
	t.Fatalf("task %s did not end", id)
	return nil
}

func brSensor(t testing.TB, app, ent, name string) any {
	t.Helper()
	code, body := brDo(t, "GET", "/v1/applications/"+app+"/entities/"+ent+"/sensors/"+name, "")
	if code != 200 {
		t.Fatalf("sensor %s of %s: %d %s", name, ent, code, body)
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("sensor %s of %s: %q is not JSON", name, ent, body)
	}
	return v
}

// engineObjects lists, on every engine, the containers, networks and
// volumes whose name or label mentions s.
func engineObjects(t testing.TB, app string) []string {
	t.Helper()
	var out []string
	for i := range fleet.Engines {
		for _, args := range [][]string{
			{"ps", "-aq", "--filter", "label=io.clocker.blueprint.application=" + app},
			{"network", "ls", "-q", "--filter", "name=brooklyn-" + app},
			{"volume", "ls", "-q", "--filter", "name=bp-visitors-" + app},
		} {
			if o := engineDocker(t, i, args...); o != "" {
				out = append(out, fleet.Engines[i].Name+": "+args[0]+" "+o)
			}
		}
	}
	return out
}

// TestE2EBlueprintTwoTier: a database on one host publishes its file's
// name as a StaticSensor; the web tier on another host gets the URL by
// formatString + attributeWhenReady of it and of host.subnet.address,
// fetches the data across hosts over the application's fleet network
// and serves it on its published port. The application survives a
// restart of clocker serve with no container made twice; DELETE leaves
// no container, network or volume.
func TestE2EBlueprintTwoTier(t *testing.T) {
	plan := fmt.Sprintf(`name: Visitors
location: clocker
services:
- type: docker:busybox
  id: db
  name: Visitors DB
  openPorts: [ 8000 ]
  volumes: [ "bp-visitors-VOL:/www" ]
  env: { "constraint:node": "=%s" }
  commands: "echo visitors-from-db > /www/visitors.txt && exec httpd -f -p 8000 -h /www"
  brooklyn.initializers:
  - type: org.apache.brooklyn.core.sensor.StaticSensor
    brooklyn.config:
      name: db.file
      static.value: visitors.txt
- type: docker:busybox
  id: web
  name: Web
  openPorts: [ 80 ]
  env:
    "constraint:node": "=%s"
    DB_URL: $brooklyn:formatString("http://%%s:%%d/%%s", $brooklyn:component("db").attributeWhenReady("host.subnet.address"), 8000, component("db").attributeWhenReady("db.file"))
  commands: "mkdir -p /www && until wget -q -O /www/index.html $DB_URL; do sleep 0.3; done; exec httpd -f -p 80 -h /www"
`, fnHost(0), fnHost(1))
	// The volume's name carries a run-unique part so a stale one cannot pass.
	run := fmt.Sprint(time.Now().UnixNano() % 1e6)
	plan = strings.ReplaceAll(plan, "VOL", run)
	app, startTask := brSubmit(t, plan)
	start := time.Now()
	if tk := brWaitTask(t, startTask); tk["isError"] != false {
		t.Fatalf("start failed: %v", tk)
	}
	t.Logf("deploy to RUNNING: %s", time.Since(start).Round(time.Millisecond))
	if got := brSensor(t, app, app, "service.isUp"); got != true {
		t.Fatalf("application isUp %v", got)
	}
	if h0, h1 := brSensor(t, app, "Visitors DB", "host.name"), brSensor(t, app, "web", "host.name"); h0 != fnHost(0) || h1 != fnHost(1) {
		t.Fatalf("db on %v, web on %v; want %s and %s", h0, h1, fnHost(0), fnHost(1))
	}
	uri, _ := brSensor(t, app, "web", "main.uri").(string)
	if uri == "" {
		t.Fatal("web has no main.uri")
	}
	var got string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(uri); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got = strings.TrimSpace(string(b)); got == "visitors-from-db" {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got != "visitors-from-db" {
		t.Fatalf("web at %s served %q, want the database's data", uri, got)
	}
	// br's other reads: list, app by name, entities, sensors, effectors,
	// config, tree, locations.
	for _, p := range []string{"/v1/applications", "/v1/applications/Visitors", "/v1/applications/" + app + "/entities",
		"/v1/applications/" + app + "/entities/Web/sensors", "/v1/applications/" + app + "/entities/Web/sensors/current-state",
		"/v1/applications/" + app + "/entities/Web/effectors", "/v1/applications/" + app + "/entities/Web/config/current-state",
		"/v1/applications/fetch", "/v1/locations", "/v1/locations/clocker", "/v1/server/version"} {
		if code, body := brDo(t, "GET", p, ""); code != 200 || !json.Valid([]byte(body)) {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	// A restart of clocker serve: the application is back, running, with
	// the same containers.
	dbID := brSensor(t, app, "db", "docker.container.id")
	before := len(engineObjects(t, app))
	stopServer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := startServer(ctx, false); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if code, body := brDo(t, "GET", "/v1/applications/"+app, ""); code == 200 && strings.Contains(body, `"RUNNING"`) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code, body := brDo(t, "GET", "/v1/applications/"+app, ""); code != 200 || !strings.Contains(body, `"status":"RUNNING"`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
	if got := brSensor(t, app, "db", "docker.container.id"); got != dbID {
		t.Errorf("db container %v after restart, was %v", got, dbID)
	}
	if after := len(engineObjects(t, app)); after != before {
		t.Errorf("%d objects after restart, %d before: %v", after, before, engineObjects(t, app))
	}
	// Effector restart through br's form POST.
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Basic YTpi"}}
	if code, body := apiCallHeader(t, "POST", "/v1/applications/"+app+"/entities/db/effectors/restart", h, nil); code/100 != 2 {
		t.Fatalf("restart effector: %d %s", code, body)
	}
	if got := brSensor(t, app, "db", "service.isUp"); got != true {
		t.Errorf("db isUp after restart: %v", got)
	}
	// DELETE: 202 with the task; then nothing is left on any engine.
	code, body := brDo(t, "DELETE", "/v1/applications/"+app, "")
	if code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	var del struct{ ID string }
	_ = json.Unmarshal([]byte(body), &del)
	if tk := brWaitTask(t, del.ID); tk["isError"] != false {
		t.Fatalf("delete failed: %v", tk)
	}
	if left := engineObjects(t, app); len(left) > 0 {
		t.Errorf("left after DELETE: %v", left)
	}
	if code, _ := brDo(t, "GET", "/v1/applications/"+app, ""); code != 404 {
		t.Errorf("deleted application: %d", code)
	}
}

// TestE2EBlueprintBadInput: each bad blueprint is a 400 ApiError naming
// the problem, and no engine gets anything.
func TestE2EBlueprintBadInput(t *testing.T) {
	before := engineContainerCount(t)
	for _, tt := range []struct{ name, plan, want string }{
		{"malformed YAML", "services: [ {type: docker:busybox", "malformed YAML"},
		{"unknown type", "services:\n- type: org.apache.brooklyn.entity.webapp.Frob\n", "unknown type"},
		{"DSL cycle", "services:\n- type: docker:busybox\n  id: a\n  env: {X: $brooklyn:component(\"b\").attributeWhenReady(\"x\")}\n- type: docker:busybox\n  id: b\n  env: {X: $brooklyn:component(\"a\").attributeWhenReady(\"x\")}\n", "DSL cycle: a -> b -> a"},
		{"missing component", "services:\n- type: docker:busybox\n  env: {X: $brooklyn:component(\"db\").attributeWhenReady(\"x\")}\n", `component "db" not found`},
		{"parameter type", "brooklyn.parameters: [{name: n, type: integer}]\nbrooklyn.config: {n: lots}\nservices:\n- type: docker:busybox\n", `parameter n: "lots" is not an integer`},
		{"image on no host", "services:\n- type: docker:nosuchimage-bp\n", "nosuchimage-bp:latest is on no host"},
	} {
		code, body := brDo(t, "POST", "/v1/applications", tt.plan)
		var ae struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(body), &ae); err != nil || code != 400 || !strings.Contains(ae.Message, tt.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tt.name, code, body, tt.want)
		}
	}
	if after := engineContainerCount(t); after != before {
		t.Errorf("%d containers after refused blueprints, %d before", after, before)
	}
	if code, body := brDo(t, "GET", "/v1/applications", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("applications after refusals: %d %s", code, body)
	}
}
