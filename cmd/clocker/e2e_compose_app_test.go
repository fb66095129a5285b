//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// composeApp is a two-service project: web with two replicas and a
// published port, db with a restarter asked for by label.
const composeApp = `services:
  web:
    image: busybox
    command: ["sh", "-c", "exec httpd -f -p 80 -h /tmp"]
    ports: ["80"]
    deploy:
      replicas: 2
  db:
    image: busybox
    command: ["sleep", "3600"]
    labels:
      io.clocker.policy.restarter: "true"
`

// TestE2EComposeApp: a project brought up by either real compose client
// is an application with its services' and containers' sensors; the
// resize effector makes a replica the client lists; a ServiceRestarter
// attached through the API (and one asked for by label) brings back a
// container killed through Clocker, also after a restart of clocker serve
// (v2), and leaves one compose stops; compose down takes the application
// away.
func TestE2EComposeApp(t *testing.T) {
	for _, cli := range composeCLIs(t) {
		t.Run("compose "+cli.name, func(t *testing.T) { composeAppTest(t, cli) })
	}
}

func composeAppTest(t *testing.T, cli composeCLI) {
	project := "caapp" + cli.name
	replica := func(service string, n int) string {
		return fmt.Sprintf("%s%s%s%s%d", project, cli.sep, service, cli.sep, n)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeApp), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, error) { return cli.run(dir, project, args...) }
	must := func(args ...string) string {
		t.Helper()
		out, err := compose(args...)
		if err != nil {
			t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	t.Cleanup(func() { _, _ = compose("down", "-t", "1", "--remove-orphans") })
	must("up", "-d")
	psIDs := func(service string) []string {
		if cli.name == "v1" { // full IDs already, and no --no-trunc
			return strings.Fields(must("ps", "-q", service))
		}
		return strings.Fields(must("ps", "-q", "--no-trunc", service))
	}

	// Found as an application, running, with its services.
	sensor := func(ent, name string) any {
		code, body := brDo(t, "GET", "/v1/applications/"+project+"/entities/"+ent+"/sensors/"+name, "")
		if code != 200 {
			return nil
		}
		var v any
		_ = json.Unmarshal([]byte(body), &v)
		return v
	}
	brEventually(t, "the project as a running application", func() bool {
		code, body := brDo(t, "GET", "/v1/applications/"+project, "")
		return code == 200 && strings.Contains(body, `"status":"RUNNING"`) && sensor("web", "service.replicas.running") == float64(2)
	})
	code, body := brDo(t, "GET", "/v1/applications/"+project+"/entities", "")
	if code != 200 || !strings.Contains(body, `"name":"web"`) || !strings.Contains(body, `"name":"db"`) {
		t.Fatalf("entities: %d %s", code, body)
	}
	for name, want := range map[string]any{"service.isUp": true, "service.state": "running", "service.replicas.wanted": float64(2), "group.members.count": float64(2)} {
		if got := sensor("web", name); got != want {
			t.Errorf("web %s = %v, want %v", name, got, want)
		}
	}
	engines := map[string]bool{}
	for _, e := range fleet.Engines {
		engines[e.Name] = true
	}
	webIDs := psIDs("web")
	for n := 1; n <= 2; n++ {
		ent := replica("web", n)
		id := fmt.Sprint(sensor(ent, "docker.container.id"))
		if !strings.Contains(strings.Join(webIDs, " "), id) {
			t.Errorf("%s docker.container.id %s not among compose ps %v", ent, id, webIDs)
		}
		if h := fmt.Sprint(sensor(ent, "host.name")); !engines[h] {
			t.Errorf("%s host.name %q is no fleet host", ent, h)
		}
		if a := fmt.Sprint(sensor(ent, "host.subnet.address")); !strings.Contains(a, ".") {
			t.Errorf("%s host.subnet.address %q", ent, a)
		}
		if p, ok := sensor(ent, "mapped.port.80").(float64); !ok || p <= 0 {
			t.Errorf("%s mapped.port.80 %v", ent, sensor(ent, "mapped.port.80"))
		}
	}
	out, err := exec.Command(clockerBin, "app", "--host", clockerURL, "ls").CombinedOutput()
	if err != nil || !strings.Contains(string(out), project) {
		t.Errorf("clocker app ls: %v\n%s", err, out)
	}

	// resize to 3 over HTTP: compose sees a third replica.
	code, body = apiCallHeader(t, "POST", "/v1/applications/"+project+"/entities/web/effectors/resize", brForm(), strings.NewReader("desiredSize=3"))
	if code != 200 || strings.TrimSpace(body) != "3" {
		t.Fatalf("resize: %d %s", code, body)
	}
	if ids := psIDs("web"); len(ids) != 3 {
		t.Errorf("compose ps web after resize 3: %v\n%s", ids, must("ps", "-a"))
	}
	if out := must("ps"); !strings.Contains(out, replica("web", 3)) {
		t.Errorf("compose ps has no %s:\n%s", replica("web", 3), out)
	}

	// A restarter attached through the API; serve restarted: resumed.
	code, body = brDo(t, "POST", "/v1/applications/"+project+"/entities/web/policies?type=org.apache.brooklyn.policy.ha.ServiceRestarter", "{}")
	if code != 200 {
		t.Fatalf("attach restarter: %d %s", code, body)
	}
	if cli.name == "v2" {
		stopServer()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := startServer(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	code, body = brDo(t, "GET", "/v1/applications/"+project+"/entities/web/policies", "")
	if code != 200 || !strings.Contains(body, `"name":"ServiceRestarter"`) || !strings.Contains(body, `"state":"RUNNING"`) {
		t.Fatalf("policies after restart of serve: %d %s", code, body)
	}

	// docker kill through Clocker: the same container runs again.
	for _, ent := range []string{replica("web", 2), replica("db", 1)} {
		var id string
		brEventually(t, ent+" running after the restart of serve", func() bool {
			id = fmt.Sprint(sensor(ent, "docker.container.id"))
			return sensor(ent, "service.state") == "running" && id != "<nil>"
		})
		mustDocker(t, "kill", id)
		brEventually(t, ent+" brought back", func() bool {
			return strings.TrimSpace(mustDocker(t, "inspect", "-f", "{{.State.Running}}", id)) == "true" && sensor(ent, "service.state") == "running"
		})
		code, body := brDo(t, "GET", "/v1/applications/"+project+"/entities/"+ent+"/sensors/ha.entityFailed", "")
		if code != 200 {
			t.Errorf("%s ha.entityFailed: %d %s", ent, code, body)
		}
	}

	// compose stop is no failure: the restarters leave web stopped for
	// longer than a failure takes to be reported and acted on.
	must("stop", "-t", "1", "web")
	brEventually(t, "web stopped", func() bool { return sensor("web", "service.state") == "stopped" })
	runningWeb := func() string {
		return mustDocker(t, "ps", "-q", "--filter", "label=com.docker.compose.project="+project, "--filter", "label=com.docker.compose.service=web")
	}
	for until := time.Now().Add(10 * time.Second); time.Now().Before(until); time.Sleep(500 * time.Millisecond) {
		if out := runningWeb(); out != "" {
			t.Fatalf("web restarted after compose stop: %s", out)
		}
	}
	must("start", "web")
	brEventually(t, "web running after compose start", func() bool {
		return sensor("web", "service.state") == "running" && sensor("web", "service.replicas.running") == float64(3)
	})

	// compose down: the application goes.
	must("down", "-t", "1")
	brEventually(t, "the project gone from /v1/applications", func() bool {
		code, _ := brDo(t, "GET", "/v1/applications/"+project, "")
		_, list := brDo(t, "GET", "/v1/applications", "")
		return code == 404 && !strings.Contains(list, `"name":"`+project+`"`)
	})
}
