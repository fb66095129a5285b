package leader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitFor polls cond (a condition, not a sleep) until it holds or the
// limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSingleLeadsAtOnce(t *testing.T) {
	g := Single(Manager{ID: "a", Address: "tcp://a:2375"}, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	led := make(chan struct{})
	go g.Run(ctx, func(ctx context.Context) { close(led); <-ctx.Done() })
	<-led
	if !g.IsLeader() || g.Writable() != nil {
		t.Fatal("the only manager does not lead")
	}
	ms, err := g.Managers(ctx)
	if err != nil || len(ms) != 1 || !ms[0].Leader || !ms[0].Self {
		t.Fatalf("managers %+v, %v", ms, err)
	}
	cancel()
}

type member struct {
	g       *Group
	cancel  context.CancelFunc
	leading atomic.Int32 // lead functions running now
	terms   atomic.Int32
}

func start(t *testing.T, srv *etcdtest.Server, id string) *member {
	t.Helper()
	et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/lt/", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { et.Close() })
	m := &member{g: Etcd(et, Manager{ID: id, Address: "tcp://" + id + ":2375"}, 2*time.Second, quiet, nil)}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.g.Run(ctx, func(ctx context.Context) {
			m.leading.Add(1)
			m.terms.Add(1)
			<-ctx.Done()
			m.leading.Add(-1)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

func leaders(ms ...*member) (n int, who *member) {
	for _, m := range ms {
		if m.g.IsLeader() {
			n++
			who = m
		}
	}
	return
}

// Three managers: exactly one leads; it stops, another leads within the
// lease; the lists agree on who.
func TestEtcdOneLeaderAndFailover(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b, c := start(t, srv, "a"), start(t, srv, "b"), start(t, srv, "c")
	all := []*member{a, b, c}
	waitFor(t, 10*time.Second, "a leader", func() bool { n, _ := leaders(all...); return n == 1 })
	_, first := leaders(all...)
	waitFor(t, 5*time.Second, "three managers listed", func() bool {
		ms, err := b.g.Managers(context.Background())
		if err != nil || len(ms) != 3 {
			return false
		}
		for _, m := range ms {
			if m.Leader != (m.ID == first.g.Self().ID) {
				return false
			}
		}
		return true
	})
	start := time.Now()
	first.cancel()
	var rest []*member
	for _, m := range all {
		if m != first {
			rest = append(rest, m)
		}
	}
	waitFor(t, 5*time.Second, "a new leader", func() bool { n, _ := leaders(rest...); return n == 1 })
	t.Logf("new leader after %s", time.Since(start))
	if l := first.leading.Load(); l != 0 {
		t.Fatal("the stopped manager still runs its loops")
	}
	_, second := leaders(rest...)
	if lm, ok := second.g.Leader(); !ok || lm.ID != second.g.Self().ID {
		t.Fatalf("leader seen as %+v", lm)
	}
}

// etcd gone: the leader stops leading and is fenced within about the
// lease; etcd back: one leads again and none is fenced.
func TestEtcdLostSessionFences(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := start(t, srv, "a"), start(t, srv, "b")
	waitFor(t, 10*time.Second, "a leader", func() bool { n, _ := leaders(a, b); return n == 1 })
	srv.Stop()
	waitFor(t, 8*time.Second, "fenced, none leading", func() bool {
		n, _ := leaders(a, b)
		return n == 0 && a.leading.Load() == 0 && b.leading.Load() == 0 && a.g.Writable() != nil && b.g.Writable() != nil
	})
	err := a.g.Writable()
	if !errors.Is(err, errdefs.ErrUnavailable) || errdefs.Status(err) != 503 {
		t.Fatalf("fenced: %v", err)
	}
	srv.Restart(t)
	waitFor(t, 15*time.Second, "a leader again, none fenced", func() bool {
		n, _ := leaders(a, b)
		return n == 1 && a.g.Writable() == nil && b.g.Writable() == nil
	})
}
