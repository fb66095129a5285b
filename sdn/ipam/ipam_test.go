package ipam

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/sdn"
)

var (
	hostsSubnet = netip.MustParsePrefix("10.213.0.0/24")
	dockerPool  = netip.MustParsePrefix("172.17.0.0/16")
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func newAlloc(t *testing.T, cfg Config) *Allocator {
	t.Helper()
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		before  []Spec // created first, must succeed
		spec    Spec
		want    error  // errdefs kind, nil for success
		msg     string // exact message when want != nil
		subnet  string // on success
		slice   int    // prefix length of host slices on success
		ipRange string
	}{
		{name: "pool default", spec: Spec{Name: "n"}, subnet: "10.200.0.0/24", slice: 27},
		{name: "pool skips fleet networks", before: []Spec{{Name: "a"}, {Name: "b"}}, spec: Spec{Name: "n"}, subnet: "10.200.2.0/24", slice: 27},
		{name: "pool skips excluded", spec: Spec{Name: "n", Exclude: []netip.Prefix{pfx("10.200.0.0/23"), pfx("10.200.2.128/25")}},
			subnet: "10.200.3.0/24", slice: 27},
		{name: "pool skips a user subnet", before: []Spec{{Name: "u", Subnet: "10.200.0.0/24"}}, spec: Spec{Name: "n"}, subnet: "10.200.1.0/24", slice: 27},
		{name: "pool configured", cfg: Config{Pool: pfx("10.50.0.0/20"), SubnetBits: 22, Slices: 4}, spec: Spec{Name: "n"},
			subnet: "10.50.0.0/22", slice: 24},
		{name: "pool exhausted", cfg: Config{Pool: pfx("10.50.0.0/23")}, before: []Spec{{Name: "a"}, {Name: "b"}}, spec: Spec{Name: "n"},
			want: errdefs.ErrConflict, msg: "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"},
		{name: "pool all excluded", cfg: Config{Pool: pfx("10.213.0.0/24")}, spec: Spec{Name: "n", Exclude: []netip.Prefix{hostsSubnet}},
			want: errdefs.ErrConflict, msg: "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"},
		{name: "user subnet", spec: Spec{Name: "n", Subnet: "192.168.50.0/24"}, subnet: "192.168.50.0/24", slice: 27},
		{name: "user /16 gets big slices", spec: Spec{Name: "n", Subnet: "10.60.0.0/16"}, subnet: "10.60.0.0/16", slice: 19},
		{name: "user /28 gets /29 slices", spec: Spec{Name: "n", Subnet: "10.60.0.0/28"}, subnet: "10.60.0.0/28", slice: 29},
		{name: "user ip-range", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", IPRange: "10.60.0.128/25"}, subnet: "10.60.0.0/24", slice: 28,
			ipRange: "10.60.0.128/25"},
		{name: "user gateway", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", Gateway: "10.60.0.254"}, subnet: "10.60.0.0/24", slice: 27},
		{name: "duplicate name", before: []Spec{{Name: "n"}}, spec: Spec{Name: "n"},
			want: errdefs.ErrConflict, msg: "network with name n already exists"},
		{name: "no name", spec: Spec{}, want: errdefs.ErrInvalid, msg: "network name is required"},
		{name: "overlaps a fleet network", before: []Spec{{Name: "a"}}, spec: Spec{Name: "n", Subnet: "10.200.0.0/16"},
			want: errdefs.ErrConflict, msg: "invalid pool request: Pool overlaps with other one on this address space"},
		{name: "overlaps an engine pool", spec: Spec{Name: "n", Subnet: "172.17.5.0/24", Exclude: []netip.Prefix{dockerPool}},
			want: errdefs.ErrConflict, msg: "invalid pool request: Pool overlaps with other one on this address space"},
		{name: "overlaps the hosts' subnet", spec: Spec{Name: "n", Subnet: "10.213.0.0/16", Exclude: []netip.Prefix{hostsSubnet}},
			want: errdefs.ErrConflict, msg: "invalid pool request: Pool overlaps with other one on this address space"},
		{name: "invalid CIDR", spec: Spec{Name: "n", Subnet: "10.60.0.0/33"}, want: errdefs.ErrInvalid, msg: "invalid CIDR address: 10.60.0.0/33"},
		{name: "not a CIDR", spec: Spec{Name: "n", Subnet: "banana"}, want: errdefs.ErrInvalid, msg: "invalid CIDR address: banana"},
		{name: "host bits set", spec: Spec{Name: "n", Subnet: "10.60.0.5/24"}, want: errdefs.ErrInvalid, msg: "invalid subnet 10.60.0.5/24: it should be 10.60.0.0/24"},
		{name: "IPv6 subnet as the IPv4 one", spec: Spec{Name: "n", Subnet: "fd00::/64"}, want: errdefs.ErrInvalid, msg: "invalid subnet fd00::/64: not an IPv4 CIDR"},
		{name: "subnet too small", spec: Spec{Name: "n", Subnet: "10.60.0.0/30"}, want: errdefs.ErrInvalid},
		{name: "gateway outside subnet", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", Gateway: "10.61.0.1"},
			want: errdefs.ErrInvalid, msg: "no matching subnet for gateway 10.61.0.1"},
		{name: "gateway not an address", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", Gateway: "10.60.0.300"},
			want: errdefs.ErrInvalid, msg: "invalid gateway address: 10.60.0.300"},
		{name: "gateway is the network address", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", Gateway: "10.60.0.0"}, want: errdefs.ErrInvalid},
		{name: "range outside subnet", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", IPRange: "10.60.1.0/25"},
			want: errdefs.ErrInvalid, msg: "no matching subnet for range 10.60.1.0/25"},
		{name: "range larger than subnet", spec: Spec{Name: "n", Subnet: "10.60.0.0/24", IPRange: "10.60.0.0/23"}, want: errdefs.ErrInvalid},
		{name: "gateway without subnet", spec: Spec{Name: "n", Gateway: "10.200.0.1"},
			want: errdefs.ErrInvalid, msg: "every ip-range or gateway must have a corresponding subnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlloc(t, tc.cfg)
			for _, s := range tc.before {
				if _, err := a.Create(s); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			n, err := a.Create(tc.spec)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.msg != "" && err.Error() != tc.msg {
					t.Fatalf("message %q, want %q", err.Error(), tc.msg)
				}
				if got := len(a.List()); got != len(tc.before) {
					t.Fatalf("%d networks after a failed create, want %d", got, len(tc.before))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Subnet != pfx(tc.subnet) || n.SliceBits != tc.slice {
				t.Fatalf("subnet %v slices /%d, want %s /%d", n.Subnet, n.SliceBits, tc.subnet, tc.slice)
			}
			if tc.ipRange != "" && n.IPRange != pfx(tc.ipRange) {
				t.Fatalf("ip-range %v, want %s", n.IPRange, tc.ipRange)
			}
			if len(n.ID) != 64 || n.VNI < DefaultVNIFirst || n.Driver != "bridge" || n.Provider != "vxlan" {
				t.Fatalf("network %+v", n)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	for name, cfg := range map[string]Config{
		"IPv6 pool":       {Pool: pfx("fd00::/48")},
		"host bits":       {Pool: pfx("10.200.0.1/16")},
		"subnet > pool":   {Pool: pfx("10.200.0.0/24"), SubnetBits: 16},
		"subnet too tiny": {SubnetBits: 30},
		"VNI range":       {VNIFirst: 10, VNILast: 5},
		"VNI too big":     {VNILast: 1 << 24},
	} {
		if _, err := New(cfg, nil); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// The recipe ENVIRONMENT.md verified: per host a slice, each with its own
// gateway, the first address of the slice.
func TestJoinSlicesAndGateways(t *testing.T) {
	a := newAlloc(t, Config{Slices: 4})
	n, err := a.Create(Spec{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdn.HostSlice{
		{Index: 0, IPRange: pfx("10.200.0.0/26"), Gateway: addr("10.200.0.1")},
		{Index: 1, IPRange: pfx("10.200.0.64/26"), Gateway: addr("10.200.0.65")},
		{Index: 2, IPRange: pfx("10.200.0.128/26"), Gateway: addr("10.200.0.129")},
	}
	for i, h := range []string{"h1", "h2", "h3"} {
		// The slice the next host gets is the one it then joins with.
		if next, ok := a.NextSlice(n.Name); !ok || next != want[i] {
			t.Fatalf("next slice before %s joins: %+v %v, want %+v", h, next, ok, want[i])
		}
		sl, err := a.Join(n.Name, h)
		if err != nil {
			t.Fatal(err)
		}
		if sl != want[i] {
			t.Fatalf("%s: %+v, want %+v", h, sl, want[i])
		}
	}
	// Joining again is idempotent.
	if sl, err := a.Join(n.ID, "h2"); err != nil || sl != want[1] {
		t.Fatalf("rejoin h2: %+v %v", sl, err)
	}
	// A host that leaves frees its slice for the next one.
	if err := a.Leave(n.ID[:12], "h2"); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(n.ID, "h2"); err != nil {
		t.Fatalf("second leave: %v", err)
	}
	if next, ok := a.NextSlice("app"); !ok || next != want[1] {
		t.Fatalf("next slice after h2 left: %+v %v, want %+v", next, ok, want[1])
	}
	if sl, err := a.Join("app", "h4"); err != nil || sl != want[1] {
		t.Fatalf("h4 after h2 left: %+v %v", sl, err)
	}
	if _, err := a.Join("app", "h5"); err != nil {
		t.Fatal(err)
	}
	if next, ok := a.NextSlice("app"); ok {
		t.Fatalf("next slice of a full network: %+v", next)
	}
	_, err = a.Join("app", "h6")
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("fifth host in four slices: %v, want ErrConflict", err)
	}
	if _, err := a.Join("nosuch", "h1"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "network nosuch not found" {
		t.Fatalf("unknown network: %v", err)
	}

	got, _ := a.Get("app")
	if got.Members()[0] != "h1" || len(got.Hosts) != 4 {
		t.Fatalf("members %v", got.Members())
	}
}

func TestUserGatewayTakesItsSlice(t *testing.T) {
	a := newAlloc(t, Config{})
	// Inside the range: the slice holding it uses it.
	n, err := a.Create(Spec{Name: "in", Subnet: "10.60.0.0/24", Gateway: "10.60.0.40"})
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := a.Join(n.ID, "h1")
	s1, _ := a.Join(n.ID, "h2")
	if s0.Gateway != addr("10.60.0.1") || s1.Gateway != addr("10.60.0.40") {
		t.Fatalf("gateways %v %v", s0.Gateway, s1.Gateway)
	}
	// Outside the ip-range: the first slice uses it.
	n, err = a.Create(Spec{Name: "out", Subnet: "10.61.0.0/24", IPRange: "10.61.0.128/25", Gateway: "10.61.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s0, _ = a.Join(n.ID, "h1")
	s1, _ = a.Join(n.ID, "h2")
	if s0 != (sdn.HostSlice{Index: 0, IPRange: pfx("10.61.0.128/28"), Gateway: addr("10.61.0.1")}) ||
		s1 != (sdn.HostSlice{Index: 1, IPRange: pfx("10.61.0.144/28"), Gateway: addr("10.61.0.145")}) {
		t.Fatalf("slices %+v %+v", s0, s1)
	}
}

func TestGetRemove(t *testing.T) {
	a := newAlloc(t, Config{})
	n, _ := a.Create(Spec{Name: "web"})
	for _, ref := range []string{n.ID, "web", n.ID[:5]} {
		if got, err := a.Get(ref); err != nil || got.ID != n.ID {
			t.Fatalf("Get(%q) = %v, %v", ref, got.ID, err)
		}
	}
	// Callers get copies.
	got, _ := a.Get("web")
	got.Hosts["intruder"] = sdn.HostSlice{}
	got.Labels = map[string]string{"x": "y"}
	if again, _ := a.Get("web"); len(again.Hosts) != 0 {
		t.Fatal("a returned network shares the allocator's map")
	}
	if _, err := a.Remove("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get("web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
	if _, err := a.Remove("web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	// Its subnet and VNI are free again.
	m, _ := a.Create(Spec{Name: "next"})
	if m.Subnet != n.Subnet || m.VNI != n.VNI {
		t.Fatalf("freed subnet/VNI not reused: %v %d vs %v %d", m.Subnet, m.VNI, n.Subnet, n.VNI)
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	a := newAlloc(t, Config{})
	// Force two IDs with a common prefix.
	n1, _ := a.Create(Spec{Name: "one"})
	n2, _ := a.Create(Spec{Name: "two"})
	a.mu.Lock()
	for _, n := range []string{n1.ID, n2.ID} {
		x := a.nets[n]
		delete(a.nets, n)
		x.ID = "abc" + x.ID[3:]
		a.nets[x.ID] = x
	}
	a.mu.Unlock()
	if _, err := a.Get("abc"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
}

func TestPersistedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.Create(Spec{Name: "web", Labels: map[string]string{"l": "v"}, Internal: true, Driver: "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join("web", "h1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join("web", "h2"); err != nil {
		t.Fatal(err)
	}
	gone, _ := a.Create(Spec{Name: "gone"})
	if _, err := a.Remove(gone.ID); err != nil {
		t.Fatal(err)
	}
	before := a.List()
	st.Close()

	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := New(Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	after := b.List()
	if len(after) != 1 {
		t.Fatalf("after restart: %d networks", len(after))
	}
	// Times lose their monotonic reading in JSON; compare the rest.
	if !before[0].Created.Equal(after[0].Created) {
		t.Fatalf("created %v vs %v", before[0].Created, after[0].Created)
	}
	before[0].Created = after[0].Created
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("after restart:\n%+v\nwant\n%+v", after, before)
	}
	// A new network after the restart does not collide with the old one.
	m, err := b.Create(Spec{Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subnet.Overlaps(n.Subnet) || m.VNI == n.VNI {
		t.Fatalf("collision after restart: %+v vs %+v", m, n)
	}
	if _, err := b.Create(Spec{Name: "web"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("duplicate name after restart: %v", err)
	}
}

// checkInvariants holds after every operation: no two networks overlap,
// none overlaps an excluded subnet, VNIs and names are unique, each
// network's slices are disjoint and inside its range, and each gateway is
// inside its slice (or, when it is the user's and outside the range, in
// the subnet).
func checkInvariants(t *testing.T, nets []sdn.Network, exclude []netip.Prefix) {
	t.Helper()
	vnis := map[uint32]string{}
	names := map[string]bool{}
	for i, n := range nets {
		if names[n.Name] {
			t.Fatalf("name %s twice", n.Name)
		}
		names[n.Name] = true
		if o, ok := vnis[n.VNI]; ok {
			t.Fatalf("VNI %d in %s and %s", n.VNI, o, n.Name)
		}
		vnis[n.VNI] = n.Name
		for _, m := range nets[i+1:] {
			if n.Subnet.Overlaps(m.Subnet) {
				t.Fatalf("%s %v overlaps %s %v", n.Name, n.Subnet, m.Name, m.Subnet)
			}
		}
		for _, x := range exclude {
			if n.Subnet.Overlaps(x) {
				t.Fatalf("%s %v overlaps excluded %v", n.Name, n.Subnet, x)
			}
		}
		gws := map[netip.Addr]string{}
		idx := map[int]string{}
		for h, sl := range n.Hosts {
			if !n.Range().Contains(sl.IPRange.Addr()) || sl.IPRange.Bits() < n.Range().Bits() || sl.IPRange.Bits() != n.SliceBits {
				t.Fatalf("%s/%s: slice %v outside range %v", n.Name, h, sl.IPRange, n.Range())
			}
			if !n.Subnet.Contains(sl.Gateway) {
				t.Fatalf("%s/%s: gateway %v outside subnet", n.Name, h, sl.Gateway)
			}
			if !sl.IPRange.Contains(sl.Gateway) && (sl.Gateway != n.Gateway || n.Range().Contains(sl.Gateway)) {
				t.Fatalf("%s/%s: gateway %v outside its slice %v", n.Name, h, sl.Gateway, sl.IPRange)
			}
			if o, ok := gws[sl.Gateway]; ok {
				t.Fatalf("%s: gateway %v of %s and %s", n.Name, sl.Gateway, o, h)
			}
			gws[sl.Gateway] = h
			if o, ok := idx[sl.Index]; ok {
				t.Fatalf("%s: slice %d of %s and %s", n.Name, sl.Index, o, h)
			}
			idx[sl.Index] = h
			for h2, sl2 := range n.Hosts {
				if h2 != h && sl.IPRange.Overlaps(sl2.IPRange) {
					t.Fatalf("%s: slices of %s %v and %s %v overlap", n.Name, h, sl.IPRange, h2, sl2.IPRange)
				}
				if h2 != h && sl2.IPRange.Contains(sl.Gateway) {
					t.Fatalf("%s: gateway of %s %v lies in %s's slice %v", n.Name, h, sl.Gateway, h2, sl2.IPRange)
				}
			}
		}
	}
}

// TestPropertyRandomOperations runs seeded random sequences of creates
// (pool and user subnets, gateways, ranges), joins, leaves and removes,
// over a small pool so that it fills, and checks the invariants after each
// step, and that a reload from the store sees the same networks.
func TestPropertyRandomOperations(t *testing.T) {
	exclude := []netip.Prefix{pfx("10.200.3.0/24"), pfx("10.200.8.0/22"), hostsSubnet}
	seeds := 25
	if testing.Short() {
		seeds = 5
	}
	// seen counts outcomes, to prove the sequences reach the edges.
	seen := map[string]int{}
	outcome := func(op string, err error) {
		switch {
		case err == nil:
			seen[op+" ok"]++
		case errors.Is(err, errdefs.ErrConflict):
			seen[op+" conflict"]++
		case errors.Is(err, errdefs.ErrInvalid):
			seen[op+" invalid"]++
		}
	}
	defer func() {
		t.Logf("outcomes: %v", seen)
		for _, k := range []string{"pool ok", "pool conflict", "user ok", "user conflict", "user invalid", "join ok", "join conflict"} {
			if seen[k] == 0 && !testing.Short() {
				t.Errorf("no %q in any sequence", k)
			}
		}
	}()
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 6))
			dir := t.TempDir()
			st, err := store.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := Config{Pool: pfx("10.200.0.0/20"), Slices: 1 << r.IntN(5)}
			a, err := New(cfg, st)
			if err != nil {
				t.Fatal(err)
			}
			hosts := []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"}
			for step := range 120 {
				nets := a.List()
				switch op := r.IntN(10); {
				case op < 4: // pool create
					_, err := a.Create(Spec{Name: fmt.Sprintf("p%d", step), Exclude: exclude})
					outcome("pool", err)
					if err != nil && !errors.Is(err, errdefs.ErrConflict) {
						t.Fatal(err)
					}
				case op < 5: // user create, maybe overlapping, maybe with range and gateway
					bitsN := 20 + r.IntN(10)
					base := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(r.IntN(16)), byte(r.IntN(256))}), bitsN).Masked()
					spec := Spec{Name: fmt.Sprintf("u%d", step), Subnet: base.String(), Exclude: exclude}
					if r.IntN(2) == 0 && bitsN < 28 {
						rb := bitsN + 1 + r.IntN(28-bitsN)
						off := uint32(r.IntN(1 << (rb - bitsN)))
						rng := netip.PrefixFrom(u32ToAddr(addrToU32(base.Addr())+off<<(32-rb)), rb)
						spec.IPRange = rng.String()
					}
					if r.IntN(2) == 0 {
						size := uint32(1) << (32 - bitsN)
						spec.Gateway = u32ToAddr(addrToU32(base.Addr()) + 1 + uint32(r.IntN(int(size-2)))).String()
					}
					if r.IntN(6) == 0 { // host bits set: invalid
						spec.Subnet = netip.PrefixFrom(base.Addr().Next(), bitsN).String()
					}
					_, err := a.Create(spec)
					outcome("user", err)
					if err != nil && !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrInvalid) {
						t.Fatal(err)
					}
				case op < 8 && len(nets) > 0: // join
					n := nets[r.IntN(len(nets))]
					_, err := a.Join(n.ID, hosts[r.IntN(len(hosts))])
					outcome("join", err)
					if err != nil && !errors.Is(err, errdefs.ErrConflict) {
						t.Fatal(err)
					}
				case op < 9 && len(nets) > 0: // leave
					n := nets[r.IntN(len(nets))]
					if err := a.Leave(n.ID, hosts[r.IntN(len(hosts))]); err != nil {
						t.Fatal(err)
					}
				case len(nets) > 0: // remove
					if _, err := a.Remove(nets[r.IntN(len(nets))].ID); err != nil {
						t.Fatal(err)
					}
				}
				checkInvariants(t, a.List(), exclude)
			}
			b, err := New(cfg, st)
			if err != nil {
				t.Fatal(err)
			}
			x, y := a.List(), b.List()
			for i := range x {
				x[i].Created = y[i].Created
			}
			if !reflect.DeepEqual(x, y) {
				t.Fatalf("reloaded state differs")
			}
		})
	}
}

// Concurrent creates and joins never hand out the same subnet, VNI or
// slice (run with -race).
func TestConcurrentCreateAndJoin(t *testing.T) {
	a := newAlloc(t, Config{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			n, err := a.Create(Spec{Name: fmt.Sprint("n", i)})
			if err != nil {
				t.Error(err)
				return
			}
			for h := range 4 {
				if _, err := a.Join(n.ID, fmt.Sprint("h", h)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	nets := a.List()
	if len(nets) != 16 {
		t.Fatalf("%d networks", len(nets))
	}
	checkInvariants(t, nets, nil)
}
