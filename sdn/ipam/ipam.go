// Package ipam allocates fleet networks: a subnet from the fleet pool (or
// the user's, validated), a VNI, and per member host a slice of addresses
// with its own gateway. Allocations are kept in the state store (bucket
// "networks" of internal/store, one JSON record per network keyed by ID)
// and loaded again when the manager starts. Several managers sharing etcd
// (Share) decide every change on a snapshot of all networks and make it
// in a transaction that fails if another manager changed any meanwhile.
//
//	pool 10.200.0.0/16 ──carved into /24s──▶ 10.200.0.0/24, 10.200.1.0/24, …
//	                                          (clear of Exclude and of each other)
//	network 10.200.3.0/24 ──split into Slices──▶ h1 10.200.3.0/27  gw .1
//	                                             h2 10.200.3.32/27 gw .33
//	                                             …  (lowest free slice on Join)
//
// Errors carry Docker's wording and an errdefs kind: ErrInvalid for bad
// CIDRs and addresses, ErrConflict for overlaps, duplicate names and an
// exhausted pool, ErrNotFound for unknown networks.
package ipam

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/sdn"
)

// Defaults of Config.
var (
	DefaultPool = netip.MustParsePrefix("10.200.0.0/16")
)

// Defaults of Config.
const (
	DefaultSubnetBits = 24
	DefaultSlices     = 8
	DefaultVNIFirst   = 10000
	DefaultVNILast    = 1<<24 - 1
	// MaxSliceBits is the smallest host slice (/29: a gateway and five
	// container addresses).
	MaxSliceBits = 29
	// MaxSliceBits6 is the smallest IPv6 host slice (/125, as /29).
	MaxSliceBits6 = 125
)

// Config is the fleet's address plan. Zero fields take the defaults.
type Config struct {
	// Pool is where fleet networks get their subnets when the user gives
	// none (--network-pool). Default 10.200.0.0/16.
	Pool netip.Prefix
	// SubnetBits is the prefix length of the subnets carved from Pool.
	// Default 24.
	SubnetBits int
	// Slices is how many host slices a network is split into, rounded up
	// to a power of two: the most hosts one network can span. Default 8
	// (a /24 gives each host a /27: its gateway and 29 containers). A
	// slice is never smaller than /29, so small subnets get fewer.
	Slices int
	// VNIFirst and VNILast bound the VXLAN segment IDs. Default 10000 …
	// 16777215.
	VNIFirst, VNILast uint32
}

func (c Config) withDefaults() (Config, error) {
	if !c.Pool.IsValid() {
		c.Pool = DefaultPool
	}
	if c.SubnetBits == 0 {
		c.SubnetBits = DefaultSubnetBits
	}
	if c.Slices == 0 {
		c.Slices = DefaultSlices
	}
	if c.VNIFirst == 0 {
		c.VNIFirst = DefaultVNIFirst
	}
	if c.VNILast == 0 {
		c.VNILast = DefaultVNILast
	}
	switch {
	case !c.Pool.Addr().Is4():
		return c, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network pool %s: only IPv4 pools are supported", c.Pool))
	case c.Pool.Masked() != c.Pool:
		return c, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid network pool %s: it should be %s", c.Pool, c.Pool.Masked()))
	case c.SubnetBits < c.Pool.Bits() || c.SubnetBits > MaxSliceBits:
		return c, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network pool %s: subnet size /%d must be between /%d and /%d",
			c.Pool, c.SubnetBits, c.Pool.Bits(), MaxSliceBits))
	case c.Slices < 1 || c.Slices > 1<<16:
		return c, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("host slices per network: %d", c.Slices))
	case c.VNIFirst > c.VNILast || c.VNILast >= 1<<24:
		return c, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("VNI range %d…%d", c.VNIFirst, c.VNILast))
	}
	return c, nil
}

// sliceBits is the prefix length of host slices for a range of r bits.
func (c Config) sliceBits(r int) int {
	shift := bits.Len(uint(c.Slices - 1)) // log2, rounded up
	return max(r, min(r+shift, MaxSliceBits))
}

// Spec is a request for a fleet network, as `docker network create` sends
// it.
type Spec struct {
	// Name must be unique in the fleet.
	Name string
	// Driver the client asked for ("bridge" or "overlay"); default "bridge".
	Driver string
	// Provider is the SDN provider; default sdn.DefaultProvider.
	Provider string
	// Subnet, IPRange and Gateway are the user's --subnet, --ip-range and
	// --gateway as typed; empty means the fleet chooses.
	Subnet, IPRange, Gateway string
	// Subnet6, IPRange6 and Gateway6 are the user's IPv6 --subnet,
	// --ip-range and --gateway (empty: no IPv6 subnet). EnableIPv6 is
	// --ipv6, which needs Subnet6: the fleet has no IPv6 pool, as an
	// engine of API 1.41 has none.
	Subnet6, IPRange6, Gateway6 string
	EnableIPv6                  bool
	// Aux and Aux6 are the user's --aux-address of each family (name to
	// address, as typed), addresses no container gets.
	Aux, Aux6 map[string]string
	// IPAMOptions are the request's IPAM options, kept as sent (nil: none
	// sent, which inspect shows as null).
	IPAMOptions map[string]string
	// Internal, Attachable, Labels and Options are kept and passed to the
	// engines.
	Internal, Attachable bool
	Labels, Options      map[string]string
	// Exclude are subnets the network must stay clear of: the engines' own
	// address pools and networks, the hosts' own subnet. Other fleet
	// networks are excluded without being listed.
	Exclude []netip.Prefix
}

// Store is what the allocator needs of internal/store.
type Store interface {
	Put(bucket []byte, key string, v any) error
	Delete(bucket []byte, key string) error
	ForEach(bucket []byte, fn func(key string, value []byte) error) error
}

// Shared is a store several managers allocate from (store.Etcd): every
// change is decided on a snapshot of all the fleet's networks and made
// only if no manager changed any since.
type Shared interface {
	Snapshot(bucket []byte) (store.Snapshot, error)
	Swap(bucket []byte, snap store.Snapshot, key string, v any) error
}

// maxSwaps bounds how often one change is decided again because another
// manager changed the networks in between.
const maxSwaps = 50

// Allocator hands out fleet networks. It is safe for concurrent use; every
// change is written to the store before it is visible.
type Allocator struct {
	cfg    Config
	store  Store  // nil: memory only
	shared Shared // nil: this manager alone allocates
	now    func() time.Time

	mu   sync.Mutex
	nets map[string]*sdn.Network // by ID
}

// New returns an allocator over cfg that keeps its networks in st (nil
// keeps them in memory only) and loads those st already holds.
func New(cfg Config, st Store) (*Allocator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Allocator{cfg: cfg, store: st, now: time.Now, nets: map[string]*sdn.Network{}}
	if st == nil {
		return a, nil
	}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Share makes every change of the allocator a transaction in sh, which
// the other managers of the fleet share: two managers never hand out one
// subnet, VNI or host slice. Call Reload when sh says the networks
// changed (store.Etcd.Watch), so reads follow the other managers.
func (a *Allocator) Share(sh Shared) {
	a.mu.Lock()
	a.shared = sh
	a.mu.Unlock()
}

// Reload reads the networks from the store again: the other managers'
// changes become this one's view.
func (a *Allocator) Reload() error {
	if a.store == nil {
		return nil
	}
	nets := map[string]*sdn.Network{}
	err := a.store.ForEach(store.BucketNetworks, func(key string, value []byte) error {
		return decodeInto(nets, key, value)
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.nets = nets
	a.mu.Unlock()
	return nil
}

func decodeInto(nets map[string]*sdn.Network, key string, value []byte) error {
	var n sdn.Network
	if err := json.Unmarshal(value, &n); err != nil {
		return fmt.Errorf("network record %s: %w", key, err)
	}
	nets[n.ID] = &n
	return nil
}

// change decides a change with decide and records it: the network next
// under its ID, or the removal of id (next nil); id "" changes nothing.
// Shared, it decides on a fresh snapshot of every manager's networks and
// decides again when another manager changed them before the record was
// made. The caller holds a.mu.
func (a *Allocator) change(decide func() (id string, next *sdn.Network, err error)) error {
	for try := 1; ; try++ {
		var snap store.Snapshot
		if a.shared != nil {
			var err error
			if snap, err = a.shared.Snapshot(store.BucketNetworks); err != nil {
				return fmt.Errorf("fleet networks: %w", err)
			}
			nets := make(map[string]*sdn.Network, len(snap.Values))
			for k, v := range snap.Values {
				if err := decodeInto(nets, k, v); err != nil {
					return err
				}
			}
			a.nets = nets
		}
		id, next, err := decide()
		if err != nil || id == "" {
			return err
		}
		var v any
		if next != nil {
			v = next
		}
		switch {
		case a.shared != nil:
			err = a.shared.Swap(store.BucketNetworks, snap, id, v)
			if errors.Is(err, errdefs.ErrConflict) && try < maxSwaps {
				continue
			}
		case a.store != nil && next == nil:
			err = a.store.Delete(store.BucketNetworks, id)
		case a.store != nil:
			err = a.store.Put(store.BucketNetworks, id, next)
		}
		if err != nil {
			name := id
			if n, ok := a.nets[id]; ok {
				name = n.Name
			} else if next != nil {
				name = next.Name
			}
			return fmt.Errorf("network %s: %w", name, err)
		}
		if next == nil {
			delete(a.nets, id)
		} else {
			a.nets[id] = next
		}
		return nil
	}
}

// Config is the allocator's plan with defaults filled in.
func (a *Allocator) Config() Config { return a.cfg }

// Create allocates a network for spec and records it. Nothing is recorded
// when it fails.
func (a *Allocator) Create(spec Spec) (sdn.Network, error) {
	if spec.Name == "" {
		return sdn.Network{}, errdefs.New(errdefs.ErrInvalid, "network name is required")
	}
	user, err := parseUser(spec.Subnet, spec.IPRange, spec.Gateway, spec.Aux, false)
	if err != nil {
		return sdn.Network{}, err
	}
	user6, err := parseUser(spec.Subnet6, spec.IPRange6, spec.Gateway6, spec.Aux6, true)
	if err != nil {
		return sdn.Network{}, err
	}
	if spec.EnableIPv6 && !user6.subnet.IsValid() {
		// What an engine of API 1.41 answers (a 404, as it does).
		return sdn.Network{}, errdefs.New(errdefs.ErrNotFound,
			"could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network")
	}
	for _, x := range spec.Exclude {
		if !x.IsValid() {
			return sdn.Network{}, fmt.Errorf("excluded subnet %v: %w", x, errdefs.ErrInvalid)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var made *sdn.Network
	err = a.change(func() (string, *sdn.Network, error) {
		n, err := a.decideCreate(spec, user, user6)
		made = n
		if err != nil {
			return "", nil, err
		}
		return n.ID, n, nil
	})
	if err != nil {
		return sdn.Network{}, err
	}
	return clone(made), nil
}

// decideCreate is the network spec asks for among a.nets; a.mu is held.
func (a *Allocator) decideCreate(spec Spec, user, user6 userAddrs) (*sdn.Network, error) {
	for _, n := range a.nets {
		if n.Name == spec.Name {
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", spec.Name))
		}
	}
	taken := slices.Clone(spec.Exclude)
	for _, n := range a.nets {
		taken = append(taken, n.Subnet)
		if n.Subnet6.IsValid() {
			taken = append(taken, n.Subnet6)
		}
	}

	n := &sdn.Network{
		ID:          newID(),
		Name:        spec.Name,
		Driver:      orDefault(spec.Driver, "bridge"),
		Provider:    orDefault(spec.Provider, sdn.DefaultProvider),
		IPRange:     user.ipRange,
		Gateway:     user.gateway,
		EnableIPv6:  spec.EnableIPv6,
		Subnet6:     user6.subnet,
		IPRange6:    user6.ipRange,
		Gateway6:    user6.gateway,
		Internal:    spec.Internal,
		Attachable:  spec.Attachable,
		Labels:      maps.Clone(spec.Labels),
		Options:     maps.Clone(spec.Options),
		IPAMOptions: maps.Clone(spec.IPAMOptions),
		Aux:         user.aux,
		Aux6:        user6.aux,
		Hosts:       map[string]sdn.HostSlice{},
		Created:     a.now().UTC(),
	}
	if user.subnet.IsValid() {
		if overlaps(user.subnet, taken) {
			return nil, errdefs.New(errdefs.ErrConflict, "invalid pool request: Pool overlaps with other one on this address space")
		}
		n.Subnet, n.UserSubnet = user.subnet, true
	} else {
		s, ok := a.freeSubnet(taken)
		if !ok {
			return nil, errdefs.New(errdefs.ErrConflict,
				"could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
		}
		n.Subnet = s
	}
	if user6.subnet.IsValid() && overlaps(user6.subnet, taken) {
		return nil, errdefs.New(errdefs.ErrConflict, "invalid pool request: Pool overlaps with other one on this address space")
	}
	n.SliceBits = a.cfg.sliceBits(n.Range().Bits())
	if r6 := n.Range6(); r6.IsValid() {
		// As many IPv6 slices as IPv4 ones, unless the IPv6 range is too
		// small for that (then the smaller count is the network's).
		n.SliceBits6 = min(r6.Bits()+n.SliceBits-n.Range().Bits(), MaxSliceBits6)
	}
	vni, ok := a.freeVNI()
	if !ok {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("no free VNI left in %d…%d", a.cfg.VNIFirst, a.cfg.VNILast))
	}
	n.VNI = vni
	return n, nil
}

// Get finds a network by full ID, name, or unambiguous ID prefix, as
// Docker does.
func (a *Allocator) Get(ref string) (sdn.Network, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, err := a.find(ref)
	if err != nil {
		return sdn.Network{}, err
	}
	return clone(n), nil
}

// Has tells whether id is the full ID of one of the fleet's networks.
func (a *Allocator) Has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.nets[id]
	return ok
}

// List returns every network, in name order.
func (a *Allocator) List() []sdn.Network {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]sdn.Network, 0, len(a.nets))
	for _, n := range a.nets {
		out = append(out, clone(n))
	}
	slices.SortFunc(out, func(x, y sdn.Network) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// Remove forgets a network and frees its subnet, slices and VNI. Whether
// it is still in use is the caller's to check first.
func (a *Allocator) Remove(ref string) (sdn.Network, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone sdn.Network
	err := a.change(func() (string, *sdn.Network, error) {
		n, err := a.find(ref)
		if err != nil {
			return "", nil, err
		}
		gone = clone(n)
		return n.ID, nil, nil
	})
	if err != nil {
		return sdn.Network{}, err
	}
	return gone, nil
}

// Join makes host a member of the network and returns its slice: the one
// it has, or the lowest free one. A network whose slices are all taken is
// a conflict (its members can still take containers).
func (a *Allocator) Join(ref, host string) (sdn.HostSlice, error) {
	if host == "" {
		return sdn.HostSlice{}, errdefs.New(errdefs.ErrInvalid, "host name is required")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var sl sdn.HostSlice
	err := a.change(func() (string, *sdn.Network, error) {
		n, err := a.find(ref)
		if err != nil {
			return "", nil, err
		}
		var ok bool
		if sl, ok = n.Hosts[host]; ok {
			return "", nil, nil
		}
		idx, ok := freeSlot(n)
		if !ok {
			return "", nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
				"network %s spans %d hosts already, as many as its %s range allows: host %s cannot join",
				n.Name, len(n.Hosts), n.Range(), host))
		}
		sl = slice(n, idx)
		next := clone(n)
		next.Hosts[host] = sl
		return n.ID, &next, nil
	})
	if err != nil {
		return sdn.HostSlice{}, err
	}
	return sl, nil
}

// NextSlice is the slice the next host to join the network gets (the
// lowest free one); false when every slice is taken.
func (a *Allocator) NextSlice(ref string) (sdn.HostSlice, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, err := a.find(ref)
	if err != nil {
		return sdn.HostSlice{}, false
	}
	idx, ok := freeSlot(n)
	if !ok {
		return sdn.HostSlice{}, false
	}
	return slice(n, idx), true
}

// freeSlot is the index of n's lowest free slice.
func freeSlot(n *sdn.Network) (int, bool) {
	used := make(map[int]bool, len(n.Hosts))
	for _, sl := range n.Hosts {
		used[sl.Index] = true
	}
	for i := range n.Slots() {
		if !used[i] {
			return i, true
		}
	}
	return 0, false
}

// Leave frees host's slice in the network; leaving a network one is not a
// member of is not an error.
func (a *Allocator) Leave(ref, host string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.change(func() (string, *sdn.Network, error) {
		n, err := a.find(ref)
		if err != nil {
			return "", nil, err
		}
		if _, ok := n.Hosts[host]; !ok {
			return "", nil, nil
		}
		next := clone(n)
		delete(next.Hosts, host)
		return n.ID, &next, nil
	})
}

// slice is the idx-th host slice of n, with its gateway.
func slice(n *sdn.Network, idx int) sdn.HostSlice {
	r := n.Range()
	size := uint32(1) << (32 - n.SliceBits)
	base := addrToU32(r.Addr()) + uint32(idx)*size
	p := netip.PrefixFrom(u32ToAddr(base), n.SliceBits)
	sl := sdn.HostSlice{Index: idx, IPRange: p, Gateway: gateway(p, n.Gateway, r, idx)}
	if r6 := n.Range6(); r6.IsValid() {
		hi, lo := u128(r6.Addr())
		shift := uint(128 - n.SliceBits6)
		off := uint64(idx)
		if shift >= 64 {
			hi += off << (shift - 64)
		} else {
			add := off << shift
			hi += off >> (64 - shift)
			lo += add
			if lo < add {
				hi++
			}
		}
		sl.IPRange6 = netip.PrefixFrom(addr128(hi, lo), n.SliceBits6)
		sl.Gateway6 = gateway(sl.IPRange6, n.Gateway6, r6, idx)
	}
	return sl
}

// gateway is the gateway of slice p (index idx) of range r: its first
// host address, unless the user's gateway g lies in it (or, for the
// first slice, outside every slice).
func gateway(p netip.Prefix, g netip.Addr, r netip.Prefix, idx int) netip.Addr {
	if g.IsValid() && (p.Contains(g) || (idx == 0 && !r.Contains(g))) {
		return g
	}
	return p.Addr().Next()
}

func u128(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	for i := range 8 {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return hi, lo
}

func addr128(hi, lo uint64) netip.Addr {
	var b [16]byte
	for i := range 8 {
		b[7-i] = byte(hi >> (8 * i))
		b[15-i] = byte(lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func (a *Allocator) find(ref string) (*sdn.Network, error) {
	if ref == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "network name or ID is required")
	}
	if n, ok := a.nets[ref]; ok {
		return n, nil
	}
	for _, n := range a.nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var hits []*sdn.Network
	for _, n := range a.nets {
		if strings.HasPrefix(n.ID, ref) {
			hits = append(hits, n)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", ref))
	}
	return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(hits)))
}

// freeSubnet is the first SubnetBits subnet of the pool clear of taken.
func (a *Allocator) freeSubnet(taken []netip.Prefix) (netip.Prefix, bool) {
	pool := a.cfg.Pool
	size := uint64(1) << (32 - a.cfg.SubnetBits)
	first := uint64(addrToU32(pool.Addr()))
	last := first + uint64(1)<<(32-pool.Bits())
	for base := first; base < last; base += size {
		p := netip.PrefixFrom(u32ToAddr(uint32(base)), a.cfg.SubnetBits)
		if !overlaps(p, taken) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (a *Allocator) freeVNI() (uint32, bool) {
	used := make(map[uint32]bool, len(a.nets))
	for _, n := range a.nets {
		used[n.VNI] = true
	}
	for v := a.cfg.VNIFirst; v <= a.cfg.VNILast; v++ {
		if !used[v] {
			return v, true
		}
	}
	return 0, false
}

// userAddrs are the user's --subnet, --ip-range and --gateway, parsed.
type userAddrs struct {
	subnet, ipRange netip.Prefix
	gateway         netip.Addr
	aux             map[string]netip.Addr
}

// parseUser reads one family's --subnet, --ip-range, --gateway and
// --aux-address (v6: the IPv6 ones).
func parseUser(subnet, ipRange, gateway string, aux map[string]string, v6 bool) (userAddrs, error) {
	var u userAddrs
	if subnet == "" {
		if ipRange != "" || gateway != "" {
			return u, errdefs.New(errdefs.ErrInvalid, "every ip-range or gateway must have a corresponding subnet")
		}
		if len(aux) > 0 {
			return u, errdefs.New(errdefs.ErrInvalid, "every aux-address must have a corresponding subnet")
		}
		return u, nil
	}
	maxBits := MaxSliceBits
	if v6 {
		maxBits = MaxSliceBits6
	}
	var err error
	if u.subnet, err = parseCIDR("subnet", subnet, v6); err != nil {
		return u, err
	}
	if u.subnet.Bits() > maxBits {
		return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("subnet %s is too small for a fleet network (/%d at most)", u.subnet, maxBits))
	}
	if ipRange != "" {
		if u.ipRange, err = parseCIDR("ip-range", ipRange, v6); err != nil {
			return u, err
		}
		if !u.subnet.Contains(u.ipRange.Addr()) || u.ipRange.Bits() < u.subnet.Bits() {
			return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("no matching subnet for range %s", ipRange))
		}
		if u.ipRange.Bits() > maxBits {
			return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ip-range %s is too small for a fleet network (/%d at most)", u.ipRange, maxBits))
		}
	}
	if gateway != "" {
		if u.gateway, err = netip.ParseAddr(gateway); err != nil || u.gateway.Zone() != "" {
			return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid gateway address: %s", gateway))
		}
		if !u.subnet.Contains(u.gateway) {
			return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("no matching subnet for gateway %s", gateway))
		}
		if u.gateway == u.subnet.Addr() || !v6 && u.gateway == lastAddr(u.subnet) {
			return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("gateway %s is the network or broadcast address of %s", gateway, u.subnet))
		}
	}
	for k, v := range aux {
		// The engine's words for both refusals.
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("non parsable secondary ip address (%s:%s) passed for network", k, v))
		}
		if !u.subnet.Contains(a) {
			return u, errdefs.New(errdefs.ErrForbidden, fmt.Sprintf("auxiliary address: (%s:%s) must belong to the master pool: %s", k, v, u.subnet))
		}
		if u.aux == nil {
			u.aux = map[string]netip.Addr{}
		}
		u.aux[k] = a
	}
	return u, nil
}

// parseCIDR reads a CIDR of one family (v6: IPv6, else IPv4).
func parseCIDR(what, s string, v6 bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid CIDR address: %s", s))
	}
	if p.Addr().Is4() == v6 || p.Addr().Is4In6() {
		return p, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid %s %s: not an IPv%s CIDR", what, s, map[bool]string{false: "4", true: "6"}[v6]))
	}
	if p.Masked() != p {
		return p, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid %s %s: it should be %s", what, s, p.Masked()))
	}
	return p, nil
}

func overlaps(p netip.Prefix, taken []netip.Prefix) bool {
	for _, t := range taken {
		if p.Overlaps(t) {
			return true
		}
	}
	return false
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func lastAddr(p netip.Prefix) netip.Addr {
	return u32ToAddr(addrToU32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

// clone copies n deep enough that callers cannot reach the allocator's maps.
func clone(n *sdn.Network) sdn.Network {
	c := *n
	c.Labels = maps.Clone(n.Labels)
	c.Options = maps.Clone(n.Options)
	c.IPAMOptions = maps.Clone(n.IPAMOptions)
	c.Aux = maps.Clone(n.Aux)
	c.Aux6 = maps.Clone(n.Aux6)
	c.Hosts = maps.Clone(n.Hosts)
	if c.Hosts == nil {
		c.Hosts = map[string]sdn.HostSlice{}
	}
	return c
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newID is 64 random hex digits, as Docker's network IDs.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
