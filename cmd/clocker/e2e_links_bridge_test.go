//go:build e2e

package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Legacy links on the default bridge: served on the linked container's
// host when the new one goes there (its engine's own link), and across
// hosts over the clocker-links fleet network otherwise, with the variables
// and names an engine sets.

// blLinkEnv is the ALIAS_… variables of container c for the given
// aliases, with addresses written IP.
func blLinkEnv(t testing.TB, c string, aliases ...string) []string {
	t.Helper()
	ip := regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+\b`)
	var out []string
	for _, kv := range strings.Split(mustDocker(t, "exec", c, "env"), "\n") {
		for _, a := range aliases {
			if strings.HasPrefix(kv, a+"_") {
				out = append(out, ip.ReplaceAllString(kv, "IP"))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestE2ELinksBridgeAcrossHosts(t *testing.T) {
	fnCleanupNets(t, "clocker-links")
	cleanup(t, "blta", "bltb", "blref", "blp", "blbad")
	expose := []string{"--expose", "80", "--expose", "8080-8082", "--expose", "53/udp", "-e", "BLV=one two", "-e", "HOME=/x"}
	fnHTTPD(t, "blta", 1, "bridge", expose...)
	fnHTTPD(t, "bltb", 2, "bridge", expose...)

	// Same host: no constraint, the link's preference places it there and
	// its engine serves the link.
	mustDocker(t, "run", "-d", "--name", "blref", "--link", "blta:x", "busybox", "sleep", "1d")
	if got := hostOf(t, "blref"); got != fnHost(1) {
		t.Errorf("blref runs on %s, want the linked container's host %s", got, fnHost(1))
	}
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Links}}", "blref"); got != "[/blta:/blref/x]" {
		t.Errorf("links of blref: %s", got)
	}
	fnReach(t, "blref", "x", "blta")
	want := blLinkEnv(t, "blref", "X")
	if len(want) < 10 {
		t.Fatalf("the engine's link variables: %v", want)
	}

	// Two links to two other hosts.
	mustDocker(t, "run", "-d", "--name", "blp", "--link", "blta:x", "--link", "bltb:y",
		"-e", "constraint:node=="+fnHost(0), "busybox", "sleep", "1d")
	fnReach(t, "blp", "x", "blta")
	fnReach(t, "blp", "y", "bltb")
	fnReach(t, "blp", "blta", "blta")
	// The variables the engine set for blref's link, parent aside.
	wantY := strings.ReplaceAll(strings.Join(want, "\n"), "X_", "Y_")
	wantY = strings.ReplaceAll(wantY, "/blref/x", "/blp/y")
	wantX := strings.ReplaceAll(strings.Join(want, "\n"), "/blref/x", "/blp/x")
	if got := strings.Join(blLinkEnv(t, "blp", "X"), "\n"); got != wantX {
		t.Errorf("X_ variables:\n%s\nwant\n%s", got, wantX)
	}
	if got := strings.Join(blLinkEnv(t, "blp", "Y"), "\n"); got != wantY {
		t.Errorf("Y_ variables:\n%s\nwant\n%s", got, wantY)
	}
	if r := docker(t, nil, "exec", "blp", "sh", "-c", "echo | nc -w 3 y 80"); r.Code != 0 {
		t.Errorf("nc y 80: %d %s", r.Code, r.Stderr)
	}
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Links}}", "blp"); got != "[/blta:/blp/x /bltb:/blp/y]" {
		t.Errorf("links of blp: %s", got)
	}

	// docker rm --link: one, then the other; twice is the engine's error.
	mustDocker(t, "rm", "--link", "/blp/x")
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Links}}", "blp"); got != "[/bltb:/blp/y]" {
		t.Errorf("links of blp after rm --link x: %s", got)
	}
	fnReach(t, "blp", "y", "bltb")
	if r := docker(t, nil, "rm", "--link", "/blp/x"); r.Code == 0 {
		t.Error("removing the link twice succeeded")
	}
	mustDocker(t, "rm", "--link", "/blp/y")
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Links}}", "blp"); got != "[]" {
		t.Errorf("links of blp after rm --link y: %s", got)
	}
	for _, n := range []string{"blta", "bltb", "blp", "blref"} {
		if got := mustDocker(t, "inspect", "-f", "{{.State.Running}}", n); got != "true" {
			t.Errorf("%s running: %s", n, got)
		}
	}

	// A link to no container: the engine's 400, nothing made.
	r := docker(t, nil, "run", "-d", "--name", "blbad", "--link", "blta:x", "--link", "nosuchbl:z", "busybox", "sleep", "1d")
	if r.Code == 0 || !strings.Contains(r.Stderr, "could not get container for nosuchbl") {
		t.Errorf("link to no container: %d %s", r.Code, r.Stderr)
	}
	if r := docker(t, nil, "inspect", "blbad"); r.Code == 0 {
		t.Error("a refused create left blbad")
	}
}
