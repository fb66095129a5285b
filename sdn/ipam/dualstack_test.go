package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/sdn"
)

// A dual-stack network: an IPv4 subnet (the user's or the pool's) and the
// user's IPv6 one, split into as many slices as the IPv4 one.
func TestCreateDualStack(t *testing.T) {
	tests := []struct {
		name        string
		before      []Spec
		spec        Spec
		want        error
		msg         string
		subnet      string // IPv4 subnet on success
		slice6      int    // IPv6 slice bits on success
		slots       int
		enableIPv6  bool
		noIPv6Slice bool
	}{
		{name: "IPv6 subnet, IPv4 from the pool", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/64"},
			subnet: "10.200.0.0/24", slice6: 67, slots: 8, enableIPv6: true},
		{name: "both subnets", spec: Spec{Name: "n", EnableIPv6: true, Subnet: "10.60.0.0/24", Subnet6: "fd00:1::/64", IPRange6: "fd00:1::/96", Gateway6: "fd00:1::ffff"},
			subnet: "10.60.0.0/24", slice6: 99, slots: 8, enableIPv6: true},
		{name: "IPv6 subnet without --ipv6 is kept (as an engine keeps it)", spec: Spec{Name: "n", Subnet6: "2001:389::/64"},
			subnet: "10.200.0.0/24", slice6: 67, slots: 8},
		{name: "a small IPv6 range limits the slices", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/64", IPRange6: "fd00::/124"},
			subnet: "10.200.0.0/24", slice6: 125, slots: 2, enableIPv6: true},
		{name: "no IPv6", spec: Spec{Name: "n"}, subnet: "10.200.0.0/24", slots: 8, noIPv6Slice: true},
		{name: "--ipv6 without an IPv6 subnet: the engine's answer", spec: Spec{Name: "n", EnableIPv6: true},
			want: errdefs.ErrNotFound, msg: "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"},
		{name: "IPv4 subnet as the IPv6 one", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "10.60.0.0/24"},
			want: errdefs.ErrInvalid, msg: "invalid subnet 10.60.0.0/24: not an IPv6 CIDR"},
		{name: "IPv6 host bits set", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::5/64"},
			want: errdefs.ErrInvalid, msg: "invalid subnet fd00::5/64: it should be fd00::/64"},
		{name: "IPv6 subnet too small", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/126"}, want: errdefs.ErrInvalid},
		{name: "IPv6 gateway outside", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/64", Gateway6: "fd01::1"},
			want: errdefs.ErrInvalid, msg: "no matching subnet for gateway fd01::1"},
		{name: "IPv6 range outside", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/64", IPRange6: "fd01::/80"},
			want: errdefs.ErrInvalid, msg: "no matching subnet for range fd01::/80"},
		{name: "IPv6 range without subnet", spec: Spec{Name: "n", IPRange6: "fd01::/80"},
			want: errdefs.ErrInvalid, msg: "every ip-range or gateway must have a corresponding subnet"},
		{name: "IPv6 overlaps a fleet network's", before: []Spec{{Name: "a", EnableIPv6: true, Subnet6: "fd00::/48"}},
			spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/64"},
			want: errdefs.ErrConflict, msg: "invalid pool request: Pool overlaps with other one on this address space"},
		{name: "IPv6 overlaps an engine's network", spec: Spec{Name: "n", EnableIPv6: true, Subnet6: "fd00::/64", Exclude: []netip.Prefix{pfx("fd00::/56")}},
			want: errdefs.ErrConflict, msg: "invalid pool request: Pool overlaps with other one on this address space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlloc(t, Config{})
			for _, s := range tc.before {
				if _, err := a.Create(s); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			n, err := a.Create(tc.spec)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || tc.msg != "" && err.Error() != tc.msg {
					t.Fatalf("err = %v, want %v %q", err, tc.want, tc.msg)
				}
				if got := len(a.List()); got != len(tc.before) {
					t.Fatalf("%d networks after a failed create, want %d", got, len(tc.before))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Subnet != pfx(tc.subnet) || n.SliceBits6 != tc.slice6 || n.Slots() != tc.slots || n.EnableIPv6 != tc.enableIPv6 {
				t.Fatalf("network %+v: subnet %v slice6 /%d slots %d ipv6 %v", n, n.Subnet, n.SliceBits6, n.Slots(), n.EnableIPv6)
			}
			sl, err := a.Join(n.ID, "h1")
			if err != nil {
				t.Fatal(err)
			}
			if sl.IPRange6.IsValid() == tc.noIPv6Slice || tc.noIPv6Slice != !sl.Gateway6.IsValid() {
				t.Fatalf("slice %+v", sl)
			}
		})
	}
}

// Each host gets the IPv6 slice at its IPv4 slice's index, with its own
// gateway (the user's in the slice that holds it, as for IPv4).
func TestJoinDualStackSlices(t *testing.T) {
	a := newAlloc(t, Config{Slices: 4})
	n, err := a.Create(Spec{Name: "d", EnableIPv6: true, Subnet: "10.60.0.0/24", Subnet6: "fd00:1::/64", Gateway6: "fd00:1:0:0:4000::7"})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdn.HostSlice{
		{Index: 0, IPRange: pfx("10.60.0.0/26"), Gateway: addr("10.60.0.1"), IPRange6: pfx("fd00:1::/66"), Gateway6: addr("fd00:1::1")},
		{Index: 1, IPRange: pfx("10.60.0.64/26"), Gateway: addr("10.60.0.65"), IPRange6: pfx("fd00:1:0:0:4000::/66"), Gateway6: addr("fd00:1:0:0:4000::7")},
		{Index: 2, IPRange: pfx("10.60.0.128/26"), Gateway: addr("10.60.0.129"), IPRange6: pfx("fd00:1:0:0:8000::/66"), Gateway6: addr("fd00:1:0:0:8000::1")},
		{Index: 3, IPRange: pfx("10.60.0.192/26"), Gateway: addr("10.60.0.193"), IPRange6: pfx("fd00:1:0:0:c000::/66"), Gateway6: addr("fd00:1:0:0:c000::1")},
	}
	for i, h := range []string{"h1", "h2", "h3", "h4"} {
		sl, err := a.Join(n.ID, h)
		if err != nil || sl != want[i] {
			t.Fatalf("%s: %+v %v, want %+v", h, sl, err, want[i])
		}
		n, _ = a.Get(n.ID)
		for _, ip := range []string{sl.Gateway.String(), sl.Gateway6.String()} {
			if idx, ok := n.SliceIndex(addr(ip)); !ok || idx != i || !sl.Holds(addr(ip)) {
				t.Fatalf("%s: slice of %s: %d %v", h, ip, idx, ok)
			}
		}
	}
	// A slice whose offset crosses the low 64 bits: a /56 range in /58s.
	n, err = a.Create(Spec{Name: "wide", Subnet: "10.61.0.0/24", Subnet6: "fd00:2::/56"})
	if err != nil {
		t.Fatal(err)
	}
	a.Join(n.ID, "h1")
	sl, _ := a.Join(n.ID, "h2")
	if sl.IPRange6 != pfx("fd00:2:0:40::/58") || sl.Gateway6 != addr("fd00:2:0:40::1") {
		t.Fatalf("wide slice %+v", sl)
	}
}

func TestDualStackPersisted(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.Create(Spec{Name: "d", EnableIPv6: true, Subnet6: "fd00:1::/64", IPRange6: "fd00:1::/80", Gateway6: "fd00:1::fe"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join(n.ID, "h1"); err != nil {
		t.Fatal(err)
	}
	want, _ := a.Get(n.ID)
	b, err := New(Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subnet6 != want.Subnet6 || got.IPRange6 != want.IPRange6 || got.Gateway6 != want.Gateway6 || got.SliceBits6 != want.SliceBits6 ||
		!got.EnableIPv6 || got.Hosts["h1"] != want.Hosts["h1"] {
		t.Fatalf("reloaded %+v, want %+v", got, want)
	}
}
