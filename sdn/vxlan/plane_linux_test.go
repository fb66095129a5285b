//go:build linux

package vxlan

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/clocker/clocker/sdn/internal/nstest"
)

var (
	underA = netip.MustParseAddr("198.18.0.1")
	underB = netip.MustParseAddr("198.18.0.2")
	gwA    = netip.MustParseAddr("10.200.0.1")
	gwB    = netip.MustParseAddr("10.200.0.33")
)

// twoHosts builds two namespaces joined by a veth underlay, each with a
// bridge br0 holding its gateway address in 10.200.0.0/24, and returns a
// Plane in each.
func twoHosts(t *testing.T) (a, b *nstest.NS, pa, pb *Plane) {
	t.Helper()
	nstest.Require(t)
	a, b = nstest.New(t, "a"), nstest.New(t, "b")
	nstest.Underlay(t, a, b, underA.String()+"/24", underB.String()+"/24")
	a.Bridge(t, "br0", gwA.String()+"/24")
	b.Bridge(t, "br0", gwB.String()+"/24")
	var err error
	if pa, err = Open(a.Path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pa.Close() })
	if pb, err = Open(b.Path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pb.Close() })
	return a, b, pa, pb
}

func device(local netip.Addr) Device {
	return Device{Name: "vx0", VNI: 4242, Local: local, Bridge: "br0", Alias: "clocker:test"}
}

// reach proves that a reaches b's gateway over TCP (across the overlay:
// the only path from 10.200.0.1 to 10.200.0.33 is br0 → vx0 → underlay).
func reach(t *testing.T, a *nstest.NS, to netip.AddrPort) {
	t.Helper()
	got, err := a.Exchange(to, "hello", 5*time.Second)
	if err != nil {
		t.Fatalf("TCP %v from %s across the overlay: %v", to, a.Name, err)
	}
	if got != "echo hello" {
		t.Fatalf("reply %q", got)
	}
}

func TestNetnsOverlayCarriesTCPAndReconciles(t *testing.T) {
	a, b, pa, pb := twoHosts(t)

	for _, c := range []struct {
		p           *Plane
		local, peer netip.Addr
	}{{pa, underA, underB}, {pb, underB, underA}} {
		ch, err := c.p.Ensure(device(c.local))
		if err != nil {
			t.Fatal(err)
		}
		if ch != Created {
			t.Fatalf("first Ensure: %s, want created", ch)
		}
		added, removed, err := c.p.SetPeers("vx0", []netip.Addr{c.peer})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(added, []netip.Addr{c.peer}) || len(removed) != 0 {
			t.Fatalf("SetPeers: added %v removed %v", added, removed)
		}
	}

	// The device is as ENVIRONMENT.md's recipe says, read back from the kernel.
	states, err := pa.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 {
		t.Fatalf("List: %+v", states)
	}
	st := states[0]
	want := Device{Name: "vx0", VNI: 4242, Local: underA, Underlay: "ul0", Port: 4789, MTU: 1450, Bridge: "br0", Alias: "clocker:test"}
	if st.Device != want || st.Learning || !st.Up || !slices.Equal(st.Peers, []netip.Addr{underB}) {
		t.Fatalf("read back %+v, want %+v, no learning, up, peers [%v]", st, want, underB)
	}

	srv := b.Listen(t, gwB)
	reach(t, a, srv)

	// A restarted agent: a new Plane re-learns, changes nothing, and adds
	// no duplicate entry.
	pa2, err := Open(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer pa2.Close()
	if ch, err := pa2.Ensure(device(underA)); err != nil || ch != Unchanged {
		t.Fatalf("Ensure after restart: %s, %v; want unchanged", ch, err)
	}
	if added, removed, err := pa2.SetPeers("vx0", []netip.Addr{underB}); err != nil || len(added)+len(removed) != 0 {
		t.Fatalf("SetPeers after restart: added %v removed %v err %v", added, removed, err)
	}
	if n := rawZeroEntries(t, a, "vx0"); n != 1 {
		t.Fatalf("%d all-zeros FDB entries after restart, want 1", n)
	}

	// A stale peer is removed, the live one stays and traffic goes on.
	stale := netip.MustParseAddr("198.18.0.99")
	if added, _, err := pa2.SetPeers("vx0", []netip.Addr{stale, underB}); err != nil || !slices.Equal(added, []netip.Addr{stale}) {
		t.Fatalf("add stale peer: %v %v", added, err)
	}
	if ps, _ := pa2.Peers("vx0"); !slices.Equal(ps, []netip.Addr{underB, stale}) {
		t.Fatalf("peers %v", ps)
	}
	added, removed, err := pa2.SetPeers("vx0", []netip.Addr{underB})
	if err != nil || len(added) != 0 || !slices.Equal(removed, []netip.Addr{stale}) {
		t.Fatalf("reconcile: added %v removed %v err %v", added, removed, err)
	}
	if ps, _ := pa2.Peers("vx0"); !slices.Equal(ps, []netip.Addr{underB}) {
		t.Fatalf("peers after reconcile %v", ps)
	}
	reach(t, a, srv)

	// An empty peer set cuts the overlay off: nothing else carries it.
	if _, _, err := pa2.SetPeers("vx0", nil); err != nil {
		t.Fatal(err)
	}
	flushNeigh(t, a)
	if _, err := a.Exchange(srv, "hello", 700*time.Millisecond); err == nil {
		t.Fatal("reached the peer with no FDB entry: the test does not prove the overlay")
	}
	if _, _, err := pa2.SetPeers("vx0", []netip.Addr{underB}); err != nil {
		t.Fatal(err)
	}
	reach(t, a, srv)

	// Teardown is idempotent and leaves nothing.
	for i := 0; i < 2; i++ {
		if err := pa.Delete("vx0"); err != nil {
			t.Fatalf("Delete %d: %v", i, err)
		}
	}
	if states, err := pa.List(); err != nil || len(states) != 0 {
		t.Fatalf("after Delete: %+v %v", states, err)
	}
}

func TestNetnsEnsureFixesWhatDiffers(t *testing.T) {
	a, _, pa, _ := twoHosts(t)

	if _, err := pa.Ensure(device(underA)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pa.SetPeers("vx0", []netip.Addr{underB}); err != nil {
		t.Fatal(err)
	}

	// MTU, alias, bridge and state are set in place: the entries stay.
	a.Bridge(t, "br1", "")
	l, _ := a.Handle.LinkByName("vx0")
	if err := a.Handle.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	d := device(underA)
	d.Bridge, d.MTU, d.Alias = "br1", 1400, "clocker:other"
	if ch, err := pa.Ensure(d); err != nil || ch != Updated {
		t.Fatalf("Ensure with new MTU/bridge/alias: %s %v; want updated", ch, err)
	}
	st := only(t, pa)
	if st.Bridge != "br1" || st.MTU != 1400 || st.Alias != "clocker:other" || !st.Up || st.Index != l.Attrs().Index {
		t.Fatalf("after update: %+v (index was %d)", st, l.Attrs().Index)
	}
	if !slices.Equal(st.Peers, []netip.Addr{underB}) {
		t.Fatalf("peers lost by an in-place update: %v", st.Peers)
	}

	// A new VNI needs a new device.
	d.VNI = 4343
	if ch, err := pa.Ensure(d); err != nil || ch != Recreated {
		t.Fatalf("Ensure with new VNI: %s %v; want recreated", ch, err)
	}
	if st := only(t, pa); st.VNI != 4343 || len(st.Peers) != 0 {
		t.Fatalf("after recreate: %+v", st)
	}

	// A link of that name that is no VXLAN device is replaced, too.
	if err := pa.Delete("vx0"); err != nil {
		t.Fatal(err)
	}
	a.Bridge(t, "vx0", "")
	if ch, err := pa.Ensure(d); err != nil || ch != Recreated {
		t.Fatalf("Ensure over a bridge named vx0: %s %v", ch, err)
	}

	// Missing bridge, bad input.
	d.Bridge = "nosuch"
	if _, err := pa.Ensure(d); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("missing bridge: %v, want ErrNoBridge", err)
	}
	for name, bad := range map[string]Device{
		"long name": {Name: strings.Repeat("x", 16), VNI: 1, Local: underA, Bridge: "br0"},
		"VNI 0":     {Name: "vx9", Local: underA, Bridge: "br0"},
		"VNI 2^24":  {Name: "vx9", VNI: 1 << 24, Local: underA, Bridge: "br0"},
		"no local":  {Name: "vx9", VNI: 1, Bridge: "br0"},
		"no bridge": {Name: "vx9", VNI: 1, Local: underA},
		"foreign local": {Name: "vx9", VNI: 1, Local: netip.MustParseAddr("203.0.113.9"),
			Bridge: "br0"},
	} {
		if _, err := pa.Ensure(bad); err == nil {
			t.Errorf("%s: Ensure(%+v) succeeded", name, bad)
		}
	}
	if _, err := a.Handle.LinkByName("vx9"); err == nil {
		t.Error("a rejected device was created")
	}
}

func only(t *testing.T, p *Plane) State {
	t.Helper()
	states, err := p.List()
	if err != nil || len(states) != 1 {
		t.Fatalf("List: %+v %v", states, err)
	}
	return states[0]
}

// rawZeroEntries counts the all-zeros FDB entries of link as the kernel
// holds them, without the de-duplication Peers does.
func rawZeroEntries(t *testing.T, n *nstest.NS, link string) int {
	t.Helper()
	l, err := n.Handle.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := n.Handle.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, e := range ns {
		if e.Flags&netlink.NTF_SELF != 0 && isZeroMAC(e.HardwareAddr) {
			c++
		}
	}
	return c
}

// flushNeigh forgets the ARP entries and the bridge's learned MACs of n, so
// that the next packet needs the overlay again.
func flushNeigh(t *testing.T, n *nstest.NS) {
	t.Helper()
	ns, _ := n.Handle.NeighList(0, unix.AF_INET)
	for _, e := range ns {
		if e.State&netlink.NUD_PERMANENT == 0 {
			_ = n.Handle.NeighDel(&e)
		}
	}
	vx, err := n.Handle.LinkByName("vx0")
	if err != nil {
		return
	}
	fdb, _ := n.Handle.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	for _, e := range fdb {
		if e.Flags&netlink.NTF_MASTER != 0 && e.State&netlink.NUD_PERMANENT == 0 {
			_ = n.Handle.NeighDel(&e)
		}
	}
}
