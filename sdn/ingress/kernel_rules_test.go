//go:build linux

package ingress

import (
	"net"
	"strings"
	"testing"
)

func testKernel(ip string) *Kernel {
	k := &Kernel{ip: net.ParseIP(ip).To4(), inst: "abc123", tag: "clocker-ingress:abc123", ch: chainNames("abc123")}
	k.any, k.loop = k.ip.IsUnspecified(), k.ip.IsLoopback()
	k.localnet = k.loop || k.any
	return k
}

func TestChainNamesFit(t *testing.T) {
	id := instanceID("listen=tcp://127.0.0.1:2375")
	if len(id) != 6 || id == instanceID("listen=tcp://127.0.0.1:2376") {
		t.Fatalf("instance id %q", id)
	}
	for _, c := range testKernel("127.0.0.1").Chains() {
		if len(c) > 28 { // iptables' limit
			t.Errorf("chain %q is %d bytes", c, len(c))
		}
	}
}

func TestForwardRules(t *testing.T) {
	key := Key{Proto: "tcp", Port: 8080}
	tip := net.ParseIP("10.213.0.2")
	t.Run("loopback", func(t *testing.T) {
		k := testKernel("127.0.0.1")
		rules := k.forwardRules(key, tip, 8080)
		last := rules[len(rules)-1]
		if last.table != "nat" || last.chain != k.ch.nat ||
			last.spec != `-p tcp -d 127.0.0.1/32 --dport 8080 -m comment --comment "clocker-ingress:abc123 8080/tcp" -j DNAT --to-destination 10.213.0.2:8080` {
			t.Fatalf("DNAT rule last: %+v", last)
		}
		for _, r := range rules {
			if r.chain == k.ch.fwd {
				t.Errorf("a FORWARD rule for loopback: %+v", r)
			}
			if r.chain != k.ch.nat && !strings.Contains(r.spec, "--ctorigdst 127.0.0.1 --ctorigdstport 8080 --ctreplsrc 10.213.0.2 --ctreplsrcport 8080") {
				t.Errorf("conntrack match: %+v", r)
			}
		}
		var jumps []string
		for _, j := range k.jumps() {
			jumps = append(jumps, j.table+"/"+j.from)
		}
		if got := strings.Join(jumps, " "); got != "nat/OUTPUT nat/POSTROUTING mangle/POSTROUTING mangle/PREROUTING filter/INPUT" {
			t.Fatalf("jumps: %s", got)
		}
	})
	t.Run("address", func(t *testing.T) {
		k := testKernel("192.0.2.7")
		rules := k.forwardRules(Key{Proto: "udp", Port: 53}, tip, 5353)
		var fwd, dnat bool
		for _, r := range rules {
			fwd = fwd || r.chain == k.ch.fwd && strings.HasSuffix(r.spec, "-j ACCEPT")
			dnat = dnat || strings.Contains(r.spec, "-p udp -d 192.0.2.7/32 --dport 53 ") && strings.HasSuffix(r.spec, "--to-destination 10.213.0.2:5353")
		}
		if !fwd || !dnat {
			t.Fatalf("rules: %+v", rules)
		}
		var guard bool
		for _, j := range k.jumps() {
			guard = guard || j.from == "INPUT"
		}
		if guard {
			t.Fatal("route_localnet guard without route_localnet")
		}
	})
	t.Run("unspecified", func(t *testing.T) {
		k := testKernel("0.0.0.0")
		dnat := k.forwardRules(key, tip, 8080)[len(k.forwardRules(key, tip, 8080))-1]
		if !strings.Contains(dnat.spec, "-m addrtype --dst-type LOCAL --dport 8080") || strings.Contains(dnat.spec, "-d ") {
			t.Fatalf("DNAT: %s", dnat.spec)
		}
	})
}

func TestRestorePayload(t *testing.T) {
	k := testKernel("127.0.0.1")
	old := k.forwardRules(Key{Proto: "tcp", Port: 80}, net.ParseIP("10.0.0.1"), 80)
	add := k.forwardRules(Key{Proto: "tcp", Port: 80}, net.ParseIP("10.0.0.2"), 80)
	p := restorePayload(old, add)
	nat := p[strings.Index(p, "*nat"):]
	nat = nat[:strings.Index(nat, "COMMIT")]
	lines := strings.Split(strings.TrimSpace(nat), "\n")
	// The old DNAT rule goes first, the new one comes last.
	if !strings.HasPrefix(lines[1], "-D "+k.ch.nat+" ") || !strings.HasPrefix(lines[len(lines)-1], "-A "+k.ch.nat+" ") ||
		!strings.Contains(lines[len(lines)-1], "10.0.0.2:80") {
		t.Fatalf("nat part:\n%s", nat)
	}
	if restorePayload(nil, nil) != "" {
		t.Fatal("an empty change is not empty")
	}
	if strings.Contains(p, "*filter") {
		t.Fatalf("loopback forward has filter rules:\n%s", p)
	}
}

func TestRuleCountersParse(t *testing.T) {
	k := testKernel("127.0.0.1")
	line := `-A CLOCKER-INGRESS-abc123-NAT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment "clocker-ingress:abc123 8080/tcp" -c 7 420 -j DNAT --to-destination 10.0.0.2:8080`
	m := ruleCounters.FindStringSubmatch(line)
	if m == nil || m[1] != k.tag+" 8080/tcp" || m[2] != "7" || m[3] != "420" {
		t.Fatalf("match %q", m)
	}
	if key, ok := parseKey("53/udp"); !ok || key != (Key{Proto: "udp", Port: 53}) {
		t.Fatal(key)
	}
	for _, bad := range []string{"53", "x/udp", "53/sctp", "70000/tcp"} {
		if _, ok := parseKey(bad); ok {
			t.Errorf("parseKey(%q) ok", bad)
		}
	}
}

func TestCountFlows(t *testing.T) {
	table := `ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=40000 dport=8080 src=10.0.0.2 dst=10.0.0.254 sport=8080 dport=40000 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 110 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=40001 dport=8080 src=10.0.0.2 dst=10.0.0.254 sport=8080 dport=40001 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=40002 dport=8080 src=127.0.0.1 dst=127.0.0.1 sport=8080 dport=40002 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 25 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=53 src=10.0.0.3 dst=10.0.0.254 sport=5353 dport=5000 mark=0 zone=0 use=2
ipv4     2 udp      17 25 src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=53 src=10.0.0.3 dst=10.0.0.254 sport=5353 dport=5001 mark=0 zone=0 use=2
`
	got := countFlows(strings.NewReader(table), map[Key]string{
		{Proto: "tcp", Port: 8080}: "10.0.0.2:8080",
		{Proto: "udp", Port: 53}:   "10.0.0.3:5353",
	})
	if got[Key{Proto: "tcp", Port: 8080}] != 1 || got[Key{Proto: "udp", Port: 53}] != 2 {
		t.Fatalf("flows: %v", got)
	}
}

func TestStartModes(t *testing.T) {
	if _, err := Start(loopback, ForwardsConfig{Mode: "fast"}); err == nil {
		t.Fatal("a bad mode started")
	}
	f, err := Start(loopback, ForwardsConfig{Mode: ModeUserland})
	if err != nil || f.Mode() != ModeUserland {
		t.Fatalf("userland: %v %v", f, err)
	}
	// IPv6 has no kernel mode: auto falls back, kernel refuses.
	f, err = Start(net.ParseIP("::1"), ForwardsConfig{Mode: ModeAuto})
	if err != nil || f.Mode() != ModeUserland {
		t.Fatalf("auto on ::1: %v %v", f, err)
	}
	if _, err := Start(net.ParseIP("::1"), ForwardsConfig{Mode: ModeKernel}); err == nil || !strings.Contains(err.Error(), "IPv4 only") {
		t.Fatalf("kernel on ::1: %v", err)
	}
}
