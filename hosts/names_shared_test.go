package hosts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// Two managers (fleets over the same engine) sharing names in etcd: a
// name one holds waits at the other; made, it is a conflict there; a
// claim whose create failed frees the name at once.
func TestReserveNameSharedAcrossManagers(t *testing.T) {
	srv := etcdtest.Start(t)
	a, fakes := newFleet(t, fakeOpts{name: "h1"})
	b := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(b.Close)
	if _, err := b.Add(testCtx(t), hosts.Record{Name: "h1", URL: fakes["h1"].URL}, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*hosts.Fleet{a, b} {
		et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: []string{srv.Endpoint}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { et.Close() })
		f.ShareNames(et, "m", 30*time.Second)
	}
	release, err := a.ReserveName(testCtx(t), "web")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	_, err = b.ReserveName(ctx, "web")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held at the other manager: %v, want to wait", err)
	}
	id := fakes["h1"].add("", "web", "running", "", false)
	waitFor(t, "a's cache to know web", func() bool { _, ok := cached(a, id); return ok })
	release()
	if _, err := b.ReserveName(testCtx(t), "web"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("made at the other manager: %v, want a conflict", err)
	}

	// web removed within its claim's life: a create of the name, through
	// either manager, need not wait for the claim to run out (30 s here).
	fakes["h1"].remove(id, false)
	waitFor(t, "both caches to forget web", func() bool {
		_, okA := cached(a, id)
		_, okB := cached(b, id)
		return !okA && !okB
	})
	for _, f := range []*hosts.Fleet{b, a} {
		ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
		release, err := f.ReserveName(ctx, "web")
		cancel()
		if err != nil {
			t.Fatalf("web again after its removal: %v", err)
		}
		id = fakes["h1"].add("", "web", "running", "", false)
		waitFor(t, "the cache to know the new web", func() bool { _, ok := cached(f, id); return ok })
		release()
		fakes["h1"].remove(id, false)
		waitFor(t, "both caches to forget the new web", func() bool {
			_, okA := cached(a, id)
			_, okB := cached(b, id)
			return !okA && !okB
		})
	}

	release, err = a.ReserveName(testCtx(t), "api")
	if err != nil {
		t.Fatal(err)
	}
	release() // the create failed: nothing named api
	release, err = b.ReserveName(testCtx(t), "api")
	if err != nil {
		t.Fatalf("after a failed create elsewhere: %v", err)
	}
	release()
}
