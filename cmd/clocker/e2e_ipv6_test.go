//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// Dual-stack fleet networks: the overlay carries IPv6 as it carries IPv4
// (it is one layer 2 segment), each host hands out its slice of both
// subnets, and the agents answer AAAA for fleet names.

// fnIP6 is a container's IPv6 address in a network.
func fnIP6(t testing.TB, name, network string) netip.Addr {
	t.Helper()
	s := mustDocker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").GlobalIPv6Address}}`, name)
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("%s has no IPv6 address in %s: %q", name, network, s)
	}
	return a
}

// fnPing6 waits until from answers `ping -6` to target (an address or a
// name, which must then resolve to an IPv6 address).
func fnPing6(t testing.TB, from, target string) {
	t.Helper()
	var last result
	waitFor(t, 20*time.Second, from+" to ping -6 "+target, func() bool {
		last = docker(t, nil, "exec", from, "ping", "-6", "-c", "1", "-W", "2", target)
		return last.Code == 0
	})
	if !strings.Contains(last.Stdout, "1 packets received") {
		t.Fatalf("ping -6 %s from %s: %+v", target, from, last)
	}
}

func TestE2EFleetNetIPv6(t *testing.T) {
	fnCleanupNets(t, "cf6")
	cleanup(t, "cf61", "cf62", "cf63", "cf6ip", "cf6bad")
	subnet := netip.MustParsePrefix("fd00:c10::/64")
	mustDocker(t, "network", "create", "--ipv6", "--subnet", subnet.String(), "cf6")
	fnHTTPD(t, "cf61", 0, "cf6", "--network-alias", "six1")
	fnHTTPD(t, "cf62", 1, "cf6", "--network-alias", "six2")

	a1, a2 := fnIP6(t, "cf61", "cf6"), fnIP6(t, "cf62", "cf6")
	t.Run("each host hands out its slice of the IPv6 subnet", func(t *testing.T) {
		if !subnet.Contains(a1) || !subnet.Contains(a2) {
			t.Fatalf("addresses %s %s outside %s", a1, a2, subnet)
		}
		if netip.PrefixFrom(a1, 67).Masked() == netip.PrefixFrom(a2, 67).Masked() {
			t.Errorf("%s and %s lie in one host slice", a1, a2)
		}
		var nets []struct {
			EnableIPv6 bool
			IPAM       struct {
				Config []struct{ Subnet, IPRange, Gateway string }
			}
		}
		if err := json.Unmarshal([]byte(mustDocker(t, "network", "inspect", "cf6")), &nets); err != nil || len(nets) != 1 {
			t.Fatalf("inspect: %v %v", err, nets)
		}
		if n := nets[0]; !n.EnableIPv6 || len(n.IPAM.Config) != 2 || n.IPAM.Config[1].Subnet != subnet.String() {
			t.Errorf("inspect cf6: %+v", n)
		}
		// Each engine's copy: IPv6 on, its own slice and gateway.
		for i := range 2 {
			out := engineDocker(t, i, "network", "inspect", "-f", "{{.EnableIPv6}} {{json .IPAM.Config}}", "cf6")
			if !strings.HasPrefix(out, "true ") || !strings.Contains(out, `"Subnet":"`+subnet.String()+`"`) {
				t.Errorf("%s's copy: %s", fnHost(i), out)
			}
		}
	})
	t.Run("ping -6 across hosts by address, name and alias", func(t *testing.T) {
		fnPing6(t, "cf61", a2.String())
		fnPing6(t, "cf62", a1.String())
		fnPing6(t, "cf61", "cf62")
		fnPing6(t, "cf62", "six1")
		// IPv4 still works on the same network.
		fnReach(t, "cf61", "cf62", "cf62")
	})
	t.Run("AAAA of a fleet name is its IPv6 address", func(t *testing.T) {
		var out string
		waitFor(t, 20*time.Second, "cf61 to resolve cf62's AAAA", func() bool {
			r := docker(t, nil, "exec", "cf61", "nslookup", "-type=AAAA", "cf62")
			out = r.Stdout
			return r.Code == 0 && strings.Contains(out, a2.String())
		})
	})
	t.Run("--ip6 is a host filter, checked against the slices", func(t *testing.T) {
		// A free address of host 1's slice lands on host 1.
		want := netip.PrefixFrom(a1, 67).Masked().Addr().Next().Next().Next() // gw+2
		mustDocker(t, "run", "-d", "--name", "cf6ip", "--network", "cf6", "--ip6", want.String(), "busybox", "sleep", "300")
		if got := hostOf(t, "cf6ip"); got != fnHost(0) {
			t.Errorf("--ip6 %s of %s's slice placed on %s", want, fnHost(0), got)
		}
		if got := fnIP6(t, "cf6ip", "cf6"); got != want {
			t.Errorf("cf6ip has %s, want %s", got, want)
		}
		fnPing6(t, "cf62", want.String())
		// Pinned to host 2, an address of host 1's slice fits no host (as
		// --ip does): the error names the host that hands it out, and
		// nothing is made.
		r := docker(t, nil, "run", "-d", "--name", "cf6bad", "--network", "cf6", "--ip6", want.Next().String(),
			"-e", "constraint:node=="+fnHost(1), "busybox", "sleep", "60")
		slice1 := netip.PrefixFrom(a1, 67).Masked().String()
		if r.Code == 0 || !strings.Contains(r.Stderr, "on host "+fnHost(0)+" only (its slice") || !strings.Contains(r.Stderr, slice1) {
			t.Fatalf("run with another host's --ip6: %+v, want an error naming %s of %s", r, slice1, fnHost(0))
		}
		if out := mustDocker(t, "ps", "-aq", "--filter", "name=^cf6bad$"); out != "" {
			t.Errorf("the refused create left a container: %s", out)
		}
		// Outside the subnet: the engine's words.
		r = docker(t, nil, "run", "-d", "--name", "cf6bad", "--network", "cf6", "--ip6", "fd00:c11::5", "busybox", "true")
		if r.Code == 0 || !strings.Contains(r.Stderr, "does not belong to any of this network's subnets") {
			t.Fatalf("--ip6 outside the subnet: %+v", r)
		}
	})
	t.Run("connect --ip6 on a host that joins", func(t *testing.T) {
		mustDocker(t, "run", "-d", "--name", "cf63", "-e", "constraint:node=="+fnHost(2), "busybox", "sleep", "300")
		// Host 3 joins third: the third slice.
		ip := netip.MustParseAddr("fd00:c10:0:0:4000::10")
		mustDocker(t, "network", "connect", "--ip6", ip.String(), "cf6", "cf63")
		if got := fnIP6(t, "cf63", "cf6"); got != ip {
			t.Fatalf("cf63 has %s, want %s", got, ip)
		}
		fnPing6(t, "cf63", "cf61")
		fnPing6(t, "cf61", ip.String())
	})
	if got := fnEngineNets(t, "cf6"); !slices.Equal(got, []string{fnHost(0), fnHost(1), fnHost(2)}) {
		t.Errorf("cf6 is on engines %v", got)
	}
}

// `--ipv6` without an IPv6 subnet: Clocker answers what an engine of the
// fleet answers (API 1.41 engines have no IPv6 pool), and makes nothing;
// other bad IPv6 input is a 4xx that makes nothing.
func TestE2EFleetNetIPv6BadInput(t *testing.T) {
	fnCleanupNets(t, "cf6b", "cf6ok")
	body := []byte(`{"Name":"cf6b","EnableIPv6":true}`)
	resp, err := http.Post("http://"+fleet.Engines[0].Addr+":2375/v1.41/networks/create", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var engineMsg struct{ Message string }
	json.NewDecoder(resp.Body).Decode(&engineMsg)
	resp.Body.Close()
	if resp.StatusCode < 300 {
		engineDocker(t, 0, "network", "rm", "cf6b")
		t.Skipf("this engine makes an IPv6 network without a subnet (%d)", resp.StatusCode)
	}
	status, got := apiCall(t, "POST", "/v1.41/networks/create", "application/json", bytes.NewReader(body))
	var msg struct{ Message string }
	json.Unmarshal([]byte(got), &msg)
	if status != resp.StatusCode || msg.Message != engineMsg.Message {
		t.Errorf("Clocker answered %d %q, the engine %d %q", status, msg.Message, resp.StatusCode, engineMsg.Message)
	}
	r := docker(t, nil, "network", "create", "--ipv6", "cf6b")
	if r.Code == 0 || !strings.Contains(r.Stderr, engineMsg.Message) {
		t.Errorf("docker network create --ipv6: %+v", r)
	}

	mustDocker(t, "network", "create", "--ipv6", "--subnet", "fd00:c20::/64", "cf6ok")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"overlapping another fleet network's IPv6 subnet", []string{"--ipv6", "--subnet", "fd00:c20::/48"}, "overlap"},
		{"IPv6 gateway outside the subnet", []string{"--ipv6", "--subnet", "fd00:c21::/64", "--gateway", "fd00:c22::1"}, "gateway"},
		{"two IPv6 subnets", []string{"--ipv6", "--subnet", "fd00:c23::/64", "--subnet", "fd00:c24::/64"}, "one ipv6 subnet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"network", "create"}, tt.args...), "cf6b")
			r := docker(t, nil, args...)
			if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), tt.want) {
				t.Fatalf("docker %v: %+v, want an error about %q", args, r, tt.want)
			}
		})
	}
	if out := mustDocker(t, "network", "ls", "-q", "--filter", "name=cf6b"); out != "" {
		t.Errorf("a refused create is listed: %q", out)
	}
	if got := fnEngineNets(t, "cf6b"); len(got) != 0 {
		t.Errorf("a refused create left cf6b on %v", got)
	}
}
