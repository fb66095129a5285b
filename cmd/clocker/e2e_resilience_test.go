//go:build e2e

package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// psNames lists every container name Clocker shows.
func psNames(t testing.TB) []string {
	t.Helper()
	out := mustDocker(t, "ps", "-a", "--format", "{{.Names}}")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func TestE2EServerRestartLosesNothing(t *testing.T) {
	cleanup(t, "keep1", "keep2", "keep3")
	for _, n := range []string{"keep1", "keep2", "keep3"} {
		mustDocker(t, "run", "-d", "--name", n, "busybox", "sleep", "300")
	}
	before := psNames(t)

	// A crash, then a start with no --engine flag: the hosts come back
	// from the store and the containers from the engines.
	killServer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := startServer(ctx, false); err != nil {
		t.Fatal(err)
	}
	after := psNames(t)
	if strings.Join(sortStrings(after), ",") != strings.Join(sortStrings(before), ",") {
		t.Fatalf("after restart ps shows %v, before %v", after, before)
	}
	if out := mustDocker(t, "info"); !strings.Contains(out, "Nodes: 3") {
		t.Fatalf("after restart docker info:\n%s", out)
	}
	// Given the same flags again, hosts are not added twice.
	stopServer()
	if err := startServer(ctx, true); err != nil {
		t.Fatal(err)
	}
	if out := mustDocker(t, "info"); !strings.Contains(out, "Nodes: 3") {
		t.Fatalf("restart with the same --engine flags:\n%s", out)
	}
	// Names stay unique across the restart.
	r := docker(t, nil, "run", "-d", "--name", "keep1", "busybox", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Conflict") {
		t.Fatalf("reusing a name after restart: %+v", r)
	}
}

func TestE2EHostFailureAndRecovery(t *testing.T) {
	// Put a container on the last engine by pinning it with a volume.
	last := len(fleet.Engines) - 1
	victim := fleet.Engines[last].Name
	engineDocker(t, last, "volume", "create", "failvol")
	// Cleanups run last-first: the containers go before their volume.
	t.Cleanup(func() { engineDocker(t, last, "volume", "rm", "-f", "failvol") })
	cleanup(t, "onvictim", "elsewhere")
	mustDocker(t, "run", "-d", "--name", "onvictim", "-v", "failvol:/d", "busybox", "sleep", "300")
	if h := hostOf(t, "onvictim"); h != victim {
		t.Fatalf("onvictim on %s, want %s", h, victim)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleet.KillEngine(ctx, victim); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = fleet.StartEngine(context.Background(), victim)
		}
	})

	// Marked unhealthy in docker info.
	waitFor(t, 20*time.Second, "host marked unhealthy", func() bool {
		out := docker(t, nil, "info").Stdout
		return strings.Count(out, "Status: Unhealthy") == 1 && strings.Contains(out, "Status: Healthy")
	})
	// Its containers answer 503 naming the host.
	code, body := apiCall(t, "GET", "/v1.41/containers/onvictim/json", "", nil)
	if code != 503 || !strings.Contains(body, victim) {
		t.Fatalf("inspect on a dead host: %d %s", code, body)
	}
	// Everything else keeps working.
	mustDocker(t, "run", "-d", "--name", "elsewhere", "busybox", "sleep", "300")
	if h := hostOf(t, "elsewhere"); h == victim {
		t.Fatalf("placed on the dead host %s", h)
	}
	mustDocker(t, "ps")

	// It comes back by itself.
	if err := fleet.StartEngine(ctx, victim); err != nil {
		t.Fatal(err)
	}
	restarted = true
	waitFor(t, 30*time.Second, "host healthy again", func() bool {
		return strings.Count(docker(t, nil, "info").Stdout, "Status: Healthy") == 3
	})
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}}", "onvictim"); st != "exited" {
		t.Fatalf("onvictim after its host came back: %s", st)
	}
	mustDocker(t, "start", "onvictim")
	if st := mustDocker(t, "ps", "--filter", "name=^/onvictim$", "--format", "{{.State}}"); st != "running" {
		t.Fatalf("onvictim after start: %q", st)
	}
}

func TestE2EOlderClientVersion(t *testing.T) {
	cleanup(t, "oldclient")
	mustDocker(t, "run", "-d", "--name", "oldclient", "busybox", "sleep", "300")
	r := docker(t, nil, "ps", "--filter", "name=oldclient", "--format", "{{.Names}}")
	cmdEnv := []string{"DOCKER_API_VERSION=1.24"}
	old := dockerEnv(t, cmdEnv, "ps", "--filter", "name=oldclient", "--format", "{{.Names}}")
	if old.Code != 0 || old.Stdout != r.Stdout || !strings.Contains(old.Stdout, "oldclient") {
		t.Fatalf("DOCKER_API_VERSION=1.24 docker ps: %+v (current: %+v)", old, r)
	}
	if v := dockerEnv(t, cmdEnv, "version", "-f", "{{.Client.APIVersion}}"); strings.TrimSpace(v.Stdout) != "1.24" {
		t.Fatalf("client did not use 1.24: %+v", v)
	}
}

func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
