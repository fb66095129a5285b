package testfleet

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEngines(t *testing.T) {
	out := "h1 10.213.5.1 tcp://10.213.5.1:2375 unix:///run/h/h1/docker.sock\n" +
		"h2 10.213.5.2 tcp://10.213.5.2:2375 unix:///run/h/h2/docker.sock\n"
	es, err := parseEngines(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Engine{
		{Name: "h1", Addr: "10.213.5.1", TCP: "tcp://10.213.5.1:2375", Unix: "unix:///run/h/h1/docker.sock"},
		{Name: "h2", Addr: "10.213.5.2", TCP: "tcp://10.213.5.2:2375", Unix: "unix:///run/h/h2/docker.sock"},
	}
	if len(es) != len(want) {
		t.Fatalf("got %d engines, want %d", len(es), len(want))
	}
	for i := range want {
		if es[i] != want[i] {
			t.Errorf("engine %d: got %+v, want %+v", i, es[i], want[i])
		}
	}
	if _, err := parseEngines("garbage line\n"); err == nil {
		t.Error("parseEngines accepted a malformed line")
	}
}

func TestScriptFound(t *testing.T) {
	if _, err := Script(); err != nil {
		t.Fatal(err)
	}
}

// machineDockerHost is a DOCKER_HOST that is not the machine's engine, as
// after the README's Quickstart (export DOCKER_HOST=tcp://127.0.0.1:2375
// with Clocker stopped): nothing listens on port 1.
var machineDockerHost = []string{"DOCKER_HOST=tcp://127.0.0.1:1", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=/nonexistent"}

// .ci/setup finds the machine's engine by its socket, whatever DOCKER_HOST
// says: it answers at once, so setup neither starts nor waits for another.
func TestSetupIgnoresDockerHost(t *testing.T) {
	if ok, why := Enabled(); !ok {
		t.Skip(why)
	}
	script, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	setup := filepath.Join(filepath.Dir(script), "..", "..", ".ci", "setup")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", setup)
	// DOCKERD_WAIT bounds the wait should setup look in the wrong place.
	cmd.Env = append(append(os.Environ(), machineDockerHost...), "DOCKERD_WAIT=5")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup with %v: %v\n%s", machineDockerHost, err, out)
	}
	if strings.Contains(string(out), "runs but does not answer") || strings.Contains(string(out), "starting dockerd") {
		t.Fatalf("setup did not find the running engine:\n%s", out)
	}
	if b, err := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "image", "inspect", "-f", "{{.Id}}", "busybox:latest").CombinedOutput(); err != nil {
		t.Fatalf("busybox:latest on the machine's engine after setup: %v %s", err, b)
	}
}

func TestFleet(t *testing.T) {
	if ok, why := Enabled(); !ok {
		t.Skip(why)
	}
	for _, kv := range machineDockerHost { // the engines are addressed by their sockets
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	f, err := Start(ctx, "tfleet", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 engines up in %v: %+v", time.Since(start).Round(time.Millisecond), f.Engines)
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if len(f.Engines) != 2 {
		t.Fatalf("got %d engines, want 2", len(f.Engines))
	}

	ids := map[string]string{}
	for _, e := range f.Engines {
		out, err := f.Docker(ctx, e.Name, "info", "--format", "{{.Name}}")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != e.Name {
			t.Errorf("%s: docker info reports Name %q", e.Name, got)
		}
		// The TCP endpoint answers from the root namespace too.
		info := exec.CommandContext(ctx, "docker", "-H", e.TCP, "info", "--format", "{{.Name}}")
		info.Env = cleanEnv() // the plain TCP endpoint: no TLS settings of a DOCKER_HOST meant for another daemon
		tcp, err := info.CombinedOutput()
		if err != nil || strings.TrimSpace(string(tcp)) != e.Name {
			t.Errorf("%s: docker -H %s info: %v: %s", e.Name, e.TCP, err, tcp)
		}
		out, err = f.Docker(ctx, e.Name, "run", "--rm", "busybox", "echo", "hi")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != "hi" {
			t.Errorf("%s: busybox echo hi printed %q", e.Name, got)
		}
		out, err = f.Docker(ctx, e.Name, "image", "inspect", "--format", "{{.Id}}", "busybox:latest")
		if err != nil {
			t.Fatal(err)
		}
		ids[e.Name] = strings.TrimSpace(out)
	}
	e1, e2 := f.Engines[0], f.Engines[1]
	if ids[e1.Name] == "" || ids[e1.Name] != ids[e2.Name] {
		t.Errorf("busybox image IDs differ: %v", ids)
	}

	// A container on host 2 reaches host 1's address.
	if out, err := f.Docker(ctx, e2.Name, "run", "--rm", "busybox", "ping", "-c", "1", "-W", "5", e1.Addr); err != nil {
		t.Errorf("ping %s from a container on %s: %v\n%s", e1.Addr, e2.Name, err, out)
	}

	if err := f.StopEngine(ctx, e2.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Docker(ctx, e2.Name, "info"); err == nil {
		t.Errorf("%s still answers after StopEngine", e2.Name)
	}
	if _, err := f.Docker(ctx, e1.Name, "info"); err != nil {
		t.Errorf("%s stopped answering when %s was stopped: %v", e1.Name, e2.Name, err)
	}
	if err := f.StartEngine(ctx, e2.Name); err != nil {
		t.Fatal(err)
	}
	out, err := f.Docker(ctx, e2.Name, "info", "--format", "{{.Name}}")
	if err != nil || strings.TrimSpace(out) != e2.Name {
		t.Errorf("%s after StartEngine: %v: %s", e2.Name, err, out)
	}
	if out, err := f.Docker(ctx, e2.Name, "run", "--rm", "busybox", "echo", "hi"); err != nil || strings.TrimSpace(out) != "hi" {
		t.Errorf("%s after StartEngine: run busybox: %v: %s", e2.Name, err, out)
	}

	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ns, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Engines {
		for _, line := range strings.Split(string(ns), "\n") {
			if fs := strings.Fields(line); len(fs) > 0 && fs[0] == e.Name {
				t.Errorf("namespace %s left after Stop", e.Name)
			}
		}
	}
}
