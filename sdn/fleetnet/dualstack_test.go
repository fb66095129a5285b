package fleetnet

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn"
)

// subnets is a create request's IPAM with these subnets (either family).
func subnets(cidrs ...string) *IPAMRequest {
	v := &IPAMRequest{}
	for _, c := range cidrs {
		v.Config = append(v.Config, IPAMConfigRequest{Subnet: c})
	}
	return v
}

// withIPs asks for ip4 and ip6 (either may be "") in network ref.
func withIPs(ref, ip4, ip6 string) container.CreateRequest {
	s := onNetworks(ref, ref)
	cfg := &network.EndpointIPAMConfig{}
	if ip4 != "" {
		cfg.IPv4Address = netip.MustParseAddr(ip4)
	}
	if ip6 != "" {
		cfg.IPv6Address = netip.MustParseAddr(ip6)
	}
	s.NetworkingConfig.EndpointsConfig[ref].IPAMConfig = cfg
	return s
}

func TestCreateDualStack(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	for _, tt := range []struct {
		name    string
		req     NetworkRequest
		wantErr error
		wantMsg string
		want    []string // IPAM subnets shown, in order
	}{
		{name: "both subnets, IPv6 first", req: NetworkRequest{Name: "d1", EnableIPv6: true, IPAM: subnets("fd00:1::/64", "10.77.0.0/24")},
			want: []string{"10.77.0.0/24", "fd00:1::/64"}},
		{name: "IPv6 subnet alone", req: NetworkRequest{Name: "d2", EnableIPv6: true, IPAM: subnets("fd00:2::/64")},
			want: []string{"10.200.0.0/24", "fd00:2::/64"}},
		{name: "two IPv4 subnets", req: NetworkRequest{Name: "bad", IPAM: subnets("10.78.0.0/24", "10.79.0.0/24")},
			wantErr: errdefs.ErrInvalid, wantMsg: "one IPv4 subnet"},
		{name: "two IPv6 subnets", req: NetworkRequest{Name: "bad", EnableIPv6: true, IPAM: subnets("fd00:3::/64", "fd00:4::/64")},
			wantErr: errdefs.ErrInvalid, wantMsg: "one IPv6 subnet"},
		{name: "IPv6 overlaps another fleet network's", req: NetworkRequest{Name: "bad", EnableIPv6: true, IPAM: subnets("fd00:1::/48")},
			wantErr: errdefs.ErrConflict, wantMsg: "overlaps"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.mutations()
			n, err := e.ctl.Create(context.Background(), tt.req)
			if got := e.mutations(); !slices.Equal(got, before) {
				t.Errorf("engines got %v", got[len(before):])
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err %v, want %v %q", err, tt.wantErr, tt.wantMsg)
				}
				if _, ok := e.ctl.Network("bad"); ok {
					t.Fatal("a refused create left a network")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o, err := e.ctl.Inspect(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range o.IPAM.Config {
				got = append(got, c.Subnet)
			}
			if !slices.Equal(got, tt.want) || !o.EnableIPv6 {
				t.Fatalf("inspect: IPv6 %v, subnets %v, want %v", o.EnableIPv6, got, tt.want)
			}
		})
	}
}

// --ip6 is checked as --ip is: its family, its subnet, and (with --ip)
// that one host's slices hold both.
func TestValidateIP6(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	e.create(NetworkRequest{Name: "d", EnableIPv6: true, IPAM: subnets("10.77.0.0/24", "fd00:1::/64")})
	e.create(NetworkRequest{Name: "v4", IPAM: subnets("10.78.0.0/24")})
	step := NewCreateStep(e.fleet, e.ctl)
	for _, tt := range []struct {
		name, ref, ip4, ip6, wantErr string
	}{
		{"in the subnet", "d", "", "fd00:1::10", ""},
		{"both, one slice", "d", "10.77.0.40", "fd00:1:0:0:2000::10", ""},
		{"outside the subnet", "d", "", "fd00:2::10", "Invalid address fd00:2::10: It does not belong to any of this network's subnets"},
		{"an IPv4 address as --ip6", "d", "", "10.77.0.10", "invalid IPv6 address: 10.77.0.10"},
		{"a network without IPv6", "v4", "", "fd00:1::10", "does not belong to any of this network's subnets"},
		{"both, slices of two hosts", "d", "10.77.0.10", "fd00:1:0:0:2000::10", "hands out 10.77.0.10 and fd00:1::2000:0:0:10 on different hosts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := step.Validate(e.newCreate(withIPs(tt.ref, tt.ip4, tt.ip6), ""))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || errdefs.Status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v (status %d), want %q", err, errdefs.Status(err), tt.wantErr)
			}
		})
	}
	// Connect checks the same, before it joins anything.
	before := e.mutations()
	err := e.ctl.Connect(context.Background(), e.network("d"), e.host("h1"), Addrs{V6: netip.MustParseAddr("10.77.0.10")})
	if errdefs.Status(err) != http.StatusBadRequest || len(e.members("d")) != 0 || !slices.Equal(e.mutations(), before) {
		t.Fatalf("connect with an IPv4 --ip6: %v, members %v", err, e.members("d"))
	}
}

// --ip6 becomes a host filter as --ip does; a bind on a host whose slice
// does not hold it makes nothing.
func TestPrepareAndBindIP6(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2", "h3")
	e.create(NetworkRequest{Name: "d", EnableIPv6: true, IPAM: subnets("10.77.0.0/24", "fd00:1::/64")})
	e.connect("h1", "d", "c1") // h1 takes slice 0: 10.77.0.0/27, fd00:1::/67
	step := NewCreateStep(e.fleet, e.ctl)
	allowed := func(spec container.CreateRequest) ([][]string, error) {
		cr := e.newCreate(spec, "")
		if err := step.Prepare(context.Background(), cr); err != nil {
			return nil, err
		}
		var out [][]string
		for _, a := range cr.Request.Allow {
			out = append(out, slices.Sorted(maps.Keys(a.Hosts)))
		}
		return out, nil
	}
	got, err := allowed(withIPs("d", "", "fd00:1::10"))
	if err != nil || !slices.EqualFunc(got, [][]string{{"h1"}}, slices.Equal) {
		t.Fatalf("--ip6 of h1's slice: %v %v", got, err)
	}
	got, err = allowed(withIPs("d", "10.77.0.40", "fd00:1:0:0:2000::10"))
	if err != nil || !slices.EqualFunc(got, [][]string{{"h2", "h3"}, {"h2", "h3"}}, slices.Equal) {
		t.Fatalf("--ip and --ip6 of the next slice: %v %v", got, err)
	}
	if _, err := allowed(withIPs("d", "", "fd00:1:0:0:6000::10")); errdefs.Status(err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "fd00:1::/67 on host h1") {
		t.Fatalf("--ip6 no host can hand out: %v", err)
	}

	before := e.mutations()
	_, err = step.Bind(context.Background(), e.newCreate(withIPs("d", "", "fd00:1::10"), "h2"))
	if errdefs.Status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "fd00:1:0:0:2000::/67 on host h2") {
		t.Fatalf("bind of h1's --ip6 on h2: %v", err)
	}
	if got := e.members("d"); !slices.Equal(got, []string{"h1"}) || !slices.Equal(e.mutations(), before) {
		t.Fatalf("a refused bind left members %v, engine calls %v", got, e.mutations()[len(before):])
	}
	if _, err := step.Bind(context.Background(), e.newCreate(withIPs("d", "10.77.0.40", "fd00:1:0:0:2000::10"), "h2")); err != nil {
		t.Fatalf("bind in h2's slices: %v", err)
	}
}

// On a dual-stack network a member's names resolve to both of its
// addresses, and a query from either address is known.
func TestRecordsDualStack(t *testing.T) {
	nets := []sdn.Network{{ID: "idd", Name: "d"}}
	ep := &network.EndpointSettings{IPAddress: netip.MustParseAddr("10.77.0.2"), GlobalIPv6Address: netip.MustParseAddr("fd00:1::2")}
	cs := []hosts.Container{{Summary: container.Summary{
		Names: []string{"/web"}, State: "running",
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{"d": ep}},
	}}}
	recs := records([][]hosts.Container{cs}, nets)
	if got := recs["idd"]["web"]; !slices.Equal(got, []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address}) {
		t.Fatalf("web: %v", got)
	}
	clients := fleetClients(cs, nets, []sdn.HostNetwork{{NetworkID: "idd"}})
	if len(clients) != 2 || !slices.Equal(clients[ep.GlobalIPv6Address], []string{"idd"}) {
		t.Fatalf("clients %v", clients)
	}
}
