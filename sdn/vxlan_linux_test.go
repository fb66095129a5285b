//go:build linux

package sdn_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/internal/nstest"
	"github.com/clocker/clocker/sdn/ipam"
)

// TestNetnsFleetNetworkAcrossTwoHosts goes from the allocator to traffic:
// a network allocated and joined by two hosts, each host's bridge made as
// the engine would make it (Network.Engine's bridge name and gateway), the
// vxlan provider applied from HostNetwork in each host's namespace, TCP
// from a gateway on one host to the gateway on the other; then an agent
// restart (new provider, Reconcile) changes nothing, and Reconcile with
// nothing desired takes the device away.
func TestNetnsFleetNetworkAcrossTwoHosts(t *testing.T) {
	nstest.Require(t)
	ctx := context.Background()

	alloc, err := ipam.New(ipam.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := alloc.Create(ipam.Spec{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"h1", "h2"} {
		if _, err := alloc.Join(n.ID, h); err != nil {
			t.Fatal(err)
		}
	}
	n, _ = alloc.Get(n.ID)
	underlay := map[string]netip.Addr{"h1": netip.MustParseAddr("198.18.0.1"), "h2": netip.MustParseAddr("198.18.0.2")}

	ns := map[string]*nstest.NS{"h1": nstest.New(t, "h1"), "h2": nstest.New(t, "h2")}
	nstest.Underlay(t, ns["h1"], ns["h2"], "198.18.0.1/24", "198.18.0.2/24")

	providers := map[string]sdn.Provider{}
	hns := map[string]sdn.HostNetwork{}
	for _, h := range []string{"h1", "h2"} {
		e, err := n.Engine(h)
		if err != nil {
			t.Fatal(err)
		}
		// What the engine does for `docker network create` with these options.
		ns[h].Bridge(t, e.Options[sdn.OptionBridgeName], netip.PrefixFrom(e.Gateway, e.Subnet.Bits()).String())

		p, err := sdn.NewProvider(n.Provider, sdn.ProviderConfig{Netns: ns[h].Path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		providers[h] = p
		hn, err := n.HostNetwork(h, underlay)
		if err != nil {
			t.Fatal(err)
		}
		hns[h] = hn
		if err := p.Apply(ctx, hn); err != nil {
			t.Fatalf("apply on %s: %v", h, err)
		}
	}

	srv := ns["h2"].Listen(t, n.Hosts["h2"].Gateway)
	if got, err := ns["h1"].Exchange(srv, "hi", 5*time.Second); err != nil || got != "echo hi" {
		t.Fatalf("h1 → h2 over the overlay: %q %v", got, err)
	}

	// The agent on h1 restarts: it re-learns from the kernel.
	v := providers["h1"].(*sdn.VXLAN)
	before, err := v.State()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := sdn.NewProvider("vxlan", sdn.ProviderConfig{Netns: ns["h1"].Path})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if ids, err := p2.Applied(ctx); err != nil || !slices.Equal(ids, []string{n.ID}) {
		t.Fatalf("Applied after restart: %v %v", ids, err)
	}
	if err := sdn.Reconcile(ctx, p2, []sdn.HostNetwork{hns["h1"]}); err != nil {
		t.Fatal(err)
	}
	after, err := p2.(*sdn.VXLAN).State()
	if err != nil {
		t.Fatal(err)
	}
	b, a := before[n.ID], after[n.ID]
	if a.Index != b.Index || !slices.Equal(a.Peers, []netip.Addr{underlay["h2"]}) || a.VNI != n.VNI || a.MTU != sdn.MTU {
		t.Fatalf("after restart and reconcile: %+v, before %+v", a, b)
	}
	if got, err := ns["h1"].Exchange(srv, "again", 5*time.Second); err != nil || got != "echo again" {
		t.Fatalf("after restart: %q %v", got, err)
	}

	// The network is gone from the fleet: reconcile removes it, twice.
	for range 2 {
		if err := sdn.Reconcile(ctx, p2, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := p2.Applied(ctx); len(ids) != 0 {
		t.Fatalf("left after reconcile to nothing: %v", ids)
	}
	if _, err := ns["h1"].Handle.LinkByName(n.DeviceName()); err == nil {
		t.Fatal("device still there")
	}
	if err := p2.Remove(ctx, n.ID); err != nil {
		t.Fatalf("removing what is gone: %v", err)
	}
}
