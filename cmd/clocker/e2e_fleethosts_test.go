//go:build e2e

package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// clockerHost runs `clocker host --host CLOCKER …` and returns its output
// and whether it succeeded.
func clockerHost(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, clockerBin, append([]string{"host", "--host", clockerURL}, args...)...).CombinedOutput()
	return string(out), err == nil
}

func mustClockerHost(t *testing.T, args ...string) string {
	t.Helper()
	out, ok := clockerHost(t, args...)
	if !ok {
		t.Fatalf("clocker host %s: %s", strings.Join(args, " "), out)
	}
	return out
}

// The fleet's hosts through `clocker host`: list, label (placement follows
// Clocker's labels), drain (no new work there), remove (refused while busy,
// allowed once drained, containers left on the engine), add back; bad input
// changes nothing.
func TestE2EFleetHostsAdmin(t *testing.T) {
	victim := fleet.Engines[2]
	ls := mustClockerHost(t, "ls")
	for _, e := range fleet.Engines {
		if !strings.Contains(ls, e.Name) || !strings.Contains(ls, e.TCP) {
			t.Fatalf("ls lacks %s:\n%s", e.Name, ls)
		}
	}
	if n := strings.Count(ls, " healthy "); n != len(fleet.Engines) {
		t.Fatalf("ls shows %d healthy hosts:\n%s", n, ls)
	}

	// Clocker's labels are placement's labels.
	mustClockerHost(t, "label", victim.Name, "tier=gold")
	t.Cleanup(func() { clockerHost(t, "label", victim.Name, "tier=") })
	cleanup(t, "fh-gold", "fh-a", "fh-b", "fh-c", "fh-d")
	mustDocker(t, "run", "-d", "--name", "fh-gold", "-e", "constraint:tier==gold", "busybox", "sleep", "300")
	if h := hostOf(t, "fh-gold"); h != victim.Name {
		t.Fatalf("constraint:tier==gold placed on %s, want %s", h, victim.Name)
	}

	// Busy and not drained: refused, nothing changes.
	if out, ok := clockerHost(t, "rm", victim.Name); ok || !strings.Contains(out, "drain the host first") {
		t.Fatalf("rm of a busy host: ok=%v %s", ok, out)
	}
	// Drained: no new work there.
	if out := mustClockerHost(t, "drain", victim.Name); !strings.Contains(out, "draining") {
		t.Errorf("drain said %q", out)
	}
	t.Cleanup(func() { clockerHost(t, "drain", "--undo", victim.Name) })
	for _, n := range []string{"fh-a", "fh-b", "fh-c", "fh-d"} {
		mustDocker(t, "run", "-d", "--name", n, "busybox", "sleep", "300")
		if h := hostOf(t, n); h == victim.Name {
			t.Fatalf("%s placed on the draining host", n)
		}
	}

	// Bad input: clear errors, the fleet stays as it was.
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"rm", "nosuchhost"}, "no such host: nosuchhost"},
		{[]string{"add", "ftp://x:1"}, "ftp://x:1"},
		{[]string{"add", "tcp://127.0.0.1:1"}, "does not answer"},
		{[]string{"add", "dup=" + victim.TCP}, "already in the fleet"},
		{[]string{"label", "nosuchhost", "a=b"}, "no such host"},
	} {
		if out, ok := clockerHost(t, c.args...); ok || !strings.Contains(out, c.says) {
			t.Errorf("clocker host %v: ok=%v %q, want an error saying %q", c.args, ok, out, c.says)
		}
	}
	if got := strings.Count(mustClockerHost(t, "ls"), "\n"); got != len(fleet.Engines)+1 {
		t.Errorf("bad input changed the fleet: %d lines", got)
	}

	// Removed once drained: its containers leave `docker ps` but stay on
	// the engine; added back, they are there again.
	mustClockerHost(t, "rm", victim.Name)
	if out := mustDocker(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "fh-gold") {
		t.Errorf("a removed host's container still listed:\n%s", out)
	}
	if out := engineDocker(t, 2, "ps", "-a", "--format", "{{.Names}}"); !strings.Contains(out, "fh-gold") {
		t.Errorf("removing the host removed its container from the engine:\n%s", out)
	}
	if out := mustClockerHost(t, "add", victim.Name+"="+victim.TCP); strings.TrimSpace(out) != victim.Name {
		t.Errorf("add said %q", out)
	}
	waitFor(t, 20*time.Second, "the host back with its container", func() bool {
		return strings.Contains(docker(t, nil, "ps", "--format", "{{.Names}}").Stdout, "fh-gold") &&
			strings.Count(mustClockerHost(t, "ls"), " healthy ") == len(fleet.Engines)
	})
}
