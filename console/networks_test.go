package console_test

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/console"
	"github.com/clocker/clocker/sdn"
)

// The networks view shows each fleet network's subnets and its member
// hosts' slices in slice order.
func TestNetworks(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nets := []sdn.Network{
		{Name: "web", ID: "n2", Driver: "overlay", Subnet: netip.MustParsePrefix("10.200.1.0/24"), Created: created,
			Hosts: map[string]sdn.HostSlice{
				"h2": {Index: 1, IPRange: netip.MustParsePrefix("10.200.1.32/27"), Gateway: netip.MustParseAddr("10.200.1.33")},
				"h1": {Index: 0, IPRange: netip.MustParsePrefix("10.200.1.0/27"), Gateway: netip.MustParseAddr("10.200.1.1")},
			}},
		{Name: "app", ID: "n1", Subnet: netip.MustParsePrefix("10.200.0.0/24"), Subnet6: netip.MustParsePrefix("fd00::/64"), Created: created},
	}
	c := console.New(console.Options{Networks: func() []sdn.Network { return nets }})
	ts := httptest.NewServer(c.Handler())
	defer ts.Close()
	e := &env{t: t, base: ts.URL}
	var got []console.Network
	e.getJSON("/ui/api/networks", &got)
	if len(got) != 2 || got[0].Name != "app" || got[0].Subnet6 != "fd00::/64" || len(got[0].Slices) != 0 {
		t.Fatalf("networks %+v", got)
	}
	w := got[1]
	if w.Driver != "overlay" || w.Subnet != "10.200.1.0/24" || len(w.Slices) != 2 ||
		w.Slices[0] != (console.Slice{Host: "h1", Index: 0, IPRange: "10.200.1.0/27", Gateway: "10.200.1.1"}) || w.Slices[1].Host != "h2" {
		t.Errorf("web %+v", w)
	}
	// Without fleet networks: an empty list, not an error.
	ts2 := httptest.NewServer(console.New(console.Options{}).Handler())
	defer ts2.Close()
	var none []console.Network
	(&env{t: t, base: ts2.URL}).getJSON("/ui/api/networks", &none)
	if none == nil || len(none) != 0 {
		t.Errorf("no fleet networks: %v", none)
	}
}

// The networks view lists per-host networks with their host (the front
// door's Node), leaving out the built-in ones every host has.
func TestLocalNetworks(t *testing.T) {
	e := twoHosts(t)
	ctx := context.Background()
	res, err := e.api.NetworkCreate(ctx, "backend", client.NetworkCreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	e.engines["h2"].AddNetwork("h2-only", nil)
	var got []console.LocalNetwork
	e.getJSON("/ui/api/networks/local", &got)
	byName := map[string]console.LocalNetwork{}
	for _, n := range got {
		byName[n.Name] = n
	}
	if len(got) != 2 || byName["backend"].ID != res.ID || byName["backend"].Driver != "bridge" || byName["backend"].Host == "" ||
		byName["h2-only"].Host != "h2" {
		t.Errorf("local networks %+v", got)
	}
	if got[0].Host > got[1].Host {
		t.Errorf("not by host: %+v", got)
	}
}
