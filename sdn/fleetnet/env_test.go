package fleetnet

// The controller's tests run against internal/fakeengine: a fleet of fake
// engines (h1, h2, …), each with a running container (c1 on h1, …), and a
// controller over an in-memory allocator.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/ipam"
)

type env struct {
	t     *testing.T
	fakes map[string]*fakeengine.Server
	fleet *hosts.Fleet
	ctl   *Controller
	ids   map[string]string // container name → ID
}

// newEnv starts a fleet of the named fake engines whose fleet networks
// come from pool; reg (may be nil) gets the controller's metrics.
func newEnv(t *testing.T, pool string, reg prometheus.Registerer, names ...string) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, fakes: map[string]*fakeengine.Server{}, ids: map[string]string{}}
	e.fleet = hosts.NewFleet(nil, log, hosts.NewMetrics(prometheus.NewRegistry()))
	e.fleet.HealthInterval = 50 * time.Millisecond
	e.fleet.HealthTimeout = 5 * time.Second // a slow answer under -race on a busy machine is no failure
	t.Cleanup(e.fleet.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range names {
		eng := fakeengine.New(fakeengine.Options{Name: n, Images: []string{"busybox"}})
		eng.RecordCalls()
		s, err := fakeengine.Listen(eng, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		e.fakes[n] = s
		if _, err := e.fleet.Add(ctx, hosts.Record{Name: n, URL: s.URL}, false); err != nil {
			t.Fatalf("add %s: %v", n, err)
		}
	}
	if err := e.fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := ipam.New(ipam.Config{Pool: netip.MustParsePrefix(pool)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.ctl, err = New(e.fleet, a, log, reg); err != nil {
		t.Fatal(err)
	}
	for i, h := range names {
		e.addContainer(h, "c"+string(rune('1'+i)))
	}
	return e
}

func (e *env) host(name string) *hosts.Host {
	e.t.Helper()
	h, ok := e.fleet.Host(name)
	if !ok {
		e.t.Fatalf("no host %s", name)
	}
	return h
}

// addContainer runs a busybox container on host, known to the fleet's
// cache.
func (e *env) addContainer(host, name string) string {
	e.t.Helper()
	id, err := e.fakes[host].Create(fakeengine.Spec{Name: name, Image: "busybox", Running: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.host(host).Refresh(context.Background(), id); err != nil {
		e.t.Fatal(err)
	}
	e.ids[name] = id
	return id
}

// create makes a fleet network through the controller.
func (e *env) create(req NetworkRequest) sdn.Network {
	e.t.Helper()
	n, err := e.ctl.Create(context.Background(), req)
	if err != nil {
		e.t.Fatalf("create %s: %v", req.Name, err)
	}
	return n
}

// network is the allocator's record of the fleet network ref names.
func (e *env) network(ref string) sdn.Network {
	e.t.Helper()
	n, ok := e.ctl.Network(ref)
	if !ok {
		e.t.Fatalf("no fleet network %s", ref)
	}
	return n
}

// connect connects container ctr (of the env) to fleet network ref: the
// controller's join, then the engine's connect, as the proxy does.
func (e *env) connect(host, ref, ctr string) {
	e.t.Helper()
	ctx := context.Background()
	n := e.network(ref)
	h := e.host(host)
	if err := e.ctl.Connect(ctx, n, h, Addrs{}); err != nil {
		e.t.Fatalf("connect %s to %s: %v", ctr, ref, err)
	}
	if _, err := h.Client().NetworkConnect(ctx, n.Name, client.NetworkConnectOptions{Container: e.ids[ctr]}); err != nil {
		e.t.Fatalf("engine connect %s to %s: %v", ctr, ref, err)
	}
	if err := h.Refresh(ctx, e.ids[ctr]); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) disconnect(host, ref, ctr string) {
	e.t.Helper()
	h := e.host(host)
	if _, err := h.Client().NetworkDisconnect(context.Background(), ref, client.NetworkDisconnectOptions{Container: e.ids[ctr]}); err != nil {
		e.t.Fatalf("engine disconnect %s from %s: %v", ctr, ref, err)
	}
	if err := h.Refresh(context.Background(), e.ids[ctr]); err != nil {
		e.t.Fatal(err)
	}
}

// copyOf is host's network named name, nil when it has none.
func (e *env) copyOf(host, name string) *fakeengine.Network {
	for _, n := range e.fakes[host].Networks() {
		if n.Name == name {
			return &n
		}
	}
	return nil
}

// mutations are the calls but GETs every engine got, as "host:METHOD PATH".
func (e *env) mutations() []string {
	var out []string
	for name, f := range e.fakes {
		for _, c := range f.Calls("", "") {
			if c.Method != http.MethodGet && c.Method != http.MethodHead {
				out = append(out, name+":"+c.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// members lists the member hosts of fleet network ref.
func (e *env) members(ref string) []string {
	n := e.network(ref)
	return n.Members()
}

// engineNets lists the hosts that hold a network named name.
func (e *env) engineNets(name string) []string {
	var out []string
	for h := range e.fakes {
		if e.copyOf(h, name) != nil {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

func contains(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) }
