//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// composeStack is a three-tier project: db (healthchecked, a named volume,
// network back) feeds app (three replicas, networks back and front), which
// feeds web (network front, a published port). Each tier fetches the one
// below by service name and serves what it got, so the front door shows
// data that crossed every tier. %d is web's published port.
const composeStack = `services:
  db:
    image: busybox
    command: ["sh", "-c", "echo db ready; echo tier3-$$(cat /proc/sys/kernel/random/uuid | cut -c1-8) > /data/seed.new; [ -f /data/index.html ] || mv /data/seed.new /data/index.html; exec httpd -f -p 8081 -h /data"]
    volumes: ["dbdata:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/"]
      interval: 1s
      timeout: 2s
      retries: 30
` + composeUpperTiers

// composeUpperTiers are the app and web tiers of both compose stacks (and
// their volumes and networks): app (three replicas on back and front,
// started once db is healthy) fetches db:8081, web (front, published port
// %d) fetches app:8080.
const composeUpperTiers = `  app:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www; while true; do wget -q -O /www/d.tmp http://db:8081/ && echo \"$$(cat /www/d.tmp) via app\" > /www/index.html; sleep 1; done & exec httpd -f -p 8080 -h /www"]
    depends_on:
      db:
        condition: service_healthy
    networks: [back, front]
    deploy:
      replicas: 3
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www; while true; do wget -q -O /www/d.tmp http://app:8080/ && echo \"$$(cat /www/d.tmp) via web\" > /www/index.html; sleep 1; done & exec httpd -f -p 80 -h /www"]
    depends_on: [app]
    networks: [front]
    ports: ["%d:80"]
volumes:
  dbdata: {}
networks:
  back: {}
  front: {}
`

// Both compose clients, unchanged, run the stack through Clocker: it
// spreads over hosts, data flows tier to tier by service name and reaches
// the front door, a second up changes nothing, the project scales, and
// down -v leaves nothing on any host.
func TestE2EComposeStack(t *testing.T) {
	for i, cli := range composeCLIs(t) {
		t.Run("compose "+cli.name, func(t *testing.T) {
			project := "cpstack" + cli.name[1:]
			port := 18331 + i
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(fmt.Sprintf(composeStack, port)), 0o644); err != nil {
				t.Fatal(err)
			}
			p := newComposeProject(cli, project, dir, clockerURL)
			compose, name := p.run, p.name
			must := func(args ...string) string { t.Helper(); return p.must(t, args...) }
			t.Cleanup(func() { _, _ = compose("down", "-v", "-t", "1", "--remove-orphans") })

			start := time.Now()
			must("up", "-d")
			t.Logf("compose %s up -d through Clocker: %s", cli.name, time.Since(start).Round(time.Millisecond))

			// Spread: the replicas on three hosts, the stack on at least two.
			ids := projectContainers(t, project)
			if len(ids) != 5 {
				t.Fatalf("%d containers after up, want 5 (db, 3 app, web)", len(ids))
			}
			appHosts, allHosts := map[string]bool{}, map[string]bool{}
			for n := 1; n <= 3; n++ {
				appHosts[hostOf(t, name("app", n))] = true
			}
			for _, c := range []string{name("db", 1), name("web", 1)} {
				allHosts[hostOf(t, c)] = true
			}
			for h := range appHosts {
				allHosts[h] = true
			}
			if len(appHosts) != 3 || len(allHosts) < 2 {
				t.Errorf("app replicas on %v, the stack on %v: want the replicas on three hosts", appHosts, allHosts)
			}
			// The named volume's host is db's.
			vol := project + "_dbdata"
			if got, want := mustDocker(t, "volume", "inspect", "-f", "{{.Labels}}", vol), "com.docker.compose.volume:dbdata"; !strings.Contains(got, want) {
				t.Errorf("volume %s labels %s", vol, got)
			}

			// Data crosses db -> app -> web by service name and leaves at the front door.
			var page string
			waitFor(t, 60*time.Second, "the stack's page at the front door", func() bool {
				page = httpGetQuiet("http://" + frontDoor(port) + "/")
				return strings.HasPrefix(page, "tier3-") && strings.HasSuffix(strings.TrimSpace(page), "via app via web")
			})

			// up again: nothing recreated.
			out := must("up", "-d")
			for _, bad := range []string{"Recreat", "recreat", "has changed"} {
				if strings.Contains(out, bad) {
					t.Errorf("second up recreates: %q\n%s", bad, out)
				}
			}
			if again := projectContainers(t, project); strings.Join(again, " ") != strings.Join(ids, " ") {
				t.Errorf("second up changed the containers: %v, then %v", ids, again)
			}

			// ps, logs, exec, run --rm, port.
			if out := must("ps"); !strings.Contains(out, name("app", 3)) || !strings.Contains(out, name("web", 1)) {
				t.Errorf("ps:\n%s", out)
			}
			if cli.name == "v2" {
				checkPSJSON(t, must("ps", "--format", "json"), project)
			}
			if out := must("logs", "--tail", "20", "db"); !strings.Contains(out, "db ready") {
				t.Errorf("logs db:\n%s", out)
			}
			if out := must("exec", "-T", "app", "wget", "-q", "-O-", "http://db:8081/"); !strings.HasPrefix(strings.TrimSpace(out), "tier3-") {
				t.Errorf("exec app wget db:\n%s", out)
			}
			if out := must("run", "--rm", "-T", "--no-deps", "app", "wget", "-q", "-O-", "http://app:8080/"); !strings.Contains(out, "via app") {
				t.Errorf("run --rm app wget app:\n%s", out)
			}
			if out := must("port", "web", "80"); !strings.HasSuffix(strings.TrimSpace(out), fmt.Sprintf(":%d", port)) {
				t.Errorf("port web 80: %q", out)
			}

			// stop, start, restart: the front door follows.
			must("stop", "-t", "1", "web")
			waitFor(t, 20*time.Second, "the front door to close after stop", func() bool { return refused(frontDoor(port)) })
			must("start", "web")
			must("restart", "-t", "1", "app")
			waitFor(t, 60*time.Second, "the page after start and restart", func() bool {
				return strings.HasSuffix(strings.TrimSpace(httpGetQuiet("http://"+frontDoor(port)+"/")), "via app via web")
			})

			// Scale up, then down.
			must("up", "-d", "--scale", "app=5")
			if n := len(projectContainers(t, project)); n != 7 {
				t.Errorf("%d containers after --scale app=5, want 7", n)
			}
			must("up", "-d", "--scale", "app=2")
			if n := len(projectContainers(t, project)); n != 4 {
				t.Errorf("%d containers after --scale app=2, want 4", n)
			}
			waitFor(t, 60*time.Second, "the page after scaling", func() bool {
				return strings.HasSuffix(strings.TrimSpace(httpGetQuiet("http://"+frontDoor(port)+"/")), "via app via web")
			})

			// down -v: nothing of the project on any host.
			must("down", "-v", "-t", "1")
			label := "label=com.docker.compose.project=" + project
			for i := range fleet.Engines {
				for _, what := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
					if out := engineDocker(t, i, append(what, "--filter", label)...); out != "" {
						t.Errorf("after down -v, %s on %s: %s", what[0], fleet.Engines[i].Name, out)
					}
				}
			}
		})
	}
}

// composeCLI is one installed compose client.
type composeCLI struct {
	name string   // v1, v2
	cmd  []string // the command before compose's own arguments
	sep  string   // between project, service and number in names
}

// run runs the client on project in dir against Clocker (three minutes
// at most), answering its combined output.
func (c composeCLI) run(dir, project string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	all := append(append(append([]string{}, c.cmd[1:]...), "-p", project), args...)
	cmd := exec.CommandContext(ctx, c.cmd[0], all...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+clockerURL, "DOCKER_CLI_HINTS=false")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// composeCLIs are the compose clients installed (docker-compose v1, the
// docker compose plugin); the test skips when there is none.
func composeCLIs(t testing.TB) []composeCLI {
	var clis []composeCLI
	if p, err := exec.LookPath("docker-compose"); err == nil {
		clis = append(clis, composeCLI{"v1", []string{p}, "_"})
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		clis = append(clis, composeCLI{"v2", []string{"docker", "compose"}, "-"})
	}
	if len(clis) == 0 {
		t.Skip("no compose installed")
	}
	return clis
}

// composeProject runs one compose client on one project directory against
// one Docker endpoint (Clocker, or an engine for comparison).
type composeProject struct {
	cli          composeCLI
	project, dir string
	host         string   // DOCKER_HOST
	env          []string // more environment for every command
	timeout      time.Duration
}

func newComposeProject(cli composeCLI, project, dir, host string) *composeProject {
	return &composeProject{cli: cli, project: project, dir: dir, host: host, timeout: 3 * time.Minute}
}

// run runs compose with args (after -p PROJECT) and answers its combined
// output.
func (p *composeProject) run(args ...string) (string, error) {
	return p.runEnv(nil, args...)
}

// runEnv is run with more environment.
func (p *composeProject) runEnv(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	out, err := p.command(ctx, env, args...).CombinedOutput()
	return string(out), err
}

// command is compose with args (after -p PROJECT) in the project's
// directory, against its DOCKER_HOST, with more environment.
func (p *composeProject) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	all := append(append(append([]string{}, p.cli.cmd[1:]...), "-p", p.project), args...)
	cmd := exec.CommandContext(ctx, p.cli.cmd[0], all...)
	cmd.Dir = p.dir
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+p.host, "DOCKER_CLI_HINTS=false", "COMPOSE_STATUS_STDOUT=1"), append(p.env, env...)...)
	return cmd
}

// must is run, failing the test unless compose exits 0.
func (p *composeProject) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.run(args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", p.cli.name, strings.Join(args, " "), err, out)
	}
	return out
}

// name is the container name compose gives replica n of service.
func (p *composeProject) name(service string, n int) string {
	return fmt.Sprintf("%s%s%s%s%d", p.project, p.cli.sep, service, p.cli.sep, n)
}

// projectContainers lists a compose project's container IDs through
// Clocker, sorted.
func projectContainers(t *testing.T, project string) []string {
	t.Helper()
	out := mustDocker(t, "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+project)
	if out == "" {
		return nil
	}
	ids := strings.Fields(out)
	sort.Strings(ids)
	return ids
}

// checkPSJSON reads `docker compose ps --format json` and wants every
// service running: db once, app three times, web once.
func checkPSJSON(t *testing.T, out, project string) {
	t.Helper()
	services := map[string]int{}
	for _, e := range readComposePS(t, out) {
		if e.State != "running" || e.Project != project {
			t.Errorf("ps --format json: %+v", e)
		}
		services[e.Service]++
	}
	if services["db"] != 1 || services["app"] != 3 || services["web"] != 1 {
		t.Errorf("ps --format json services: %v", services)
	}
}

// composePSEntry is what the tests read of one `compose ps --format json`
// entry.
type composePSEntry struct{ Name, Service, State, Project string }

// readComposePS reads `docker compose ps --format json`: one object a
// line, or an array in older releases.
func readComposePS(t *testing.T, out string) []composePSEntry {
	t.Helper()
	var es []composePSEntry
	if s := strings.TrimSpace(out); strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &es); err != nil {
			t.Fatalf("ps --format json: %v\n%s", err, out)
		}
	} else {
		for _, line := range strings.Split(s, "\n") {
			var e composePSEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("ps --format json line %q: %v", line, err)
			}
			es = append(es, e)
		}
	}
	return es
}

// httpGetQuiet GETs url once and answers its body ("" on any error or a
// status other than 200).
func httpGetQuiet(url string) string {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}
