//go:build e2e

package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// A server of the test's own with a short --reschedule-after, on the same
// engines; the suite's server (30 s) does not act within this test.
func startRescheduleServer(t testing.TB, dataDir string) (url string, stop func()) {
	t.Helper()
	s := startOwnServer(t, dataDir, append(fleetEngineArgs(), "--reschedule-after", "3s")...)
	return s.url, s.kill
}

// A container created with -e reschedule:on-node-failure comes back on
// another host when its host dies (a plain one does not), one copy is
// listed, and the stale copy is removed once the engine is back. (A
// graceful engine stop is covered by the unit test's FinishedAt rule.)
func TestE2ERescheduleOnNodeFailure(t *testing.T) {
	victim := fleet.Engines[1]
	url, stop := startRescheduleServer(t, t.TempDir())
	defer stop()
	dockerAt := func(args ...string) (string, error) { return dockerAtURL(url, args...) }
	must := func(args ...string) string {
		t.Helper()
		out, err := dockerAt(args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	defer func() {
		_, _ = dockerAt("rm", "-f", "rs-web", "rs-plain")
	}()
	must("run", "-d", "--name", "rs-web", "-e", "reschedule:on-node-failure", "-e", "constraint:node=="+victim.Name, "busybox", "sleep", "600")
	must("run", "-d", "--name", "rs-plain", "-e", "constraint:node=="+victim.Name, "busybox", "sleep", "600")
	if env := must("inspect", "-f", "{{json .Config.Env}}", "rs-web"); strings.Contains(env, "reschedule:") {
		t.Errorf("the engine got the reschedule: entry: %s", env)
	}
	if l := must("inspect", "-f", `{{index .Config.Labels "io.clocker.reschedule"}}`, "rs-web"); l != "on-node-failure" {
		t.Errorf("label io.clocker.reschedule=%q", l)
	}
	oldID := must("inspect", "-f", "{{.Id}}", "rs-web")

	// The host dies (SIGKILL of its engine and everything in it).
	died := time.Now()
	restart := killEngine(t, victim.Name)
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last docker ps: %q", last)
		}
	}()
	waitFor(t, 3*time.Second+20*time.Second, "rs-web running on another host", func() bool {
		out, err := dockerAt("ps", "--filter", "name=rs-web", "--filter", "label=io.clocker.host", "--format", `{{.ID}} {{.Label "io.clocker.host"}} {{.State}}`)
		last = out
		f := strings.Fields(out)
		return err == nil && len(f) == 3 && !strings.HasPrefix(oldID, f[0]) && f[1] != victim.Name && f[2] == "running"
	})
	t.Logf("host death to rs-web running elsewhere: %s (--reschedule-after 3s)", time.Since(died).Round(100*time.Millisecond))
	if out := must("ps", "-a", "--filter", "name=rs-plain", "--filter", "label=io.clocker.host", "--format", `{{.Label "io.clocker.host"}}`); out != victim.Name {
		t.Errorf("rs-plain listed on %q, want it left on %s", out, victim.Name)
	}

	restart()
	waitFor(t, 30*time.Second, "the stale rs-web removed from "+victim.Name, func() bool {
		out := engineDocker(t, 1, "ps", "-a", "--format", "{{.Names}}")
		return !strings.Contains(out, "rs-web") && strings.Contains(out, "rs-plain")
	})
	if out := must("ps", "-a", "--filter", "name=rs-web", "--format", "{{.Names}}"); out != "rs-web" {
		t.Errorf("after the host came back: %q, want one rs-web", out)
	}
}

// killEngine kills the host name (SIGKILL of its engine and everything in
// it); restart starts it again, as the test's end does if it has not.
func killEngine(t *testing.T, name string) (restart func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleet.KillEngine(ctx, name); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	start := func() error {
		var err error
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err = fleet.StartEngine(ctx, name)
		})
		return err
	}
	t.Cleanup(func() { _ = start() })
	return func() {
		t.Helper()
		if err := start(); err != nil {
			t.Fatal(err)
		}
	}
}

// dockerAtURL runs the docker CLI against a server of a test's own.
func dockerAtURL(url string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+url, "DOCKER_CLI_HINTS=false")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// BenchmarkReschedule measures the fleet issue's target: the time from a
// host's death (SIGKILL of its engine and everything in it) to its
// reschedulable container running on another host, with
// --reschedule-after 3s (target: under 3 s + 10 s). The engine is started
// again and the stale copy removed between iterations, untimed.
//
//	CLOCKER_E2E=1 go test -tags e2e -run '^$' -bench Reschedule -benchtime 3x ./cmd/clocker/
func BenchmarkReschedule(b *testing.B) {
	victim := fleet.Engines[1]
	url, stop := startRescheduleServer(b, b.TempDir())
	defer stop()
	ctx := context.Background()
	var total time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		name := fmt.Sprintf("rb-%d", i)
		i++
		if out, err := dockerAtURL(url, "run", "-d", "--name", name, "-e", "reschedule:on-node-failure", "-e", "constraint:node=="+victim.Name, "busybox", "sleep", "600"); err != nil {
			b.Fatalf("run: %v %s", err, out)
		}
		b.StartTimer()
		died := time.Now()
		if err := fleet.KillEngine(ctx, victim.Name); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 60*time.Second, name+" running on another host", func() bool {
			out, err := dockerAtURL(url, "ps", "--filter", "name="+name, "--filter", "label=io.clocker.host", "--format", `{{.Label "io.clocker.host"}} {{.State}}`)
			f := strings.Fields(out)
			return err == nil && len(f) == 2 && f[0] != victim.Name && f[1] == "running"
		})
		total += time.Since(died)
		b.StopTimer()
		if err := fleet.StartEngine(ctx, victim.Name); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 60*time.Second, "the stale copy removed", func() bool {
			out := engineDocker(b, 1, "ps", "-a", "--format", "{{.Names}}")
			return !strings.Contains(out, name)
		})
		if out, err := dockerAtURL(url, "rm", "-f", name); err != nil {
			b.Fatalf("rm: %v %s", err, out)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/reschedule")
}
