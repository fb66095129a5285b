//go:build e2e

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Links across hosts on fleet networks, and a fleet DNS that answers every
// query at once.

// lnLookup runs nslookup in container from and returns its output and
// exit code.
func lnLookup(t testing.TB, from string, args ...string) (string, int) {
	t.Helper()
	r := docker(t, nil, append([]string{"exec", from, "timeout", "20", "nslookup"}, args...)...)
	return r.Stdout + r.Stderr, r.Code
}

// The Python SDK's test_create_with_links: a container on a user network
// links to one that does not exist yet; once that one runs (here on
// another host), the alias resolves and reaches it. Two links to
// containers on two other hosts work the same.
func TestE2ELinksFleetNetworkAcrossHosts(t *testing.T) {
	fnCleanupNets(t, "lnnet")
	cleanup(t, "lnpar", "lnup", "lnpar2", "lna", "lnb")
	mustDocker(t, "network", "create", "lnnet")
	fnWaitHostDNS(t, 0)
	mustDocker(t, "run", "-d", "--name", "lnpar", "--network", "lnnet", "--link", "lnup:bar",
		"-e", "constraint:node=="+fnHost(0), "busybox", "sleep", "1d")
	if got := mustDocker(t, "inspect", "-f", "{{.NetworkSettings.Networks.lnnet.Links}}", "lnpar"); got != "[lnup:bar]" {
		t.Fatalf("links of lnpar: %s", got)
	}
	fnHTTPD(t, "lnup", 1, "lnnet")
	// At once, as on one engine (the SDK looks the alias up right after
	// the start): a start is answered once every host's fleet DNS serves
	// what it brings.
	if out, code := lnLookup(t, "lnpar", "bar"); code != 0 {
		t.Fatalf("lnpar does not resolve bar right after lnup started: exit %d\n%s", code, out)
	}
	fnReach(t, "lnpar", "bar", "lnup")

	fnHTTPD(t, "lna", 1, "lnnet")
	fnHTTPD(t, "lnb", 2, "lnnet")
	mustDocker(t, "run", "-d", "--name", "lnpar2", "--network", "lnnet", "--link", "lna:x", "--link", "lnb:y",
		"-e", "constraint:node=="+fnHost(0), "busybox", "sleep", "1d")
	for _, alias := range []string{"x", "y"} {
		if out, code := lnLookup(t, "lnpar2", alias); code != 0 {
			t.Errorf("lnpar2 does not resolve %s right after it started: exit %d\n%s", alias, code, out)
		}
	}
	fnReach(t, "lnpar2", "x", "lna")
	fnReach(t, "lnpar2", "y", "lnb")
	if _, code := lnLookup(t, "lnpar", "x"); code == 0 {
		t.Error("lnpar resolves lnpar2's link alias x")
	}
}

// Every query that reaches a host's fleet DNS is answered: from a member
// of a fleet network (through Docker's embedded resolver), from the
// default bridge and from a local network (queriers of no fleet network),
// for fleet names, unknown names and other types. The test fleet's hosts
// cannot reach the machine's resolver: before, each unknown name waited
// on it until nslookup gave up ("connection timed out; no servers could
// be reached").
func TestE2ELinksDNSNeverTimesOut(t *testing.T) {
	fnCleanupNets(t, "lndns", "lndnsloc")
	cleanup(t, "lndns1", "lndns2", "lndns3", "lndns4")
	mustDocker(t, "network", "create", "lndns")
	mustDocker(t, "network", "create", "-o", "clocker.scope=local", "--label", "io.clocker.host="+fnHost(0), "lndnsloc")
	fnWaitHostDNS(t, 0)
	fnHTTPD(t, "lndns1", 0, "lndns", "--network-alias", "lnalias", "--link", "lndns2:lnl")
	fnHTTPD(t, "lndns2", 1, "lndns")
	fnHTTPD(t, "lndns3", 0, "bridge")
	fnHTTPD(t, "lndns4", 0, "lndnsloc")
	waitFor(t, 20*time.Second, "lndns1 to resolve its link alias", func() bool {
		_, code := lnLookup(t, "lndns1", "lnl")
		return code == 0
	})
	for _, tt := range []struct {
		from  string
		args  []string
		found bool // else: answered (NXDOMAIN, no answer, SERVFAIL), not timed out
	}{
		{"lndns1", []string{"lndns2"}, true},
		{"lndns1", []string{"lnl"}, true},
		{"lndns1", []string{"nosuch-ln-name"}, false},
		{"lndns1", []string{"nosuch.example.invalid"}, false},
		{"lndns1", []string{"-type=mx", "lndns2"}, false},
		{"lndns1", []string{"-type=aaaa", "lnl"}, false},
		{"lndns1", []string{"-type=txt", "nosuch-ln-name"}, false},
		{"lndns3", []string{"nosuch-ln-name"}, false},
		{"lndns3", []string{"lndns2"}, false},
		{"lndns4", []string{"nosuch-ln-name"}, false},
		{"lndns4", []string{"-type=srv", "lnl"}, false},
	} {
		start := time.Now()
		out, code := lnLookup(t, tt.from, tt.args...)
		took := time.Since(start)
		t.Logf("nslookup %v from %s: exit %d in %v", tt.args, tt.from, code, took.Round(time.Millisecond))
		if strings.Contains(out, "timed out") || strings.Contains(out, "no servers could be reached") {
			t.Errorf("nslookup %v from %s got no answer:\n%s", tt.args, tt.from, out)
		}
		if tt.found && code != 0 {
			t.Errorf("nslookup %v from %s: exit %d\n%s", tt.args, tt.from, code, out)
		}
	}
}

// `docker rm --link /parent/alias` removes the link on the parent's host;
// removing it again, or the path without link=1, is a 404 as from an
// engine, and leaves both containers.
func TestE2ELinksRemoveLink(t *testing.T) {
	cleanup(t, "lnrl1", "lnrl2")
	mustDocker(t, "run", "-d", "--name", "lnrl1", "busybox", "sleep", "1d")
	mustDocker(t, "run", "-d", "--name", "lnrl2", "--link", "lnrl1:al", "busybox", "sleep", "1d")
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Links}}", "lnrl2"); got != "[/lnrl1:/lnrl2/al]" {
		t.Fatalf("links of lnrl2: %s", got)
	}
	req, _ := http.NewRequest(http.MethodDelete, httpURL("/containers/lnrl2/al"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE without link=1: %d, want 404", resp.StatusCode)
	}
	mustDocker(t, "rm", "--link", "/lnrl2/al")
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Links}}", "lnrl2"); got != "[]" {
		t.Errorf("links of lnrl2 after rm --link: %s", got)
	}
	if r := docker(t, nil, "rm", "--link", "/lnrl2/al"); r.Code == 0 {
		t.Error("removing the link twice succeeded")
	}
	for _, n := range []string{"lnrl1", "lnrl2"} {
		if got := mustDocker(t, "inspect", "-f", "{{.State.Running}}", n); got != "true" {
			t.Errorf("%s running: %s", n, got)
		}
	}
}
