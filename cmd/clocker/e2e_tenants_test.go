//go:build e2e

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2ETenants: with --tenants, two client certificates (alice, bob)
// over mutual TLS both run `web`; each sees, inspects, execs into and
// removes only its own; the other's containers, networks and volumes
// answer as absent; events and info are each one's own; the admin (ops)
// sees both.
func TestE2ETenants(t *testing.T) {
	s := startSecureServer(t, "", "--tenants")
	for _, who := range []string{"alice", "bob"} {
		if out, err := exec.Command(clockerBin, "certs", "client", who, "--dir", s.certs).CombinedOutput(); err != nil {
			t.Fatalf("certs client %s: %v\n%s", who, err, out)
		}
	}
	alice, bob, ops := filepath.Join(s.certs, "alice"), filepath.Join(s.certs, "bob"), filepath.Join(s.certs, "ops")
	as := func(who string, args ...string) result {
		t.Helper()
		return s.docker(t, who, nil, args...)
	}
	must := func(who string, args ...string) string {
		t.Helper()
		r := as(who, args...)
		if r.Code != 0 {
			t.Fatalf("%s: docker %s: exit %d\n%s%s", filepath.Base(who), strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	ids := map[string]string{}
	for _, who := range []string{alice, bob} {
		// Deferred calls run last first: the container goes before its
		// network and volume (a network in use stays, and its copies
		// would outlive this server on the shared engines).
		defer as(who, "volume", "rm", "data")
		defer as(who, "network", "rm", "front")
		defer as(who, "rm", "-f", "web")
		must(who, "network", "create", "front")
		must(who, "volume", "create", "data")
		ids[who] = must(who, "run", "-d", "--name", "web", "--network", "front", "-v", "data:/data", "busybox", "sleep", "300")
	}
	for _, who := range []string{alice, bob} {
		if out := must(who, "ps", "--format", "{{.ID}} {{.Names}}"); out != ids[who][:12]+" web" {
			t.Errorf("%s's ps: %q", filepath.Base(who), out)
		}
		if out := must(who, "inspect", "-f", "{{.Id}} {{.Name}}", "web"); out != ids[who]+" /web" {
			t.Errorf("%s inspects web: %q", filepath.Base(who), out)
		}
		if out := must(who, "exec", "web", "hostname"); !strings.HasPrefix(ids[who], out) {
			t.Errorf("%s execs in web: %q", filepath.Base(who), out)
		}
		if out := must(who, "network", "ls", "--format", "{{.Name}}", "--filter", "name=front"); out != "front" {
			t.Errorf("%s's networks: %q", filepath.Base(who), out)
		}
		if out := must(who, "volume", "ls", "-q"); out != "data" {
			t.Errorf("%s's volumes: %q", filepath.Base(who), out)
		}
	}
	// bob reaches none of alice's: not by her container's ID, nor her
	// objects' names as the engines hold them.
	aliceID := ids[alice]
	for _, args := range [][]string{
		{"inspect", aliceID}, {"exec", aliceID, "true"}, {"logs", aliceID}, {"stop", aliceID}, {"rm", aliceID},
		{"attach", aliceID}, {"network", "connect", "front", aliceID},
		{"inspect", "alice_web"}, {"network", "inspect", "alice_front"}, {"volume", "inspect", "alice_data"},
	} {
		r := as(bob, args...)
		if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "no such") && !strings.Contains(r.Stderr, "not found") {
			t.Errorf("bob: docker %s: exit %d %s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
	}
	if out := must(alice, "ps", "-q", "--no-trunc"); out != aliceID {
		t.Errorf("alice's web after bob's attempts: %q", out)
	}
	// Fleet DNS on each tenant's front answers its own web.
	ips := map[string]string{}
	for _, who := range []string{alice, bob} {
		ips[who] = must(who, "inspect", "-f", `{{(index .NetworkSettings.Networks "front").IPAddress}}`, "web")
	}
	if ips[alice] == "" || ips[alice] == ips[bob] {
		t.Fatalf("addresses on front: %v", ips)
	}
	for _, who := range []string{alice, bob} {
		defer as(who, "rm", "-f", "probe")
		must(who, "run", "-d", "--name", "probe", "--network", "front", "busybox", "sleep", "300")
	}
	for _, who := range []string{alice, bob} {
		var out string
		deadline := time.Now().Add(time.Minute)
		for {
			r := as(who, "exec", "probe", "timeout", "10", "nslookup", "web")
			out = r.Stdout
			if r.Code == 0 {
				break
			}
			if time.Now().After(deadline) {
				key := filepath.Base(who)
				t.Fatalf("%s's probe does not resolve web: %s%s\nresolv.conf: %s\nby engine name: %s\nprobe: %s\nweb: %s", key, r.Stdout, r.Stderr,
					as(who, "exec", "probe", "cat", "/etc/resolv.conf").Stdout,
					as(who, "exec", "probe", "timeout", "10", "nslookup", key+"_web").Stdout,
					as(ops, "inspect", "-f", "{{.HostConfig.Dns}} {{json .NetworkSettings.Networks}} {{.Node.Name}}", key+"_probe").Stdout,
					as(ops, "inspect", "-f", "{{json .NetworkSettings.Networks}} {{.Node.Name}}", key+"_web").Stdout)
			}
			time.Sleep(time.Second)
		}
		other := ips[alice]
		if who == alice {
			other = ips[bob]
		}
		if !strings.Contains(out, ips[who]) || strings.Contains(out, other) {
			t.Errorf("%s resolves web on front: want %s, not %s:\n%s", filepath.Base(who), ips[who], other, out)
		}
	}
	// Events: each tenant's own containers.
	until := time.Now().Add(time.Second).Format(time.RFC3339Nano)
	for _, who := range []string{alice, bob} {
		out := must(who, "events", "--since", since, "--until", until, "--filter", "type=container", "--format", "{{.Actor.ID}} {{.Actor.Attributes.name}}")
		other := ids[alice]
		if who == alice {
			other = ids[bob]
		}
		for _, line := range strings.Split(out, "\n") {
			id, name, _ := strings.Cut(line, " ")
			if id == other || id == ids[who] && name != "web" || strings.HasPrefix(name, "alice_") || strings.HasPrefix(name, "bob_") {
				t.Errorf("%s's events: %q", filepath.Base(who), line)
			}
		}
		if !strings.Contains(out, ids[who]) {
			t.Errorf("%s's events miss its own: %q", filepath.Base(who), out)
		}
		if out := must(who, "info", "--format", "{{.Containers}}"); out != "2" { // web and probe
			t.Errorf("%s's info counts %s containers", filepath.Base(who), out)
		}
	}
	// The admin sees both, by the engines' names.
	out := must(ops, "ps", "--format", "{{.Names}}", "--filter", "name=_web")
	if !strings.Contains(out, "alice_web") || !strings.Contains(out, "bob_web") {
		t.Errorf("the admin's ps: %q", out)
	}
	must(bob, "rm", "-f", "web")
	if out := must(alice, "ps", "-q", "--no-trunc", "--filter", "name=^/web$"); out != aliceID {
		t.Errorf("alice's web after bob removed his: %q", out)
	}
}
