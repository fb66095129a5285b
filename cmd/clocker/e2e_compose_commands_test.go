//go:build e2e

package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// composeCommands is one project for the compose commands test: init runs
// once and writes to the named volume data; db serves that volume and is
// healthy once init's file is there (so it needs init to have completed);
// app waits for db to be healthy; web is built from a Dockerfile, takes
// its page from WEB_VERSION and publishes %[1]d; two services are pinned
// to hosts by Swarm-classic constraints, one as an environment entry (to
// %[2]s), one as a label (to %[3]s).
const composeCommands = `services:
  init:
    image: busybox
    command: ["sh", "-c", "echo init ran; echo init done > /data/init"]
    volumes: ["data:/data"]
  db:
    image: busybox
    command: ["sh", "-c", "echo db ready; exec httpd -f -p 8081 -h /data"]
    volumes: ["data:/data"]
    depends_on:
      init:
        condition: service_completed_successfully
    healthcheck:
      test: ["CMD", "test", "-f", "/data/init"]
      interval: 1s
      timeout: 2s
      retries: 30
  app:
    image: busybox
    command: ["sh", "-c", "echo app up; exec httpd -f -p 8080 -h /etc"]
    depends_on:
      db:
        condition: service_healthy
  web:
    build: ./web
    image: %[4]s
    environment: ["VERSION=${WEB_VERSION:-1}"]
    ports: ["%[1]d:80"]
  pinnedenv:
    image: busybox
    command: ["sleep", "3600"]
    environment: ["constraint:node==%[2]s"]
  pinnedlabel:
    image: busybox
    command: ["sleep", "3600"]
    labels:
      com.docker.swarm.constraints: '["node==%[3]s"]'
volumes:
  data: {}
`

const composeWebDockerfile = `FROM busybox
RUN mkdir /www
CMD ["sh", "-c", "echo web $VERSION > /www/index.html; exec httpd -f -p 80 -h /www"]
`

// Every compose command a user runs day to day, with both clients, on one
// project through Clocker (v1 has no cp, wait or ps --format json).
func TestE2EComposeCommands(t *testing.T) {
	for i, cli := range composeCLIs(t) {
		t.Run("compose "+cli.name, func(t *testing.T) {
			v2 := cli.name == "v2"
			project := "cccmd" + cli.name[1:]
			port := 18341 + i
			image := project + "-web:1"
			dir := t.TempDir()
			file := fmt.Sprintf(composeCommands, port, fnHost(2), fnHost(1), image)
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "web"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "web", "Dockerfile"), []byte(composeWebDockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			p := newComposeProject(cli, project, dir, clockerURL)
			must := func(args ...string) string { t.Helper(); return p.must(t, args...) }
			t.Cleanup(func() {
				_, _ = p.run("down", "-v", "-t", "1", "--remove-orphans")
				docker(t, nil, "rmi", "-f", image)
			})
			id := func(service string, n int) string {
				t.Helper()
				return mustDocker(t, "inspect", "-f", "{{.Id}}", p.name(service, n))
			}

			must("up", "-d")

			// depends_on: db started after init completed, app after db
			// was healthy (db's first check needs init's file).
			initDone := mustDocker(t, "inspect", "-f", "{{.State.FinishedAt}} {{.State.ExitCode}}", p.name("init", 1))
			if !strings.HasSuffix(initDone, " 0") {
				t.Errorf("init: %s, want exit 0", initDone)
			}
			dbStart := inspectTime(t, p.name("db", 1), "{{.State.StartedAt}}")
			if initEnd := inspectTime(t, p.name("init", 1), "{{.State.FinishedAt}}"); dbStart.Before(initEnd) {
				t.Errorf("db started %s, before init completed %s", dbStart, initEnd)
			}
			if h := mustDocker(t, "inspect", "-f", "{{.State.Health.Status}}", p.name("db", 1)); h != "healthy" {
				t.Errorf("db health %s", h)
			}
			if appStart := inspectTime(t, p.name("app", 1), "{{.State.StartedAt}}"); !appStart.After(dbStart) {
				t.Errorf("app started %s, not after db %s", appStart, dbStart)
			}

			// Placement: the named volume's host runs both its services;
			// the constraints pin their services.
			volHost := volumeHost(t, project+"_data")
			for _, s := range []string{"init", "db"} {
				if h := hostOf(t, p.name(s, 1)); h != volHost {
					t.Errorf("%s on %s, its volume on %s", s, h, volHost)
				}
			}
			if h := hostOf(t, p.name("pinnedenv", 1)); h != fnHost(2) {
				t.Errorf("environment constraint:node==%s: on %s", fnHost(2), h)
			}
			if h := hostOf(t, p.name("pinnedlabel", 1)); h != fnHost(1) {
				t.Errorf("label com.docker.swarm.constraints node==%s: on %s", fnHost(1), h)
			}
			if env := mustDocker(t, "inspect", "-f", "{{json .Config.Env}}", p.name("pinnedenv", 1)); strings.Contains(env, "constraint:") {
				t.Errorf("the engine got the constraint: %s", env)
			}
			waitFor(t, 30*time.Second, "web 1 at the front door", func() bool {
				return strings.TrimSpace(httpGetQuiet("http://"+frontDoor(port)+"/")) == "web 1"
			})

			// up again: nothing recreated.
			ids := projectContainers(t, project)
			must("up", "-d")
			if again := projectContainers(t, project); !slices.Equal(again, ids) {
				t.Errorf("second up changed the containers: %v, then %v", ids, again)
			}

			// A changed service is recreated, its published port taken over
			// from the old container; the others stay.
			oldWeb, oldApp := id("web", 1), id("app", 1)
			if out, err := p.runEnv([]string{"WEB_VERSION=2"}, "up", "-d"); err != nil {
				t.Fatalf("up with web changed: %v\n%s", err, out)
			}
			if id("web", 1) == oldWeb || id("app", 1) != oldApp {
				t.Errorf("up with web changed: web %s -> %s, app %s -> %s", oldWeb[:12], id("web", 1)[:12], oldApp[:12], id("app", 1)[:12])
			}
			waitFor(t, 30*time.Second, "web 2 at the front door", func() bool {
				return strings.TrimSpace(httpGetQuiet("http://"+frontDoor(port)+"/")) == "web 2"
			})
			p.env = []string{"WEB_VERSION=2"} // from now on, the file as it runs

			// Reading commands.
			for _, c := range []struct {
				args  []string
				wants []string
				v2    bool // v2 only
			}{
				{args: []string{"ps", "-a"}, wants: []string{p.name("init", 1), p.name("web", 1), p.name("pinnedlabel", 1), "Exit"}},
				{args: []string{"logs", "--tail", "5", "init"}, wants: []string{"init ran"}},
				{args: []string{"logs", "--tail", "5", "db"}, wants: []string{"db ready"}},
				{args: []string{"logs", "--tail", "5", "app"}, wants: []string{"app up"}},
				{args: []string{"exec", "-T", "db", "cat", "/data/init"}, wants: []string{"init done"}},
				{args: []string{"run", "--rm", "-T", "--no-deps", "app", "echo", "one-off"}, wants: []string{"one-off"}},
				{args: []string{"top", "app"}, wants: []string{"httpd -f -p 8080"}},
				{args: []string{"port", "web", "80"}, wants: []string{fmt.Sprintf(":%d", port)}},
				{args: []string{"config"}, wants: []string{"pinnedlabel:", "condition: service_healthy", "condition: service_completed_successfully"}},
				{args: []string{"config", "--services"}, wants: []string{"init", "pinnedenv"}},
				{args: []string{"images"}, wants: []string{"busybox", project + "-web"}},
				{args: []string{"wait", "init"}, wants: []string{"0"}, v2: true},
			} {
				if c.v2 && !v2 {
					continue
				}
				out := must(c.args...)
				for _, w := range c.wants {
					if !strings.Contains(out, w) {
						t.Errorf("%s: no %q in\n%s", strings.Join(c.args, " "), w, out)
					}
				}
			}
			if out := must("config"); !regexp.MustCompile(`VERSION: ["']?2["']?\n`).MatchString(out) {
				t.Errorf("config: web's VERSION is not 2 (WEB_VERSION=2):\n%s", out)
			}
			if v2 {
				checkComposePS(t, must("ps", "-a", "--format", "json"), project, map[string]string{
					"init": "exited", "db": "running", "app": "running", "web": "running", "pinnedenv": "running", "pinnedlabel": "running"})
				// cp both ways, between hosts' containers and this machine.
				local := filepath.Join(t.TempDir(), "init")
				must("cp", "db:/data/init", local)
				if b, err := os.ReadFile(local); err != nil || strings.TrimSpace(string(b)) != "init done" {
					t.Errorf("cp db:/data/init: %q %v", b, err)
				}
				must("cp", local, "app:/tmp/copied")
				if out := must("exec", "-T", "app", "cat", "/tmp/copied"); strings.TrimSpace(out) != "init done" {
					t.Errorf("cp into app: %q", out)
				}
			}
			if n := len(projectContainers(t, project)); n != len(ids) {
				t.Errorf("%d containers after run --rm, want %d", n, len(ids))
			}

			// State changes, each seen through Clocker.
			state := func(service string) string {
				t.Helper()
				return mustDocker(t, "inspect", "-f", "{{.State.Status}}", p.name(service, 1))
			}
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"pause", "app"}, "paused"},
				{[]string{"unpause", "app"}, "running"},
				{[]string{"stop", "-t", "1", "app"}, "exited"},
				{[]string{"start", "app"}, "running"},
				{[]string{"kill", "app"}, "exited"},
				{[]string{"restart", "-t", "1", "app"}, "running"},
			} {
				must(c.args...)
				if got := state("app"); got != c.want {
					t.Errorf("after %s: app %s, want %s", strings.Join(c.args, " "), got, c.want)
				}
			}

			// Scale up, over the hosts, and down.
			must("up", "-d", "--scale", "app=3")
			appHosts := map[string]bool{}
			for n := 1; n <= 3; n++ {
				appHosts[hostOf(t, p.name("app", n))] = true
			}
			if len(appHosts) != 3 {
				t.Errorf("app=3 on hosts %v, want three", appHosts)
			}
			must("up", "-d", "--scale", "app=1")
			if n := len(projectContainers(t, project)); n != len(ids) {
				t.Errorf("%d containers after --scale app=1, want %d", n, len(ids))
			}

			// build (the classic builder: Clocker answers BuildKit's
			// session with 501, and the clients fall back or use it), then
			// pull, which has no registry to reach.
			before := mustDocker(t, "image", "inspect", "-f", "{{.Id}}", image)
			must("build", "--no-cache", "web")
			if after := mustDocker(t, "image", "inspect", "-f", "{{.Id}}", image); after == before {
				t.Errorf("build --no-cache web left image %s as it was", image)
			}
			out, err := p.run("pull", "app")
			if err == nil {
				t.Errorf("pull with no registry succeeded:\n%s", out)
			} else if !strings.Contains(out, "registry-1.docker.io") {
				t.Errorf("pull with no registry: an unclear error:\n%s", out)
			}

			// An orphan (a container compose made for a service the file
			// no longer has), then down -v --remove-orphans: nothing of the
			// project on any host.
			if err := os.WriteFile(filepath.Join(dir, "ghost.yml"), []byte("services:\n  ghost:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			must("-f", "docker-compose.yml", "-f", "ghost.yml", "up", "-d", "--no-deps", "ghost")
			if out := mustDocker(t, "ps", "-aq", "--filter", "label=com.docker.compose.service=ghost", "--filter", "label=com.docker.compose.project="+project); out == "" {
				t.Fatal("no ghost container to orphan")
			}
			must("down", "-v", "-t", "1", "--remove-orphans")
			label := "label=com.docker.compose.project=" + project
			for i := range fleet.Engines {
				for _, what := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
					if out := engineDocker(t, i, append(what, "--filter", label)...); out != "" {
						t.Errorf("after down -v --remove-orphans, %s on %s: %s", what[0], fleet.Engines[i].Name, out)
					}
				}
			}
		})
	}
}

// inspectTime reads a time field of a container through Clocker.
func inspectTime(t testing.TB, name, format string) time.Time {
	t.Helper()
	s := mustDocker(t, "inspect", "-f", format, name)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s of %s: %q: %v", format, name, s, err)
	}
	return tm
}

// volumeHost is the one engine that holds a volume, asked directly.
func volumeHost(t testing.TB, name string) string {
	t.Helper()
	var on []string
	for i := range fleet.Engines {
		if engineDocker(t, i, "volume", "ls", "-q", "--filter", "name=^"+name+"$") != "" {
			on = append(on, fleet.Engines[i].Name)
		}
	}
	if len(on) != 1 {
		t.Fatalf("volume %s on %v, want one host", name, on)
	}
	return on[0]
}

// checkComposePS reads `docker compose ps --format json` and wants each
// service in its state.
func checkComposePS(t *testing.T, out, project string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, e := range readComposePS(t, out) {
		if e.Project != project {
			t.Errorf("ps --format json: %+v", e)
		}
		got[e.Service] = e.State
	}
	if !maps.Equal(got, want) {
		t.Errorf("ps --format json states %v, want %v", got, want)
	}
}
