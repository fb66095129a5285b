//go:build linux

// Package nstest builds throwaway network namespaces for the tests of the
// SDN data plane: two "hosts" joined by a veth underlay, bridges in them,
// and TCP across whatever the test builds on top.
//
// Tests that use it need root; Require skips them otherwise (and under
// -short), so a plain `go test ./...` as a user skips them cleanly. Every
// namespace is named cksdn-<pid>-<name> and deleted by t.Cleanup (which
// takes every device inside with it); namespaces left by a killed run are
// swept on the next.
package nstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Prefix starts the name of every namespace this package makes.
const Prefix = "cksdn-"

// Require skips the test unless it runs as root and not under -short.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("network namespace test: skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespace test: needs root (creates namespaces, veths, bridges, VXLAN devices)")
	}
}

// NS is a network namespace made for one test.
type NS struct {
	// Name is the namespace's name (as `ip netns` shows it).
	Name string
	// Path is its bind mount, /var/run/netns/<Name>.
	Path string
	// Handle speaks netlink inside it.
	Handle *netlink.Handle

	ns netns.NsHandle
}

var sweepOnce sync.Once

// sweep deletes namespaces of this package whose test process is gone.
func sweep() {
	names, _ := filepath.Glob("/var/run/netns/" + Prefix + "*")
	for _, p := range names {
		rest := strings.TrimPrefix(filepath.Base(p), Prefix)
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidText); err == nil {
			continue // its test is still running
		}
		_ = netns.DeleteNamed(filepath.Base(p))
	}
}

// New makes the namespace cksdn-<pid>-<name> with its loopback up, and
// deletes it when the test ends.
func New(t testing.TB, name string) *NS {
	t.Helper()
	sweepOnce.Do(sweep)
	full := fmt.Sprintf("%s%d-%s", Prefix, os.Getpid(), name)
	if len(full) > 64 {
		t.Fatalf("namespace name %q too long", full)
	}
	_ = netns.DeleteNamed(full) // a leftover of this very pid (reused)

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.NewNamed(full) // moves this thread into it
	if serr := netns.Set(orig); serr != nil {
		// This thread is stuck in the wrong namespace: leave it locked so
		// the runtime retires it with the goroutine.
		t.Fatalf("return to the original namespace: %v", serr)
	}
	orig.Close()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("create namespace %s: %v", full, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		_ = netns.DeleteNamed(full)
		t.Fatal(err)
	}
	n := &NS{Name: full, Path: "/var/run/netns/" + full, Handle: h, ns: ns}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
		if err := netns.DeleteNamed(full); err != nil {
			t.Errorf("delete namespace %s: %v", full, err)
		}
	})
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("%s: loopback: %v", full, err)
	}
	return n
}

// Do runs fn on an OS thread that is inside the namespace: sockets fn
// opens live there.
func (n *NS) Do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(n.ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter %s: %v", n.Name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("leave %s: %v", n.Name, err) // thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// Underlay joins a and b with a veth pair named ul0 at both ends, holding
// addrA and addrB (CIDR notation), both up.
func Underlay(t testing.TB, a, b *NS, addrA, addrB string) {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = "ul0"
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "ul0", PeerNamespace: netlink.NsFd(int(b.ns))}
	if err := a.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s ↔ %s: %v", a.Name, b.Name, err)
	}
	a.Addr(t, "ul0", addrA)
	b.Addr(t, "ul0", addrB)
}

// Bridge makes a bridge holding addr (CIDR notation; none when empty), up.
func (n *NS) Bridge(t testing.TB, name, addr string) {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := n.Handle.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		t.Fatalf("%s: bridge %s: %v", n.Name, name, err)
	}
	if addr != "" {
		n.Addr(t, name, addr)
	} else {
		n.Up(t, name)
	}
}

// Addr puts addr (CIDR notation) on link and brings it up.
func (n *NS) Addr(t testing.TB, link, addr string) {
	t.Helper()
	l, err := n.Handle.LinkByName(link)
	if err != nil {
		t.Fatalf("%s: %s: %v", n.Name, link, err)
	}
	a, err := netlink.ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Handle.AddrAdd(l, a); err != nil {
		t.Fatalf("%s: address %s on %s: %v", n.Name, addr, link, err)
	}
	n.Up(t, link)
}

// Up brings link up.
func (n *NS) Up(t testing.TB, link string) {
	t.Helper()
	l, err := n.Handle.LinkByName(link)
	if err == nil {
		err = n.Handle.LinkSetUp(l)
	}
	if err != nil {
		t.Fatalf("%s: up %s: %v", n.Name, link, err)
	}
}

// Listen opens a TCP listener on addr inside the namespace that echoes one
// line per connection, prefixed with "echo "; it closes with the test.
func (n *NS) Listen(t testing.TB, addr netip.Addr) netip.AddrPort {
	t.Helper()
	var (
		l   net.Listener
		err error
	)
	n.Do(t, func() { l, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String()) })
	if err != nil {
		t.Fatalf("%s: listen on %v: %v", n.Name, addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 256)
				k, _ := c.Read(buf)
				c.Write(append([]byte("echo "), buf[:k]...))
			}()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// Exchange dials to from inside the namespace, sends msg and returns the
// reply.
func (n *NS) Exchange(to netip.AddrPort, msg string, timeout time.Duration) (string, error) {
	var (
		c   net.Conn
		err error
	)
	runtime.LockOSThread()
	orig, gerr := netns.Get()
	if gerr != nil {
		runtime.UnlockOSThread()
		return "", gerr
	}
	defer orig.Close()
	if err := netns.Set(n.ns); err != nil {
		runtime.UnlockOSThread()
		return "", err
	}
	c, err = net.DialTimeout("tcp", to.String(), timeout) // the socket is made on this thread, in n
	if serr := netns.Set(orig); serr != nil {
		if c != nil {
			c.Close()
		}
		return "", fmt.Errorf("leave %s: %w", n.Name, serr) // thread stays locked
	}
	runtime.UnlockOSThread()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	k, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}
