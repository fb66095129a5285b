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
