//go:build linux

package ingress

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/clocker/clocker/sdn/internal/nstest"
)

// The kernel tests run in network namespaces of their own: the parent
// builds them (a manager, a target host behind a veth, an outside client
// behind another), serves on the target, and runs TestKernelChild as a
// child process inside the manager's namespace, where every iptables rule,
// sysctl and socket of the Kernel then lives.
//
//	client ns ─ cl0 198.19.8.2 ─ 198.19.8.1 manager ns 198.19.7.1 ─ ul0 ─ 198.19.7.2 target ns
//	                                        (the child)                    TCP echo :9000, UDP echo :9053

const (
	childEnv    = "CLOCKER_INGRESS_KERNEL_CHILD" // the client namespace's path
	childTarget = "198.19.7.2"
	childExtIP  = "198.19.8.1"
)

func TestKernelForwards(t *testing.T) {
	nstest.Require(t)
	if _, err := findIPTables(); err != nil {
		t.Skip(err)
	}
	mgr, tgt, cli := nstest.New(t, "ingm"), nstest.New(t, "ingt"), nstest.New(t, "ingc")
	nstest.Underlay(t, mgr, tgt, "198.19.7.1/24", childTarget+"/24")
	la := netlink.NewLinkAttrs()
	la.Name = "cl0"
	cliNS, err := netns.GetFromPath(cli.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer cliNS.Close()
	if err := mgr.Handle.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "cl0", PeerNamespace: netlink.NsFd(int(cliNS))}); err != nil {
		t.Fatal(err)
	}
	mgr.Addr(t, "cl0", childExtIP+"/24")
	cli.Addr(t, "cl0", "198.19.8.2/24")
	if err := cli.Handle.RouteAdd(&netlink.Route{Gw: net.ParseIP(childExtIP)}); err != nil {
		t.Fatal(err)
	}

	var tl net.Listener
	var ul net.PacketConn
	tgt.Do(t, func() {
		if tl, err = net.Listen("tcp", childTarget+":9000"); err == nil {
			ul, err = net.ListenPacket("udp", childTarget+":9053")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close(); ul.Close() })
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = ul.WriteTo(buf[:n], from)
		}
	}()

	cmd := exec.Command("nsenter", "--net="+mgr.Path, os.Args[0], "-test.run", "^TestKernelChild$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+cli.Path)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestKernelChild")) {
		t.Fatalf("the child failed: %v", err)
	}
}

// TestKernelChild runs inside the manager's namespace (see
// TestKernelForwards); skipped otherwise.
func TestKernelChild(t *testing.T) {
	cliPath := os.Getenv(childEnv)
	if cliPath == "" {
		t.Skip("runs as TestKernelForwards' child")
	}
	target := childTarget + ":9000"
	loop := net.ParseIP("127.0.0.1")

	k, err := NewKernel(loop, KernelOptions{Instance: "child-loop"})
	if err != nil {
		t.Fatal(err)
	}
	key := Key{Proto: "tcp", Port: 18080}
	if err := k.Open(key); err != nil {
		t.Fatal(err)
	}

	// Held: nobody else binds it, and without a target it refuses.
	for _, addr := range []string{"127.0.0.1:18080", "0.0.0.0:18080"} {
		if l, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
			if l != nil {
				l.Close()
			}
			t.Fatalf("listen on a held port %s: %v", addr, err)
		}
	}
	if err := k.Open(key); err != nil {
		t.Fatalf("open twice: %v", err)
	}
	if err := k2Open(loop, key); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("a second placeholder: %v", err)
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:18080", time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial without a target: %v", err)
	}

	// Forwarded: an echo through loopback, half-close included.
	if !k.SetTarget(key, target) {
		t.Fatal("SetTarget: not open")
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if got := echoOnce(t, "127.0.0.1:18080", payload); !bytes.Equal(got, payload) {
		t.Fatalf("echo through the kernel: %d bytes back", len(got))
	}
	held, err := net.Dial("tcp", "127.0.0.1:18080")
	if err != nil {
		t.Fatal(err)
	}
	st := k.AllStats()[key]
	if !st.Kernel || st.Target != target || st.Connections != 2 || st.Active != 1 ||
		st.BytesIn < uint64(len(payload)) || st.BytesOut < uint64(len(payload)) {
		t.Fatalf("stats: %+v", st)
	}
	held.Close()

	// UDP: a datagram before the target leaves a conntrack entry without
	// DNAT; the forward must not be stuck behind it.
	ukey := Key{Proto: "udp", Port: 18053}
	if err := k.Open(ukey); err != nil {
		t.Fatal(err)
	}
	uc, err := net.Dial("udp", "127.0.0.1:18053")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the early datagram in conntrack", func() bool {
		got := activeFlows(map[Key]string{ukey: "127.0.0.1:18053"})
		return got == nil || got[ukey] == 1 // nil: no conntrack file, nothing to wait for
	})
	k.SetTarget(ukey, childTarget+":9053")
	if got := udpEcho(t, uc, "ping"); got != "ping" {
		t.Fatalf("UDP echo: %q", got)
	}
	if st := k.AllStats()[ukey]; st.Connections != 1 || st.BytesIn == 0 || st.BytesOut == 0 {
		t.Fatalf("UDP stats: %+v", st)
	}

	// A new target keeps the counters going.
	before := k.AllStats()[key]
	k.SetTarget(key, "")
	if _, err := net.DialTimeout("tcp", "127.0.0.1:18080", time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after the target went: %v", err)
	}
	k.SetTarget(key, target)
	echoOnce(t, "127.0.0.1:18080", []byte("again"))
	if after := k.AllStats()[key]; after.Connections != before.Connections+1 || after.BytesIn <= before.BytesIn {
		t.Fatalf("counters across a target change: %+v then %+v", before, after)
	}

	// A restart (the process gone, its rules left): the same instance
	// flushes them and rebuilds, never doubling a rule.
	for _, p := range k.ports {
		p.hold.Close()
	}
	k2, err := NewKernel(loop, KernelOptions{Instance: "child-loop"})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, k.tag+" 18080/tcp"); n != 0 {
		t.Fatalf("%d rules of the previous run left", n)
	}
	if err := k2.Open(key); err != nil {
		t.Fatal(err)
	}
	k2.SetTarget(key, target)
	k2.SetTarget(key, target)
	echoOnce(t, "127.0.0.1:18080", []byte("after a restart"))
	if n := countRules(t, k.tag+" 18080/tcp\""); n != 2 { // DNAT and MASQUERADE
		t.Fatalf("%d rules for the port after a restart", n)
	}
	if n := countRules(t, "clocker-ingress:"+k.inst+":"); n != 5 { // one jump per built-in chain
		t.Fatalf("%d jumps after a restart", n)
	}

	// A manager whose process is gone is swept by any other's start.
	dead := "CLOCKER-INGRESS-dead00-NAT"
	restore(t, "*nat\n:"+dead+" - [0:0]\n-I OUTPUT 1 -m comment --comment \"clocker-ingress:dead00:0\" -j "+dead+"\nCOMMIT\n")
	ext, err := NewKernel(net.ParseIP(childExtIP), KernelOptions{Instance: "child-ext"})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, "dead00"); n != 0 {
		t.Fatalf("the dead manager's chain is still there (%d lines)", n)
	}
	if n := countRules(t, "clocker-ingress:"+k.inst+":"); n != 5 {
		t.Fatalf("a live manager's jumps were swept: %d left", n)
	}

	// From outside: PREROUTING, FORWARD (its policy DROP, as an engine
	// sets it) and MASQUERADE.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	restore(t, "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
	ekey := Key{Proto: "tcp", Port: 18081}
	if err := ext.Open(ekey); err != nil {
		t.Fatal(err)
	}
	ext.SetTarget(ekey, target)
	var got []byte
	inNetns(t, cliPath, func() { got = echoOnce(t, childExtIP+":18081", []byte("from outside")) })
	if string(got) != "from outside" {
		t.Fatalf("from the client namespace: %q", got)
	}
	if got := echoOnce(t, childExtIP+":18081", []byte("from the manager")); string(got) != "from the manager" {
		t.Fatalf("from the manager itself: %q", got)
	}

	// Every address (0.0.0.0): loopback, the manager's own and outside.
	all, err := NewKernel(net.IPv4zero, KernelOptions{Instance: "child-any"})
	if err != nil {
		t.Fatal(err)
	}
	akey := Key{Proto: "tcp", Port: 18083}
	if err := all.Open(akey); err != nil {
		t.Fatal(err)
	}
	all.SetTarget(akey, target)
	for _, addr := range []string{"127.0.0.1:18083", childExtIP + ":18083"} {
		if got := echoOnce(t, addr, []byte(addr)); string(got) != addr {
			t.Fatalf("via %s: %q", addr, got)
		}
	}
	inNetns(t, cliPath, func() { got = echoOnce(t, childExtIP+":18083", []byte("outside, any")) })
	if string(got) != "outside, any" {
		t.Fatalf("from the client namespace to 0.0.0.0: %q", got)
	}
	if st := all.AllStats()[akey]; st.Connections != 3 {
		t.Fatalf("stats of the 0.0.0.0 forward: %+v", st)
	}

	// Shut down: every rule and chain goes, even with a jump already
	// removed by hand.
	restore(t, "*mangle\n-D PREROUTING "+all.jumpSpec(jump{"mangle", "PREROUTING", all.ch.out})+"\nCOMMIT\n")
	all.CloseAll()
	ext.CloseAll()
	k2.CloseAll()
	if n := countRules(t, "clocker-ingress"); n != 0 {
		t.Fatalf("%d lines left after CloseAll", n)
	}

	// A target the kernel cannot reach goes to the fallback, in userland.
	fb := New(loop, Options{})
	defer fb.CloseAll()
	kf, err := NewKernel(loop, KernelOptions{Instance: "child-fb", Fallback: fb})
	if err != nil {
		t.Fatal(err)
	}
	defer kf.CloseAll()
	fkey := Key{Proto: "tcp", Port: 18082}
	if err := kf.Open(fkey); err != nil {
		t.Fatal(err)
	}
	kf.SetTarget(fkey, "localhost:9000")
	if st := kf.AllStats()[fkey]; st.Kernel || st.Target != "localhost:9000" {
		t.Fatalf("fallback stats: %+v", st)
	}
	if keys := fb.Keys(); len(keys) != 1 || keys[0] != fkey {
		t.Fatalf("fallback keys: %v", keys)
	}
}

func k2Open(ip net.IP, key Key) error {
	h, err := holdPort(ip, key)
	if err == nil {
		h.Close()
	}
	return err
}

// echoOnce sends msg, half-closes and reads the echo to EOF.
func echoOnce(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-errc; werr != nil || err != nil {
		t.Fatalf("echo via %s: write %v, read %v", addr, werr, err)
	}
	return got
}

func udpEcho(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	buf := make([]byte, 64)
	var got string
	// UDP may drop: retried, each try bounded.
	waitUntil(t, "a UDP echo", func() bool {
		if _, err := c.Write([]byte(msg)); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		got = string(buf[:n])
		return err == nil
	})
	return got
}

// countRules counts the lines of iptables-save that contain s.
func countRules(t *testing.T, s string) int {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(out), s)
}

func restore(t *testing.T, payload string) {
	t.Helper()
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(payload)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore: %v: %s", err, out)
	}
}

// inNetns runs fn on a thread inside the namespace at path.
func inNetns(t *testing.T, path string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread() // else the thread dies locked, with its goroutine
		}
		orig.Close()
	}()
	fn()
}
