package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/store"
)

// fakeDriver makes in-process fake engines on loopback.
type fakeDriver struct {
	mu        sync.Mutex
	servers   map[string]*fakeengine.Server // by host name
	created   int
	adopted   []string
	destroyed []string
	failNext  error
	mute      bool            // hand out an address nothing answers on
	dead      map[string]bool // engines killed, not yet started again
}

type fakeState struct{ Addr string }

func (d *fakeDriver) Name() string { return "fake" }

func (d *fakeDriver) Create(_ context.Context, req Request) (Machine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failNext; err != nil {
		d.failNext = nil
		return Machine{}, err
	}
	d.created++
	if d.mute {
		return d.machine(req.Name, "127.0.0.1:1"), nil
	}
	s, err := fakeengine.Listen(fakeengine.New(fakeengine.Options{Name: "engine-" + req.Name, Images: []string{"busybox"}}), "tcp", "127.0.0.1:0")
	if err != nil {
		return Machine{}, err
	}
	d.servers[req.Name] = s
	return d.machine(req.Name, s.URL[len("tcp://"):]), nil
}

func (d *fakeDriver) machine(name, addr string) Machine {
	raw, _ := json.Marshal(fakeState{Addr: addr})
	return Machine{Name: name, Provisioner: "fake", State: raw, Record: hosts.Record{URL: "tcp://" + addr}}
}

func (d *fakeDriver) Adopt(_ context.Context, m Machine) (Machine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.adopted = append(d.adopted, m.Name)
	if s, ok := d.servers[m.Name]; ok && d.dead[m.Name] {
		// The engine died: start a new one on its address, as the local
		// driver starts dockerd again in the machine's namespace.
		addr := strings.TrimPrefix(s.URL, "tcp://")
		n, err := fakeengine.Listen(fakeengine.New(fakeengine.Options{Name: "engine-" + m.Name, Images: []string{"busybox"}}), "tcp", addr)
		if err != nil {
			return m, err
		}
		d.servers[m.Name] = n
		delete(d.dead, m.Name)
	}
	return m, nil
}

// kill takes a machine's engine down, as a crash would.
func (d *fakeDriver) kill(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.servers[name].Close()
	d.dead[name] = true
}

func (d *fakeDriver) adoptions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.adopted)
}

func (d *fakeDriver) Destroy(_ context.Context, m Machine) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.destroyed = append(d.destroyed, m.Name)
	if s := d.servers[m.Name]; s != nil {
		s.Close()
		delete(d.servers, m.Name)
	}
	return nil
}

func (d *fakeDriver) server(name string) *fakeengine.Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.servers[name]
}

var _ Provisioner = (*fakeDriver)(nil)

type rig struct {
	st    store.Store
	fleet *hosts.Fleet
	m     *Manager
	d     *fakeDriver
}

func newRig(t *testing.T, dir string, d *fakeDriver) *rig {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fleet := hosts.NewFleet(st, slog.New(slog.DiscardHandler), nil)
	fleet.HealthInterval = 50 * time.Millisecond
	fleet.HealthTimeout = 5 * time.Second // a slow answer under -race on a busy machine is no failure
	m := NewManager(fleet, st, nil, NewMetrics(nil))
	m.EngineWait = 2 * time.Second
	m.Use(d)
	t.Cleanup(func() {
		fleet.Close()
		st.Close()
	})
	return &rig{st: st, fleet: fleet, m: m, d: d}
}

func newFakeDriver(t *testing.T) *fakeDriver {
	d := &fakeDriver{servers: map[string]*fakeengine.Server{}, dead: map[string]bool{}}
	t.Cleanup(func() {
		for _, s := range d.servers {
			s.Close()
		}
	})
	return d
}

func TestProvisionJoinsAndStores(t *testing.T) {
	d := newFakeDriver(t)
	r := newRig(t, t.TempDir(), d)
	_, events, cancel := r.fleet.SubscribeEvents()
	defer cancel()
	ctx := context.Background()
	h1, err := r.m.Provision(ctx, "fake", Request{})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := r.m.Provision(ctx, "fake", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if h1.Name != "fake1" || h2.Name != "fake2" || h1.Provisioner != "fake" || !h1.Healthy() {
		t.Fatalf("hosts %s %s (%s, healthy %v)", h1.Name, h2.Name, h1.Provisioner, h1.Healthy())
	}
	var stored Machine
	if err := r.st.Get(store.BucketMachines, "fake1", &stored); err != nil || !stored.Ready || stored.Record.URL != h1.URL {
		t.Fatalf("stored machine: %+v, %v", stored, err)
	}
	if len(r.m.Pending()) != 0 {
		t.Fatalf("pending after provisioning: %v", r.m.Pending())
	}
	var actions []string
	for !slices.Contains(actions, "provision fake1") || !slices.Contains(actions, "provision fake2") {
		select {
		case ev := <-events:
			actions = append(actions, ev.Action+" "+ev.Host)
		case <-time.After(30 * time.Second):
			t.Fatalf("events: %v", actions)
		}
	}
	if _, err := r.m.Provision(ctx, "fake", Request{Name: "fake1"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("a taken name: %v", err)
	}
	if _, err := r.m.Provision(ctx, "cloud", Request{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("an unknown provisioner: %v", err)
	}
}

func TestProvisionFailuresLeaveNothing(t *testing.T) {
	d := newFakeDriver(t)
	r := newRig(t, t.TempDir(), d)
	ctx := context.Background()
	d.failNext = errdefs.New(errdefs.ErrUnavailable, "out of machines")
	if _, err := r.m.Provision(ctx, "fake", Request{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("create failure: %v", err)
	}
	d.mute = true
	_, err := r.m.Provision(ctx, "fake", Request{})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("an engine that never answers: %v", err)
	}
	if len(r.fleet.Hosts()) != 0 || len(r.m.Machines("")) != 0 || len(r.m.Pending()) != 0 {
		t.Fatalf("left behind: hosts %d, machines %v, pending %v", len(r.fleet.Hosts()), r.m.Machines(""), r.m.Pending())
	}
	if !slices.Equal(d.destroyed, []string{"fake1"}) {
		t.Fatalf("the half-made machine is destroyed: %v", d.destroyed)
	}
	n := 0
	_ = r.st.ForEach(store.BucketMachines, func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d machines stored", n)
	}
}

func TestRestoreAdoptsAndUndoesHalfMade(t *testing.T) {
	dir := t.TempDir()
	d := newFakeDriver(t)
	r := newRig(t, dir, d)
	ctx := context.Background()
	if _, err := r.m.Provision(ctx, "fake", Request{}); err != nil {
		t.Fatal(err)
	}
	// A crash while a second machine was being made.
	if err := r.st.Put(store.BucketMachines, "fake2", Machine{Name: "fake2", Provisioner: "fake"}); err != nil {
		t.Fatal(err)
	}
	r.fleet.Close()
	r.st.Close()

	r2 := newRig(t, dir, d)
	if err := r2.m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.adopted, []string{"fake1"}) || !slices.Equal(d.destroyed, []string{"fake2"}) {
		t.Fatalf("adopted %v, destroyed %v", d.adopted, d.destroyed)
	}
	if ms := r2.m.Machines("fake"); len(ms) != 1 || ms[0].Name != "fake1" {
		t.Fatalf("machines after restore: %v", ms)
	}
	// The next one takes the free name, not a second fake1.
	h, err := r2.m.Provision(ctx, "fake", Request{})
	if err != nil || h.Name != "fake2" {
		t.Fatalf("after restore: %v %v", h, err)
	}
	if d.created != 2 {
		t.Fatalf("%d machines created, want 2", d.created)
	}
}

func TestRemoveBusyAndDrained(t *testing.T) {
	d := newFakeDriver(t)
	r := newRig(t, t.TempDir(), d)
	ctx := context.Background()
	h, err := r.m.Provision(ctx, "fake", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.server(h.Name).Create(fakeengine.Spec{Name: "web", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the container in the cache", func() bool { return len(h.Containers()) == 1 })
	if err := r.m.Remove(ctx, h.Name); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("removing a busy host: %v", err)
	}
	if len(d.destroyed) != 0 {
		t.Fatal("a busy host was destroyed")
	}
	if err := r.fleet.SetDraining(h.Name, true); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Remove(ctx, h.Name); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.fleet.Host(h.Name); ok || !slices.Equal(d.destroyed, []string{h.Name}) {
		t.Fatalf("after remove: in fleet %v, destroyed %v", ok, d.destroyed)
	}
	if _, ok := r.m.Machine(h.Name); ok {
		t.Fatal("machine still recorded")
	}
	if err := r.m.Remove(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown host: %v", err)
	}
}

func TestSense(t *testing.T) {
	p := HeadroomPolicy{PerHost: 4, Headroom: 2}
	for _, tc := range []struct {
		name    string
		view    []HostLoad
		pending int
		want    Sensors
	}{
		{"empty fleet is hot", nil, 0, Sensors{Headroom: 2, Needed: 2, Hot: true}},
		{"room", []HostLoad{{Name: "a", Containers: 1, Usable: true}}, 0,
			Sensors{Hosts: 1, Slots: 4, Containers: 1, Available: 3, Headroom: 2, Utilisation: 0.25, AllHosts: 1}},
		{"full", []HostLoad{{Name: "a", Containers: 3, Usable: true}}, 0,
			Sensors{Hosts: 1, Slots: 4, Containers: 3, Available: 1, Headroom: 2, Needed: 1, Utilisation: 0.75, Hot: true, AllHosts: 1}},
		{"pending counts", []HostLoad{{Name: "a", Containers: 3, Usable: true}}, 1,
			Sensors{Hosts: 2, Pending: 1, Slots: 8, Containers: 3, Available: 5, Headroom: 2, Utilisation: 0.375, AllHosts: 2}},
		{"unusable hosts give no slots", []HostLoad{{Name: "a", Containers: 1, Usable: true}, {Name: "b", Usable: false, Removable: true}}, 0,
			Sensors{Hosts: 1, Slots: 4, Containers: 1, Available: 3, Headroom: 2, Utilisation: 0.25, AllHosts: 2}},
		{"cold with an empty removable host", []HostLoad{{Name: "a", Usable: true, Removable: true}, {Name: "b", Usable: true, Removable: true}, {Name: "c", Usable: true, Containers: 1}}, 0,
			Sensors{Hosts: 3, Slots: 12, Containers: 1, Available: 11, Headroom: 2, Utilisation: 1.0 / 12, Cold: true, Empty: []string{"a", "b"}, AllHosts: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Sense(tc.view, tc.pending)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	pct := HeadroomPolicy{PerHost: 10, HeadroomPercent: 25}
	if s := pct.Sense([]HostLoad{{Usable: true}, {Usable: true}, {Usable: true}}, 0); s.Headroom != 8 {
		t.Fatalf("25%% of 30 slots: headroom %d, want 8 (rounded up)", s.Headroom)
	}
	for _, bad := range []HeadroomPolicy{{}, {PerHost: 2, Headroom: -1}, {PerHost: 2, Headroom: 1, HeadroomPercent: 5}, {PerHost: 2, HeadroomPercent: 101}, {PerHost: 2, MaxHosts: -1}} {
		if err := bad.Validate(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestAutoscalerGrowsAndShrinks(t *testing.T) {
	d := newFakeDriver(t)
	r := newRig(t, t.TempDir(), d)
	ctx := context.Background()
	a, err := r.m.NewAutoscaler(HeadroomPolicy{Provisioner: "fake", PerHost: 2, Headroom: 1, MaxHosts: 3, ScaleIn: true, ScaleInAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	step := func(now time.Time) {
		a.Step(ctx, now)
		waitFor(t, "the action to end", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return !a.inFlight })
	}
	now := time.Now()
	step(now) // an empty fleet has no headroom: one host
	if n := len(r.fleet.Hosts()); n != 1 {
		t.Fatalf("%d hosts after the first step", n)
	}
	step(now) // 2 slots free ≥ 1: nothing
	if n := len(r.fleet.Hosts()); n != 1 {
		t.Fatalf("%d hosts with headroom", n)
	}
	h1 := r.fleet.Hosts()[0]
	for i := range 2 {
		if _, err := d.server(h1.Name).Create(fakeengine.Spec{Name: fmt.Sprint("c", i), Image: "busybox"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "containers in the cache", func() bool { return len(h1.Containers()) == 2 })
	step(now) // 0 free < 1: a second host
	if n := len(r.fleet.Hosts()); n != 2 {
		t.Fatalf("%d hosts after filling one", n)
	}
	h2 := r.fleet.Hosts()[1]
	for i := range 2 {
		if _, err := d.server(h2.Name).Create(fakeengine.Spec{Name: fmt.Sprint("d", i), Image: "busybox"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "containers in the cache", func() bool { return len(h2.Containers()) == 2 })
	step(now) // a third
	for i := range 2 {
		h3 := r.fleet.Hosts()[2]
		if _, err := d.server(h3.Name).Create(fakeengine.Spec{Name: fmt.Sprint("e", i), Image: "busybox"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "containers in the cache", func() bool { return len(h3.Containers()) == i+1 })
	}
	step(now) // hot, but --max-hosts 3
	if n := len(r.fleet.Hosts()); n != 3 || d.created != 3 {
		t.Fatalf("%d hosts (%d made) past max-hosts", n, d.created)
	}
	if s := a.Sensors(); !s.Hot || s.Needed != 1 {
		t.Fatalf("sensors when full: %+v", s)
	}

	// Empty two hosts: cold, but only after ScaleInAfter, one host a time,
	// the newest empty one first.
	for _, h := range r.fleet.Hosts()[1:] {
		for _, c := range h.Containers() {
			if err := d.server(h.Name).Remove(c.Summary.ID, true); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "an empty cache", func() bool { return len(h.Containers()) == 0 })
	}
	step(now)
	if n := len(r.fleet.Hosts()); n != 3 {
		t.Fatalf("removed before the fleet stayed cold: %d hosts", n)
	}
	step(now.Add(2 * time.Minute))
	if n := len(r.fleet.Hosts()); n != 2 || !slices.Equal(d.destroyed, []string{"fake3"}) {
		t.Fatalf("scale in: %d hosts, destroyed %v", n, d.destroyed)
	}
	// 4 slots, 2 taken, 2 free: not above headroom + a host (3): stays.
	step(now.Add(10 * time.Minute))
	if n := len(r.fleet.Hosts()); n != 2 {
		t.Fatalf("scaled in below the headroom: %d hosts", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: under a loaded CI machine with -race, healing's first
	// attempts may fail and back off; a passing run returns at once.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A provisioned host whose engine dies is healed: after the delay its
// driver re-adopts the machine, the engine answers again and the host is
// healthy.
func TestHealStartsDeadEngines(t *testing.T) {
	d := newFakeDriver(t)
	r := newRig(t, t.TempDir(), d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := r.m.Provision(ctx, "fake", Request{})
	if err != nil {
		t.Fatal(err)
	}
	go r.m.Heal(ctx, 100*time.Millisecond)
	d.kill(h.Name)
	waitFor(t, "the host marked down", func() bool { return !h.Healthy() })
	waitFor(t, "the engine adopted again", func() bool { return slices.Contains(d.adoptions(), h.Name) })
	waitFor(t, "the host healthy again", h.Healthy)
	if n := len(d.adoptions()); n != 1 {
		t.Fatalf("adopted %d times, want once", n)
	}
}
