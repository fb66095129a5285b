//go:build e2e

package main

// Speed of a server-side compose deploy (issue 14: no slower than the
// client's up): the same 10-service file deployed by Clocker itself
// (POST /v1/applications, timed until its start task has ended) and by
// `docker compose up -d` through Clocker, interleaved, each project
// removed with `docker compose down` outside the timer. Run with
//
//	cd cmd/clocker && CLOCKER_E2E=1 CLOCKER_E2E_PREFIX=cbench \
//	  go test -tags e2e -run '^$' -bench ComposeServerDeploy -benchtime 10x -timeout 30m .
//
// Each line reports server-ms/op and up-ms/op (medians) and their ratio
// server/up (target ≤ 1).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tenServices is a 10-service file: a chain of healthchecked services
// would time the healthcheck interval, so it is five independent pairs,
// each a service and one that depends on it (started), on two networks.
func tenServices() string {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&b, "  base%d:\n    image: busybox\n    command: [\"sleep\", \"1d\"]\n    networks: [back]\n", i)
		fmt.Fprintf(&b, "  front%d:\n    image: busybox\n    command: [\"sleep\", \"1d\"]\n    networks: [back, front]\n    depends_on: [base%d]\n", i, i)
	}
	b.WriteString("networks:\n  back: {}\n  front: {}\n")
	return b.String()
}

func BenchmarkComposeServerDeploy(b *testing.B) {
	if exec.Command("docker", "compose", "version").Run() != nil {
		b.Skip("docker compose not installed")
	}
	dir := b.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(tenServices()), 0o644); err != nil {
		b.Fatal(err)
	}
	compose := func(project string, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", append([]string{"compose", "-p", project}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+clockerURL, "DOCKER_CLI_HINTS=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	const server, client = "csbenchsrv", "csbenchcli"
	b.Cleanup(func() {
		for _, p := range []string{server, client} {
			compose(p, "down", "-t", "0")
		}
	})
	var srv, up []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		code, body := brDo(b, "POST", "/v1/applications?name="+server+"&workdir="+dir, tenServices())
		if code != 201 {
			b.Fatalf("deploy: %d %s", code, body)
		}
		var task struct{ ID string }
		_ = json.Unmarshal([]byte(body), &task)
		if t := brWaitTaskEvery(b, task.ID, 10*time.Millisecond); t["isError"] == true {
			b.Fatalf("deploy task failed: %v", t["detailedStatus"])
		}
		srv = append(srv, time.Since(start))

		start = time.Now()
		compose(client, "up", "-d")
		up = append(up, time.Since(start))

		b.StopTimer()
		b.Logf("run %d: server-side %s, docker compose up -d %s", i+1, srv[i].Round(time.Millisecond), up[i].Round(time.Millisecond))
		if n := len(projectContainersB(b, server)); n != 10 {
			b.Fatalf("server-side deploy made %d containers, want 10", n)
		}
		compose(server, "down", "-t", "0")
		compose(client, "down", "-t", "0")
		b.StartTimer()
	}
	s, u := median(srv), median(up)
	b.ReportMetric(float64(s.Milliseconds()), "server-ms/op")
	b.ReportMetric(float64(u.Milliseconds()), "up-ms/op")
	b.ReportMetric(float64(s)/float64(u), "server/up")
}

func projectContainersB(b testing.TB, project string) []string {
	out := mustDocker(b, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project)
	return strings.Fields(out)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
