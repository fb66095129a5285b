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

// composeDeployStack is the three-tier stack deployed server-side: db
// (healthchecked, healthy no sooner than 5s after it starts, a named
// volume, network back, pinned to a host by deploy.placement), app (three replicas on back and front, started once
// db is healthy), web (front, a published port). Each tier fetches the
// one below by service name. %s is db's host, %d web's port.
const composeDeployStack = `services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 5; echo db ready; echo tier3-$$(cat /proc/sys/kernel/random/uuid | cut -c1-8) > /data/index.html; exec httpd -f -p 8081 -h /data"]
    volumes: ["dbdata:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/"]
      interval: 1s
      timeout: 2s
      retries: 30
    deploy:
      placement:
        constraints: ["node.hostname == %s"]
` + composeUpperTiers

// dockerCompose runs the real `docker compose -p project ARGS` against
// Clocker in an empty directory (the project is found by its labels).
func dockerCompose(t testing.TB, project string, args ...string) (string, error) {
	t.Helper()
	return dockerComposeIn(t, t.TempDir(), project, args...)
}

// dockerComposeIn runs it in dir.
func dockerComposeIn(t testing.TB, dir, project string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"compose", "-p", project}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+clockerURL, "DOCKER_CLI_HINTS=false")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// projectObjects lists, on every engine, the containers, networks and
// volumes labelled with the compose project.
func projectObjects(t testing.TB, project string) []string {
	t.Helper()
	var out []string
	label := "label=com.docker.compose.project=" + project
	for i := range fleet.Engines {
		for _, what := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
			if o := engineDocker(t, i, append(what, "--filter", label)...); o != "" {
				out = append(out, fleet.Engines[i].Name+": "+what[0]+" "+o)
			}
		}
	}
	return out
}

// A compose file deployed by Clocker itself (clocker app deploy): db is
// placed by its constraint, app waits server-side for db to be healthy
// and its replicas land on three hosts, data flows tier to tier to the
// published port at Clocker's address; the real docker compose then
// lists the project (ps), reads its logs and removes it all (down -v).
func TestE2EComposeServerDeploy(t *testing.T) {
	if exec.Command("docker", "compose", "version").Run() != nil {
		t.Skip("docker compose not installed")
	}
	const project = "csdeploy"
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dbHost := fleet.Engines[1].Name
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(composeDeployStack, dbHost, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = dockerCompose(t, project, "down", "-v", "-t", "1") })

	start := time.Now()
	out, err := exec.Command(clockerBin, "app", "--host", clockerURL, "deploy", "-p", project, file).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != project {
		t.Fatalf("clocker app deploy: %v\n%s", err, out)
	}
	var page string
	waitFor(t, 90*time.Second, "the stack's page at the front door", func() bool {
		page = httpGetQuiet("http://" + frontDoor(port) + "/")
		return strings.HasPrefix(page, "tier3-") && strings.HasSuffix(strings.TrimSpace(page), "via app via web")
	})
	t.Logf("server-side deploy to a served page: %s", time.Since(start).Round(time.Millisecond))

	name := func(service string, n int) string { return fmt.Sprintf("%s-%s-%d", project, service, n) }
	if ids := projectContainers(t, project); len(ids) != 5 {
		t.Fatalf("%d containers, want 5 (db, 3 app, web)", len(ids))
	}
	if h := hostOf(t, name("db", 1)); h != dbHost {
		t.Errorf("db on %s, want %s (node.hostname constraint)", h, dbHost)
	}
	appHosts := map[string]bool{}
	for n := 1; n <= 3; n++ {
		appHosts[hostOf(t, name("app", n))] = true
	}
	if len(appHosts) != 3 {
		t.Errorf("app replicas on %v, want three hosts", appHosts)
	}
	// app was created once db was healthy, which is 5s after it started
	// at the soonest (the server waited).
	dbStarted := parseTime(t, mustDocker(t, "inspect", "-f", "{{.State.StartedAt}}", name("db", 1)))
	for n := 1; n <= 3; n++ {
		created := parseTime(t, mustDocker(t, "inspect", "-f", "{{.Created}}", name("app", n)))
		if created.Sub(dbStarted) < 5*time.Second {
			t.Errorf("%s created %s after db started: want it after db was healthy (5s at the soonest)", name("app", n), created.Sub(dbStarted))
		}
	}
	// compose's labels on the containers, networks and volume.
	var labels map[string]string
	if err := json.Unmarshal([]byte(mustDocker(t, "inspect", "-f", "{{json .Config.Labels}}", name("app", 2))), &labels); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"com.docker.compose.project": project, "com.docker.compose.service": "app",
		"com.docker.compose.container-number": "2", "com.docker.compose.oneoff": "False",
		"com.docker.compose.project.working_dir": dir, "com.docker.compose.project.config_files": file,
		"com.docker.compose.depends_on": "db:service_healthy:false",
	} {
		if labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, labels[k], want)
		}
	}
	if len(labels["com.docker.compose.config-hash"]) != 64 || labels["com.docker.compose.version"] == "" {
		t.Errorf("config-hash %q, version %q", labels["com.docker.compose.config-hash"], labels["com.docker.compose.version"])
	}
	// The config hashes are those docker compose computes for the file.
	hashes, err := dockerComposeIn(t, dir, project, "config", "--hash", "*")
	if err != nil {
		t.Fatalf("docker compose config --hash: %v\n%s", err, hashes)
	}
	for _, c := range []string{name("db", 1), name("app", 3), name("web", 1)} {
		service := strings.Split(c, "-")[1]
		got := mustDocker(t, "inspect", "-f", `{{index .Config.Labels "com.docker.compose.config-hash"}}`, c)
		if !strings.Contains(hashes, service+" "+got+"\n") {
			t.Errorf("%s config-hash %s; docker compose config --hash says:\n%s", c, got, hashes)
		}
	}
	if got := mustDocker(t, "volume", "inspect", "-f", `{{index .Labels "com.docker.compose.volume"}} {{index .Labels "com.docker.compose.project"}}`, project+"_dbdata"); got != "dbdata "+project {
		t.Errorf("volume labels: %q", got)
	}
	if got := mustDocker(t, "network", "inspect", "-f", `{{index .Labels "com.docker.compose.network"}}`, project+"_front"); got != "front" {
		t.Errorf("network %s_front label: %q", project, got)
	}

	// The real docker compose manages it.
	out2, err := dockerCompose(t, project, "ps", "--format", "{{.Name}} {{.State}}")
	if err != nil {
		t.Fatalf("docker compose ps: %v\n%s", err, out2)
	}
	for _, c := range []string{name("db", 1), name("app", 1), name("app", 2), name("app", 3), name("web", 1)} {
		if !strings.Contains(out2, c+" running") {
			t.Errorf("docker compose ps lacks %s running:\n%s", c, out2)
		}
	}
	if out, err := dockerCompose(t, project, "logs", "db"); err != nil || !strings.Contains(out, "db ready") {
		t.Errorf("docker compose logs db: %v\n%s", err, out)
	}
	if out, err := dockerCompose(t, project, "down", "-v", "-t", "1"); err != nil {
		t.Fatalf("docker compose down -v: %v\n%s", err, out)
	}
	if left := projectObjects(t, project); len(left) > 0 {
		t.Errorf("after docker compose down -v: %v", left)
	}
}

func parseTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return ts
}

// Bad compose files get a clear ApiError and nothing is made: invalid
// YAML for the spec (400), an unknown service in depends_on (400), a
// constraint no host meets (409 naming each host's reason).
func TestE2EComposeServerDeployBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		code       int
		want       []string
	}{
		{"invalid", "services:\n  web:\n    image: busybox\n    ports: 80\n", 400, []string{"ports must be a array"}},
		{"unknown dependency", "services:\n  web:\n    image: busybox\n    depends_on: [db]\n", 400, []string{`undefined service "db"`}},
		{"impossible constraint", "services:\n  db:\n    image: busybox\n    volumes: [d:/d]\n  web:\n    image: busybox\n    depends_on: [db]\n    deploy:\n      placement:\n        constraints: [node.labels.disk==nvme]\nvolumes:\n  d: {}\n", 409,
			[]string{"web replica 1", fleet.Engines[0].Name + ":", fleet.Engines[1].Name + ":", fleet.Engines[2].Name + ":", "disk==nvme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			project := "csbad" + strings.ReplaceAll(tc.name, " ", "")
			code, body := brDo(t, "POST", "/v1/applications?name="+project, tc.file)
			var apiErr struct {
				Message string
				Error   int
			}
			if err := json.Unmarshal([]byte(body), &apiErr); err != nil || code != tc.code || apiErr.Error != tc.code {
				t.Fatalf("POST: %d %s, want %d and an ApiError", code, body, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(apiErr.Message, w) {
					t.Errorf("message %q lacks %q", apiErr.Message, w)
				}
			}
			if left := projectObjects(t, project); len(left) > 0 {
				t.Errorf("made for a refused file: %v", left)
			}
		})
	}
}
