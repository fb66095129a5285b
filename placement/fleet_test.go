package placement

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/scheduler"
)

// testFleet is a fleet of fake engines, in the order given, and its placer.
type testFleet struct {
	t       *testing.T
	fleet   *hosts.Fleet
	engines map[string]*fakeengine.Server
	placer  *Placer
}

func newTestFleet(t *testing.T, opts ...fakeengine.Options) *testFleet {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tf := &testFleet{t: t, engines: map[string]*fakeengine.Server{}}
	for _, o := range opts {
		s, err := fakeengine.Listen(fakeengine.New(o), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		tf.engines[o.Name] = s
	}
	reg := prometheus.NewRegistry()
	tf.fleet = hosts.NewFleet(nil, log, hosts.NewMetrics(reg))
	tf.fleet.HealthInterval = 50 * time.Millisecond
	tf.fleet.HealthTimeout = 5 * time.Second // a slow answer under -race on a busy machine is no failure
	t.Cleanup(tf.fleet.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, o := range opts {
		if _, err := tf.fleet.Add(ctx, hosts.Record{Name: o.Name, URL: tf.engines[o.Name].URL}, false); err != nil {
			t.Fatalf("add %s: %v", o.Name, err)
		}
	}
	if err := tf.fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	tf.placer = New(tf.fleet, scheduler.NewSpread(), reg)
	return tf
}

// threeHosts are h1, h2, h3 holding busybox, labelled with zones.
func threeHosts(t *testing.T) *testFleet {
	return newTestFleet(t,
		fakeengine.Options{Name: "h1", Images: []string{"busybox"}, Labels: []string{"zone=z1"}},
		fakeengine.Options{Name: "h2", Images: []string{"busybox"}, Labels: []string{"zone=z2"}},
		fakeengine.Options{Name: "h3", Images: []string{"busybox"}, Labels: []string{"zone=z3"}},
	)
}

// add creates a container on a host behind the fleet's back and waits
// until the host's cache shows it.
func (tf *testFleet) add(host string, s fakeengine.Spec) string {
	tf.t.Helper()
	if s.Image == "" {
		s.Image = "busybox"
	}
	id, err := tf.engines[host].Create(s)
	if err != nil {
		tf.t.Fatal(err)
	}
	h, _ := tf.fleet.Host(host)
	if err := h.Refresh(context.Background(), id); err != nil {
		tf.t.Fatal(err)
	}
	return id
}

func (tf *testFleet) host(name string) *hosts.Host {
	h, ok := tf.fleet.Host(name)
	if !ok {
		tf.t.Fatalf("no host %s", name)
	}
	return h
}

// pending counts the reservations the placer holds, on every host.
func (tf *testFleet) pending() int {
	n := 0
	for name := range tf.engines {
		n += tf.placer.ledger.Pending(name)
	}
	return n
}

// waitUntil polls cond for up to ten seconds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
