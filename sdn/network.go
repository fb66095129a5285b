package sdn

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn/vxlan"
)

// Data-plane defaults shared by the manager and the agents.
const (
	// VXLANPort is the UDP port of the overlay (IANA's VXLAN port).
	VXLANPort = vxlan.DefaultPort
	// MTU of the VXLAN devices and of the engines' bridge networks: 1500 of
	// the underlay less the 50 bytes of VXLAN encapsulation.
	MTU = vxlan.DefaultMTU
	// DefaultProvider is the provider of networks that name none.
	DefaultProvider = "vxlan"
)

// Labels and options Clocker sets on the engines' bridge networks.
const (
	// LabelNetworkID marks an engine network as a host's part of the fleet
	// network with this ID.
	LabelNetworkID = labels.NetworkID
	// OptionBridgeName is Docker's bridge driver option naming the bridge.
	OptionBridgeName = labels.OptionBridgeName
	// OptionMTU is Docker's driver option for the network's MTU.
	OptionMTU = labels.OptionMTU
	// OptionScope set to ScopeLocal asks for a network on one host, not a
	// fleet network.
	OptionScope = "clocker.scope"
	// ScopeLocal is the value of OptionScope for per-host networks.
	ScopeLocal = "local"
)

// Network is a fleet network as the manager records it: one subnet shared
// by every member host, one VNI, and per member host a slice of addresses
// with its own gateway.
type Network struct {
	// ID is 64 hex digits, as Docker's network IDs.
	ID string `json:"id"`
	// Name is unique in the fleet.
	Name string `json:"name"`
	// Driver is the driver the client asked for ("bridge" or "overlay"),
	// shown back in inspect.
	Driver string `json:"driver"`
	// Provider is the SDN provider that carries it ("vxlan").
	Provider string `json:"provider"`
	// VNI is the overlay's segment ID, unique in the fleet.
	VNI uint32 `json:"vni"`
	// Subnet is the same on every host.
	Subnet netip.Prefix `json:"subnet"`
	// UserSubnet tells that the user chose Subnet (--subnet); the fleet
	// chose it otherwise.
	UserSubnet bool `json:"userSubnet,omitempty"`
	// IPRange is the user's --ip-range; host slices are carved from it, or
	// from Subnet when it is not set.
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	// Gateway is the user's --gateway; it becomes the gateway of the slice
	// holding it (or of slice 0 when it lies outside every slice). Zero when
	// the fleet chose.
	Gateway netip.Addr `json:"gateway,omitzero"`
	// SliceBits is the prefix length of the host slices.
	SliceBits int `json:"sliceBits"`
	// EnableIPv6 is the user's --ipv6: the engines' copies hand out
	// addresses of Subnet6 too (a dual-stack network).
	EnableIPv6 bool `json:"enableIPv6,omitempty"`
	// Subnet6, IPRange6 and Gateway6 are the IPv6 counterparts of Subnet,
	// IPRange and Gateway (the user's; zero: none). Each host's slice has
	// a part of both ranges, at the same index, with SliceBits6 bits.
	Subnet6    netip.Prefix `json:"subnet6,omitzero"`
	IPRange6   netip.Prefix `json:"ipRange6,omitzero"`
	Gateway6   netip.Addr   `json:"gateway6,omitzero"`
	SliceBits6 int          `json:"sliceBits6,omitempty"`
	// Internal, Attachable, Labels and Options are the user's, passed to the
	// engines.
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// IPAMOptions are the create request's IPAM options as sent: nil when
	// it sent none (inspect shows null then, as an engine does).
	IPAMOptions map[string]string `json:"ipamOptions"`
	// Aux and Aux6 are the user's auxiliary addresses (--aux-address) of
	// Subnet and Subnet6: every member's engine reserves them.
	Aux  map[string]netip.Addr `json:"aux,omitempty"`
	Aux6 map[string]netip.Addr `json:"aux6,omitempty"`
	// Hosts holds the slice of each member host, by host name. A host
	// becomes a member when its first container joins.
	Hosts map[string]HostSlice `json:"hosts,omitempty"`
	// Created is when the manager allocated it.
	Created time.Time `json:"created"`
}

// HostSlice is one host's lease in a network: the addresses its engine
// hands to containers, and the gateway address its bridge holds (where the
// host's agent answers DNS).
type HostSlice struct {
	// Index of the slice in the network's range (0 is the first).
	Index int `json:"index"`
	// IPRange is passed to the host's engine as --ip-range.
	IPRange netip.Prefix `json:"ipRange"`
	// Gateway is inside IPRange (its first host address) unless the user's
	// --gateway took its place.
	Gateway netip.Addr `json:"gateway"`
	// IPRange6 and Gateway6 are the same for the network's IPv6 subnet
	// (zero when it has none).
	IPRange6 netip.Prefix `json:"ipRange6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
}

// Holds tells whether ip lies in the slice (either family).
func (s HostSlice) Holds(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is4() {
		return s.IPRange.Contains(ip)
	}
	return s.IPRange6.Contains(ip)
}

// Ranges are the slice's ranges, IPv4 first, as text (for messages).
func (s HostSlice) Ranges() string {
	if s.IPRange6.IsValid() {
		return s.IPRange.String() + " and " + s.IPRange6.String()
	}
	return s.IPRange.String()
}

// Range is the part of the subnet that host slices are carved from: the
// user's ip-range, or the whole subnet.
func (n *Network) Range() netip.Prefix {
	if n.IPRange.IsValid() {
		return n.IPRange
	}
	return n.Subnet
}

// Range6 is Range for the IPv6 subnet (invalid when there is none).
func (n *Network) Range6() netip.Prefix {
	if n.IPRange6.IsValid() {
		return n.IPRange6
	}
	return n.Subnet6
}

// Slots is how many host slices the network can hold: as many as both
// of its ranges can be split into.
func (n *Network) Slots() int {
	r := n.Range()
	if n.SliceBits < r.Bits() || n.SliceBits > 32 {
		return 0
	}
	slots := 1 << (n.SliceBits - r.Bits())
	if r6 := n.Range6(); r6.IsValid() {
		if n.SliceBits6 < r6.Bits() || n.SliceBits6 > 128 || n.SliceBits6-r6.Bits() > 30 {
			return 0
		}
		slots = min(slots, 1<<(n.SliceBits6-r6.Bits()))
	}
	return slots
}

// SubnetOf is the network's subnet of ip's family; false when it has
// none.
func (n *Network) SubnetOf(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return n.Subnet, n.Subnet.IsValid()
	case ip.Is6():
		return n.Subnet6, n.Subnet6.IsValid()
	}
	return netip.Prefix{}, false
}

// SliceIndex is the index of the slice that holds ip (whether a host has
// it or not); false when ip lies outside the slices' range.
func (n *Network) SliceIndex(ip netip.Addr) (int, bool) {
	ip = ip.Unmap()
	r, bits := n.Range(), n.SliceBits
	if ip.Is6() {
		r, bits = n.Range6(), n.SliceBits6
	}
	if !r.IsValid() || !r.Contains(ip) || bits < r.Bits() {
		return 0, false
	}
	// The index is the address's bits from r's length to the slices'.
	b := ip.AsSlice()
	idx := 0
	for i := r.Bits(); i < bits; i++ {
		idx = idx<<1 | int(b[i/8]>>(7-i%8)&1)
	}
	if idx >= n.Slots() {
		return 0, false
	}
	return idx, true
}

// shortID is the part of the ID device names carry (names are at most 15
// bytes on Linux).
func (n *Network) shortID() string {
	if len(n.ID) > 11 {
		return n.ID[:11]
	}
	return n.ID
}

// BridgeName is the name of the network's bridge on every member host.
func (n *Network) BridgeName() string { return "ckb-" + n.shortID() }

// DeviceName is the name of the network's VXLAN device on every member host.
func (n *Network) DeviceName() string { return DeviceName(n.ID) }

// DeviceName is the VXLAN device name of the network with this ID.
func DeviceName(networkID string) string {
	if len(networkID) > 11 {
		networkID = networkID[:11]
	}
	return "ckv-" + networkID
}

// Members lists the member hosts in name order.
func (n *Network) Members() []string {
	return slices.Sorted(maps.Keys(n.Hosts))
}

// HostNetwork is what one host's agent must make true for one network.
type HostNetwork struct {
	// NetworkID is the fleet network's ID.
	NetworkID string `json:"networkId"`
	// Name is the fleet network's name (for logs).
	Name string `json:"name"`
	// Provider is the SDN provider to apply it with.
	Provider string `json:"provider"`
	// VNI is the overlay segment.
	VNI uint32 `json:"vni"`
	// Bridge is the engine's bridge on this host the overlay joins.
	Bridge string `json:"bridge"`
	// Device is the name of the VXLAN device.
	Device string `json:"device"`
	// Local is this host's underlay address (the VXLAN source address).
	Local netip.Addr `json:"local"`
	// Peers are the underlay addresses of the other member hosts.
	Peers []netip.Addr `json:"peers"`
	// MTU of the device.
	MTU int `json:"mtu"`
	// Subnet of the network, and this host's Gateway in it: the address its
	// bridge holds and its DNS server listens on.
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Subnet6 and Gateway6 are the same for a network with an IPv6 subnet
	// (the overlay carries both: it is a layer 2 segment).
	Subnet6  netip.Prefix `json:"subnet6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
}

// HostNetwork is the part of n that host's agent applies. underlay maps
// host names to their underlay addresses (the address each engine's host
// has on the network between hosts); every member needs one.
func (n *Network) HostNetwork(host string, underlay map[string]netip.Addr) (HostNetwork, error) {
	sl, ok := n.Hosts[host]
	if !ok {
		return HostNetwork{}, errdefs.New(errdefs.ErrNotFound,
			fmt.Sprintf("host %s is not a member of network %s", host, n.Name))
	}
	local, ok := underlay[host]
	if !ok || !local.IsValid() {
		return HostNetwork{}, fmt.Errorf("network %s: no underlay address for host %s: %w", n.Name, host, errdefs.ErrUnavailable)
	}
	hn := HostNetwork{
		NetworkID: n.ID,
		Name:      n.Name,
		Provider:  n.Provider,
		VNI:       n.VNI,
		Bridge:    n.BridgeName(),
		Device:    n.DeviceName(),
		Local:     local,
		MTU:       MTU,
		Subnet:    n.Subnet,
		Gateway:   sl.Gateway,
		Subnet6:   n.Subnet6,
		Gateway6:  sl.Gateway6,
	}
	for _, m := range n.Members() {
		if m == host {
			continue
		}
		a, ok := underlay[m]
		if !ok || !a.IsValid() {
			return HostNetwork{}, fmt.Errorf("network %s: no underlay address for host %s: %w", n.Name, m, errdefs.ErrUnavailable)
		}
		hn.Peers = append(hn.Peers, a)
	}
	slices.SortFunc(hn.Peers, netip.Addr.Compare)
	hn.Peers = slices.Compact(hn.Peers)
	return hn, nil
}

// EngineNetwork is the bridge network to create on one member host's
// engine so that its containers get addresses from that host's slice.
type EngineNetwork struct {
	Name    string
	Driver  string // always "bridge"
	Subnet  netip.Prefix
	IPRange netip.Prefix
	Gateway netip.Addr
	// EnableIPv6, Subnet6, IPRange6 and Gateway6: the IPv6 part (a second
	// IPAM config), zero when the network has none.
	EnableIPv6 bool
	Subnet6    netip.Prefix
	IPRange6   netip.Prefix
	Gateway6   netip.Addr
	Internal   bool
	Attachable bool
	// Aux and Aux6 are the network's auxiliary addresses, less the
	// host's own gateways (which its engine holds anyway).
	Aux, Aux6 map[string]netip.Addr
	// Options are the user's driver options with the bridge name and MTU
	// set; Clocker's own (clocker.*) are left out.
	Options map[string]string
	// Labels are the user's, plus LabelNetworkID.
	Labels map[string]string
}

// Engine is the bridge network host's engine must hold for n.
func (n *Network) Engine(host string) (EngineNetwork, error) {
	sl, ok := n.Hosts[host]
	if !ok {
		return EngineNetwork{}, errdefs.New(errdefs.ErrNotFound,
			fmt.Sprintf("host %s is not a member of network %s", host, n.Name))
	}
	e := EngineNetwork{
		Name:       n.Name,
		Driver:     "bridge",
		Subnet:     n.Subnet,
		IPRange:    sl.IPRange,
		Gateway:    sl.Gateway,
		EnableIPv6: n.EnableIPv6,
		Subnet6:    n.Subnet6,
		IPRange6:   sl.IPRange6,
		Gateway6:   sl.Gateway6,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		Options:    map[string]string{},
		Labels:     map[string]string{},
	}
	for k, v := range n.Options {
		if !strings.HasPrefix(k, "clocker.") {
			e.Options[k] = v
		}
	}
	e.Options[OptionBridgeName] = n.BridgeName()
	e.Options[OptionMTU] = strconv.Itoa(MTU)
	e.Aux = auxBut(n.Aux, sl.Gateway)
	e.Aux6 = auxBut(n.Aux6, sl.Gateway6)
	maps.Copy(e.Labels, n.Labels)
	e.Labels[LabelNetworkID] = n.ID
	return e, nil
}

// auxBut is aux without the entries at gw (nil when none is left).
func auxBut(aux map[string]netip.Addr, gw netip.Addr) map[string]netip.Addr {
	var out map[string]netip.Addr
	for k, a := range aux {
		if a == gw {
			continue
		}
		if out == nil {
			out = map[string]netip.Addr{}
		}
		out[k] = a
	}
	return out
}

// PerHostNetwork tells whether a network mode names a network every
// engine has of its own ("bridge", "host", "none", the default): never a
// fleet network, never a reason to tie a container to a host.
func PerHostNetwork(mode string) bool {
	switch mode {
	case "", "default", "bridge", "host", "none":
		return true
	}
	return false
}
