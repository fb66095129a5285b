package testfleet

import (
	"context"
	"os/exec"
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

func TestFleet(t *testing.T) {
	if ok, why := Enabled(); !ok {
		t.Skip(why)
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
		tcp, err := exec.CommandContext(ctx, "docker", "-H", e.TCP, "info", "--format", "{{.Name}}").CombinedOutput()
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
