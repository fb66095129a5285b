package sdn

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

func testNetwork() Network {
	return Network{
		ID:        strings.Repeat("ab", 32),
		Name:      "app",
		Driver:    "bridge",
		Provider:  "vxlan",
		VNI:       10001,
		Subnet:    netip.MustParsePrefix("10.200.0.0/24"),
		SliceBits: 26,
		Internal:  true,
		Labels:    map[string]string{"team": "x"},
		Options:   map[string]string{"com.docker.network.bridge.enable_icc": "true", OptionScope: "fleet"},
		Hosts: map[string]HostSlice{
			"h1": {Index: 0, IPRange: netip.MustParsePrefix("10.200.0.0/26"), Gateway: netip.MustParseAddr("10.200.0.1")},
			"h2": {Index: 1, IPRange: netip.MustParsePrefix("10.200.0.64/26"), Gateway: netip.MustParseAddr("10.200.0.65")},
			"h3": {Index: 2, IPRange: netip.MustParsePrefix("10.200.0.128/26"), Gateway: netip.MustParseAddr("10.200.0.129")},
		},
	}
}

var underlay = map[string]netip.Addr{
	"h1": netip.MustParseAddr("10.213.0.1"),
	"h2": netip.MustParseAddr("10.213.0.2"),
	"h3": netip.MustParseAddr("10.213.0.3"),
}

func TestNames(t *testing.T) {
	n := testNetwork()
	if b, d := n.BridgeName(), n.DeviceName(); b != "ckb-abababababa" || d != "ckv-abababababa" || len(b) > 15 {
		t.Fatalf("bridge %q device %q", b, d)
	}
	if n.Slots() != 4 || !slices.Equal(n.Members(), []string{"h1", "h2", "h3"}) {
		t.Fatalf("slots %d members %v", n.Slots(), n.Members())
	}
}

func TestHostNetwork(t *testing.T) {
	n := testNetwork()
	hn, err := n.HostNetwork("h2", underlay)
	if err != nil {
		t.Fatal(err)
	}
	want := HostNetwork{
		NetworkID: n.ID, Name: "app", Provider: "vxlan", VNI: 10001,
		Bridge: "ckb-abababababa", Device: "ckv-abababababa",
		Local: underlay["h2"], Peers: []netip.Addr{underlay["h1"], underlay["h3"]},
		MTU: 1450, Subnet: n.Subnet, Gateway: netip.MustParseAddr("10.200.0.65"),
	}
	if hn.NetworkID != want.NetworkID || hn.VNI != want.VNI || hn.Bridge != want.Bridge || hn.Device != want.Device ||
		hn.Local != want.Local || !slices.Equal(hn.Peers, want.Peers) || hn.MTU != want.MTU || hn.Gateway != want.Gateway {
		t.Fatalf("got %+v\nwant %+v", hn, want)
	}
	if _, err := n.HostNetwork("h9", underlay); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("non-member: %v", err)
	}
	if _, err := n.HostNetwork("h1", map[string]netip.Addr{"h1": underlay["h1"]}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("peer without address: %v", err)
	}
}

func TestEngine(t *testing.T) {
	n := testNetwork()
	e, err := n.Engine("h3")
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "app" || e.Driver != "bridge" || e.Subnet != n.Subnet || e.IPRange != n.Hosts["h3"].IPRange ||
		e.Gateway != netip.MustParseAddr("10.200.0.129") || !e.Internal {
		t.Fatalf("engine network %+v", e)
	}
	if e.Options[OptionBridgeName] != "ckb-abababababa" || e.Options[OptionMTU] != "1450" ||
		e.Options["com.docker.network.bridge.enable_icc"] != "true" {
		t.Fatalf("options %v", e.Options)
	}
	if _, ok := e.Options[OptionScope]; ok {
		t.Fatal("clocker.* option passed to the engine")
	}
	if e.Labels["team"] != "x" || e.Labels[LabelNetworkID] != n.ID {
		t.Fatalf("labels %v", e.Labels)
	}
	e.Labels["team"] = "changed"
	if n.Labels["team"] != "x" {
		t.Fatal("Engine shares the network's label map")
	}
	if _, err := n.Engine("h9"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("non-member: %v", err)
	}
}

// A dual-stack network: each host's engine gets both slices, its agent
// both subnets; an address of either family finds its slice's index.
func TestDualStack(t *testing.T) {
	n := testNetwork() // a /24 in /26s: 4 slots
	n.EnableIPv6 = true
	n.Subnet6 = netip.MustParsePrefix("fd00:1::/64")
	n.SliceBits6 = 66
	for host, idx := range map[string]string{"h1": "0", "h2": "4", "h3": "8"} {
		sl := n.Hosts[host]
		sl.IPRange6 = netip.MustParsePrefix("fd00:1:0:0:" + idx + "000::/66")
		sl.Gateway6 = sl.IPRange6.Addr().Next()
		n.Hosts[host] = sl
	}
	e, err := n.Engine("h2")
	if err != nil {
		t.Fatal(err)
	}
	if !e.EnableIPv6 || e.Subnet6 != n.Subnet6 || e.IPRange6 != n.Hosts["h2"].IPRange6 || e.Gateway6 != netip.MustParseAddr("fd00:1:0:0:4000::1") {
		t.Fatalf("engine network %+v", e)
	}
	hn, err := n.HostNetwork("h3", underlay)
	if err != nil || hn.Subnet6 != n.Subnet6 || hn.Gateway6 != netip.MustParseAddr("fd00:1:0:0:8000::1") {
		t.Fatalf("host network %+v %v", hn, err)
	}
	if got := n.Slots(); got != 4 {
		t.Fatalf("slots %d", got)
	}
	for _, tt := range []struct {
		ip   string
		idx  int
		ok   bool
		host string
	}{
		{"10.200.0.70", 1, true, "h2"},
		{"fd00:1:0:0:4000::9", 1, true, "h2"},
		{"fd00:1:0:0:c000::9", 3, true, ""},
		{"::ffff:10.200.0.130", 2, true, "h3"},
		{"10.201.0.1", 0, false, ""},
		{"fd00:2::1", 0, false, ""},
	} {
		ip := netip.MustParseAddr(tt.ip)
		idx, ok := n.SliceIndex(ip)
		if idx != tt.idx || ok != tt.ok {
			t.Errorf("SliceIndex(%s) = %d %v, want %d %v", ip, idx, ok, tt.idx, tt.ok)
		}
		for _, h := range n.Members() {
			if got := n.Hosts[h].Holds(ip); got != (h == tt.host) {
				t.Errorf("%s holds %s: %v", h, ip, got)
			}
		}
	}
	// A small IPv6 range limits the slots (and indexes beyond them).
	n.SliceBits6 = 65
	if got := n.Slots(); got != 2 {
		t.Fatalf("slots %d", got)
	}
	if _, ok := n.SliceIndex(netip.MustParseAddr("10.200.0.130")); ok {
		t.Fatal("an address of a slot the IPv6 range cannot match has an index")
	}
	if p, ok := n.SubnetOf(netip.MustParseAddr("fd00:1::1")); !ok || p != n.Subnet6 {
		t.Fatalf("subnet of an IPv6 address: %v %v", p, ok)
	}
}
