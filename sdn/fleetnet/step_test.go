package fleetnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

// The step takes part in validate, prepare and bind.
var (
	_ admission.Validator = (*CreateStep)(nil)
	_ admission.Preparer  = (*CreateStep)(nil)
	_ admission.Binder    = (*CreateStep)(nil)
)

// newCreate is a create of spec as the chain holds it, placed on host.
func (e *env) newCreate(spec container.CreateRequest, host string) *admission.Create {
	e.t.Helper()
	if spec.Config == nil {
		spec.Config = &container.Config{}
	}
	spec.Image = "busybox"
	body, err := json.Marshal(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := admission.NewCreate("", nil, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		c.Host = e.host(host)
	}
	return c
}

// encoded is the body the engine would get, decoded.
func encoded(t *testing.T, c *admission.Create) container.CreateRequest {
	t.Helper()
	body, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	var got container.CreateRequest
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// onNetworks is a spec on network mode mode and endpoints eps.
func onNetworks(mode string, eps ...string) container.CreateRequest {
	s := container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)}}
	if len(eps) > 0 {
		s.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		for _, ep := range eps {
			s.NetworkingConfig.EndpointsConfig[ep] = &network.EndpointSettings{}
		}
	}
	return s
}

// withIP asks for ip in network ref.
func withIP(ref, ip string) container.CreateRequest {
	s := onNetworks(ref, ref)
	s.NetworkingConfig.EndpointsConfig[ref].IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(ip)}
	return s
}

func dnsOf(spec container.CreateRequest) []string {
	var out []string
	if spec.HostConfig != nil {
		for _, a := range spec.HostConfig.DNS {
			out = append(out, a.String())
		}
	}
	return out
}

func TestBind(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2", "h3")
	e.create(NetworkRequest{Name: "fa"})
	fb := e.create(NetworkRequest{Name: "fb"})
	step := NewCreateStep(e.fleet, e.ctl)
	tests := []struct {
		name    string
		spec    container.CreateRequest
		wantDNS []string // "fa"/"fb": h2's gateway in that network
		wantNM  string
		wantEPs []string
	}{
		{name: "no fleet network", spec: onNetworks("bridge"), wantNM: "bridge"},
		{name: "one, by name", spec: onNetworks("fa"), wantDNS: []string{"fa"}, wantNM: "fa"},
		{name: "two, one by ID", spec: func() container.CreateRequest {
			s := onNetworks("fa", fb.ID[:12])
			s.NetworkingConfig.EndpointsConfig[fb.ID[:12]].Aliases = []string{"x"}
			return s
		}(), wantDNS: []string{"fa", "fb"}, wantNM: "fa", wantEPs: []string{"fb"}},
		{name: "the user's DNS wins", spec: func() container.CreateRequest {
			s := onNetworks("fa")
			s.HostConfig.DNS = []netip.Addr{netip.MustParseAddr("9.9.9.9")}
			return s
		}(), wantDNS: []string{"9.9.9.9"}, wantNM: "fa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newCreate(tt.spec, "h2")
			if err := step.Prepare(context.Background(), c); err != nil || len(c.Request.Pins) != 0 || len(c.Request.Allow) != 0 {
				t.Fatalf("prepare: pins %v, allow %v, %v: a fleet network pins nothing", c.Request.Pins, c.Request.Allow, err)
			}
			if _, err := step.Bind(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			got := encoded(t, c)
			var want []string
			for _, d := range tt.wantDNS {
				if n, ok := e.ctl.Network(d); ok {
					d = n.Hosts["h2"].Gateway.String()
				}
				want = append(want, d)
			}
			if dns := dnsOf(got); !slices.Equal(dns, want) {
				t.Errorf("Dns %v, want %v", dns, want)
			}
			if string(got.HostConfig.NetworkMode) != tt.wantNM {
				t.Errorf("NetworkMode %s, want %s", got.HostConfig.NetworkMode, tt.wantNM)
			}
			if got.NetworkingConfig != nil {
				var eps []string
				for k, ep := range got.NetworkingConfig.EndpointsConfig {
					eps = append(eps, k)
					if k == "fb" && !slices.Equal(ep.Aliases, []string{"x"}) {
						t.Errorf("renamed endpoint lost its aliases: %+v", ep)
					}
				}
				if !slices.Equal(eps, tt.wantEPs) {
					t.Errorf("endpoints %v, want %v", eps, tt.wantEPs)
				}
			}
		})
	}
	if e.copyOf("h2", "fa") == nil || e.copyOf("h2", "fb") == nil {
		t.Error("h2 did not get its copies")
	}
	if e.copyOf("h1", "fa") != nil {
		t.Error("h1 got a copy without a member")
	}
}

func TestBindHostDNS(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2", "h3")
	e.create(NetworkRequest{Name: "fa"})
	e.create(NetworkRequest{Name: "fi", Internal: true})
	step := NewCreateStep(e.fleet, e.ctl)
	hostDNS := netip.MustParseAddr("10.214.2.1")
	withAgent(e.ctl, "h2", hostDNS)
	userDNS := onNetworks("bridge")
	userDNS.HostConfig.DNS = []netip.Addr{netip.MustParseAddr("9.9.9.9")}
	// A container Clocker gave h1's address, recreated (rescheduled) here.
	recreate := onNetworks("bridge")
	recreate.HostConfig.DNS = []netip.Addr{netip.MustParseAddr("10.214.1.1")}
	recreate.Config.Labels = map[string]string{labels.DNS: "10.214.1.1"}
	// The user's own servers, with a label that does not match them.
	stale := onNetworks("bridge")
	stale.HostConfig.DNS = []netip.Addr{netip.MustParseAddr("9.9.9.9")}
	stale.Config.Labels = map[string]string{labels.DNS: "10.214.1.1"}
	tests := []struct {
		name      string
		spec      container.CreateRequest
		wantDNS   []string // "fa"/"fi": h2's gateway in that network
		wantLabel string   // "": as wantDNS
	}{
		{name: "default bridge", spec: onNetworks("bridge"), wantDNS: []string{hostDNS.String()}},
		{name: "no HostConfig", spec: container.CreateRequest{Config: &container.Config{}}, wantDNS: []string{hostDNS.String()}},
		{name: "a local network", spec: onNetworks("local-net"), wantDNS: []string{hostDNS.String()}},
		{name: "a fleet network", spec: onNetworks("fa"), wantDNS: []string{hostDNS.String()}},
		// Its members have no route to the host's address: its gateway too.
		{name: "an internal fleet network", spec: onNetworks("fa", "fi"), wantDNS: []string{hostDNS.String(), "fi"}},
		{name: "host network", spec: onNetworks("host")},
		{name: "no network", spec: onNetworks("none")},
		{name: "another container's network", spec: onNetworks("container:abc")},
		// The label tells Clocker's servers from the user's.
		{name: "the user's DNS", spec: userDNS, wantDNS: []string{"9.9.9.9"}, wantLabel: "-"},
		{name: "a recreate of a container with Clocker's DNS", spec: recreate, wantDNS: []string{hostDNS.String()}},
		// The user's labels are left alone.
		{name: "the user's DNS and a label not theirs", spec: stale, wantDNS: []string{"9.9.9.9"}, wantLabel: "10.214.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newCreate(tt.spec, "h2")
			if _, err := step.Bind(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			got := encoded(t, c)
			var want []string
			for _, d := range tt.wantDNS {
				if n, ok := e.ctl.Network(d); ok {
					d = n.Hosts["h2"].Gateway.String()
				}
				want = append(want, d)
			}
			if dns := dnsOf(got); !slices.Equal(dns, want) {
				t.Errorf("Dns %v, want %v", dns, want)
			}
			wantLabel := strings.Join(want, ",")
			switch tt.wantLabel {
			case "-":
				wantLabel = ""
			case "":
			default:
				wantLabel = tt.wantLabel
			}
			if got := got.Config.Labels[labels.DNS]; got != wantLabel {
				t.Errorf("label %q, want %q", got, wantLabel)
			}
		})
	}
	t.Run("a recreate where the host has no agent: the engine's default", func(t *testing.T) {
		c := e.newCreate(recreate, "h3")
		if _, err := step.Bind(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		got := encoded(t, c)
		if len(got.HostConfig.DNS) != 0 || got.Config.Labels[labels.DNS] != "" {
			t.Errorf("Dns %v, label %q: want neither", got.HostConfig.DNS, got.Config.Labels[labels.DNS])
		}
	})
	t.Run("no agent on the host yet: the gateways", func(t *testing.T) {
		e.ctl.agents.mu.Lock()
		e.ctl.agents.hosts["h2"].dnsReady = netip.Addr{}
		e.ctl.agents.mu.Unlock()
		c := e.newCreate(onNetworks("fa"), "h2")
		if _, err := step.Bind(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		if got, want := dnsOf(encoded(t, c)), []string{e.network("fa").Hosts["h2"].Gateway.String()}; !slices.Equal(got, want) {
			t.Errorf("Dns %v, want %v", got, want)
		}
		c = e.newCreate(onNetworks("bridge"), "h2")
		if _, err := step.Bind(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		if got := dnsOf(encoded(t, c)); len(got) != 0 {
			t.Errorf("a container on the default bridge got DNS servers without an agent: %v", got)
		}
	})
}

// Validate refuses an --ip outside the fleet network's subnet, touching
// nothing: no engine, no lease.
func TestValidate(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	e.create(NetworkRequest{Name: "fv", IPAM: subnets("10.77.0.0/24")})
	step := NewCreateStep(e.fleet, e.ctl)
	for _, tt := range []struct {
		name, ref, ip string
		wantErr       string
	}{
		{"in the subnet", "fv", "10.77.0.200", ""},
		{"outside the subnet", "fv", "10.78.0.10", "does not belong to any of this network's subnets"},
		{"an IPv6 address as --ip", "fv", "fd00::1", "invalid IPv4 address: fd00::1"},
		{"a per-host network: the engine's to judge", "local", "10.78.0.10", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newCreate(withIP(tt.ref, tt.ip), "")
			before := e.mutations()
			err := step.Validate(c)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || errdefs.Status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v (status %d), want %q", err, errdefs.Status(err), tt.wantErr)
			}
			if got := e.mutations(); !slices.Equal(got, before) {
				t.Errorf("engines got %v", got[len(before):])
			}
			if got := e.members("fv"); len(got) != 0 {
				t.Errorf("members %v", got)
			}
		})
	}
	// A bad address does not decode: the create is refused before the step.
	if _, err := admission.NewCreate("", nil, []byte(`{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"fv":{"IPAMConfig":{"IPv4Address":"10.77.0.300"}}}}}`)); errdefs.Status(err) != http.StatusBadRequest {
		t.Errorf("a malformed --ip: %v", err)
	}
}

// Prepare pins a per-host network's create to its host and turns an --ip
// on a fleet network into the hosts that can hand it out.
func TestPrepare(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2", "h3")
	e.fakes["h3"].AddNetwork("local", nil)
	e.create(NetworkRequest{Name: "fp", IPAM: subnets("10.77.0.0/24")})
	e.connect("h1", "fp", "c1") // h1 takes the first slice, 10.77.0.0/27
	step := NewCreateStep(e.fleet, e.ctl)
	for _, tt := range []struct {
		name      string
		spec      container.CreateRequest
		wantPins  []scheduler.Pin
		wantAllow []string // hosts allowed; nil: no set
		wantMsg   string   // in the set's reason, or the error
		wantErr   error
	}{
		{name: "a fleet network", spec: onNetworks("fp")},
		{name: "a per-host network", spec: onNetworks("local"), wantPins: []scheduler.Pin{{Host: "h3", Reason: "network local"}}},
		{name: "no such network", spec: onNetworks("nosuch"), wantErr: errdefs.ErrNotFound, wantMsg: "network nosuch not found"},
		{name: "an address of a member's slice", spec: withIP("fp", "10.77.0.10"), wantAllow: []string{"h1"},
			wantMsg: "fleet network fp hands out 10.77.0.10 on host h1 only (its slice 10.77.0.0/27; a host that joins now gets 10.77.0.32/27)"},
		{name: "an address of the next slice", spec: withIP("fp", "10.77.0.40"), wantAllow: []string{"h2", "h3"},
			wantMsg: "next host to join it (slice 10.77.0.32/27)"},
		{name: "an address no host can take now", spec: withIP("fp", "10.77.0.70"), wantErr: errdefs.ErrInvalid,
			wantMsg: "no host can hand it out in fleet network fp (each host has its slice of 10.77.0.0/24; members hand out 10.77.0.0/27 on host h1; a host that joins now gets 10.77.0.32/27)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newCreate(tt.spec, "")
			before := e.mutations()
			err := step.Prepare(context.Background(), c)
			if got := e.mutations(); !slices.Equal(got, before) {
				t.Errorf("engines got %v", got[len(before):])
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err %v, want %v with %q", err, tt.wantErr, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Request.Pins, tt.wantPins) {
				t.Errorf("pins %v, want %v", c.Request.Pins, tt.wantPins)
			}
			if tt.wantAllow == nil {
				if len(c.Request.Allow) != 0 {
					t.Errorf("allow %v, want none", c.Request.Allow)
				}
				return
			}
			if len(c.Request.Allow) != 1 {
				t.Fatalf("allow %v, want one set", c.Request.Allow)
			}
			a := c.Request.Allow[0]
			var got []string
			for h, ok := range a.Hosts {
				if ok {
					got = append(got, h)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantAllow) || !strings.Contains(a.Reason, tt.wantMsg) {
				t.Errorf("allowed %v (%q), want %v (%q)", got, a.Reason, tt.wantAllow, tt.wantMsg)
			}
		})
	}
	if got := e.members("fp"); !slices.Equal(got, []string{"h1"}) {
		t.Errorf("members %v: prepare took something", got)
	}
}

// --ip must lie in the slice of the host the container lands on: the
// engine hands out no other address. A refused bind makes nothing.
func TestBindRequestedIP(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	e.create(NetworkRequest{Name: "fp", IPAM: subnets("10.77.0.0/24")})
	step := NewCreateStep(e.fleet, e.ctl)
	// h1 joins first and gets the first slice (10.77.0.0/27).
	if _, err := step.Bind(context.Background(), e.newCreate(withIP("fp", "10.77.0.10"), "h1")); err != nil {
		t.Fatalf("an address in h1's slice: %v", err)
	}
	for _, tt := range []struct{ name, ip, want string }{
		{"another host's slice", "10.77.0.10", "10.77.0.32/27"},
		{"outside the subnet", "10.78.0.10", "does not belong to any of this network's subnets"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.mutations()
			_, err := step.Bind(context.Background(), e.newCreate(withIP("fp", tt.ip), "h2"))
			if err == nil || errdefs.Status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v (status %d), want a 400 naming %q", err, errdefs.Status(err), tt.want)
			}
			if got := e.mutations(); !slices.Equal(got, before) {
				t.Errorf("engines got %v", got[len(before):])
			}
			if got := e.members("fp"); !slices.Equal(got, []string{"h1"}) {
				t.Errorf("members %v, want h1 alone", got)
			}
		})
	}
}

// A bind the engine fails leaves no lease and no engine network, for the
// networks it joined before the failure too.
func TestBindFailureLeavesNothing(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	e.create(NetworkRequest{Name: "fok"})
	e.create(NetworkRequest{Name: "fbad"})
	step := NewCreateStep(e.fleet, e.ctl)
	e.fakes["h2"].Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, "/networks/create") && readName(r) == "fbad" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"message":"failed to create the bridge"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
	for _, spec := range []container.CreateRequest{onNetworks("fbad"), onNetworks("fok", "fbad")} {
		_, err := step.Bind(context.Background(), e.newCreate(spec, "h2"))
		if err == nil || !strings.Contains(err.Error(), "failed to create the bridge") {
			t.Fatalf("bind: %v, want the engine's failure", err)
		}
		for _, n := range []string{"fok", "fbad"} {
			if got := e.members(n); len(got) != 0 {
				t.Errorf("%s has members %v: a lease left behind", n, got)
			}
			if got := e.engineNets(n); len(got) != 0 {
				t.Errorf("%s left on engines %v", n, got)
			}
		}
	}
	// The engine down: the same.
	e.fakes["h2"].Intercept(nil)
	e.fakes["h2"].Hang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := step.Bind(ctx, e.newCreate(onNetworks("fok"), "h2")); err == nil {
		t.Fatal("bind on a hung engine succeeded")
	}
	if got := e.members("fok"); len(got) != 0 {
		t.Errorf("members %v after a failed call", got)
	}
}

// readName reads the Name of a request's JSON body and puts the body back.
func readName(r *http.Request) string {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var v struct{ Name string }
	_ = json.Unmarshal(body, &v)
	return v.Name
}

// Undo after a successful bind leaves nothing the bind made: no lease, no
// engine network; what was there before stays.
func TestBindUndo(t *testing.T) {
	e := newEnv(t, "10.200.0.0/16", nil, "h1", "h2")
	e.create(NetworkRequest{Name: "fu"})
	e.create(NetworkRequest{Name: "fkeep"})
	e.connect("h1", "fkeep", "c1") // h1 is a member already, with a container
	step := NewCreateStep(e.fleet, e.ctl)
	ctx := context.Background()

	for _, host := range []string{"h1", "h2"} {
		b, err := step.Bind(ctx, e.newCreate(onNetworks("fu", "fkeep"), host))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.members("fu"); !slices.Equal(got, []string{host}) {
			t.Fatalf("members of fu %v after the bind on %s", got, host)
		}
		b.Undo()
		if got := e.members("fu"); len(got) != 0 {
			t.Errorf("undo on %s: fu has members %v", host, got)
		}
		if got := e.engineNets("fu"); len(got) != 0 {
			t.Errorf("undo on %s: fu left on %v", host, got)
		}
		if got := e.members("fkeep"); !slices.Contains(got, "h1") || e.copyOf("h1", "fkeep") == nil {
			t.Errorf("undo on %s took h1's membership of fkeep: %v", host, got)
		}
	}
	if got := e.members("fkeep"); !slices.Equal(got, []string{"h1"}) {
		t.Errorf("fkeep members %v, want h1 alone", got)
	}

	t.Run("another join since", func(t *testing.T) {
		b, err := step.Bind(ctx, e.newCreate(onNetworks("fu"), "h2"))
		if err != nil {
			t.Fatal(err)
		}
		// A second create on h2 joins too, and may be on its way to the
		// engine: the first one's undo leaves the network to it.
		if _, err := step.Bind(ctx, e.newCreate(onNetworks("fu"), "h2")); err != nil {
			t.Fatal(err)
		}
		b.Undo()
		if got := e.members("fu"); !slices.Equal(got, []string{"h2"}) || e.copyOf("h2", "fu") == nil {
			t.Errorf("members %v, copies %v: the undo took another create's network", got, e.engineNets("fu"))
		}
	})
}
