package hosts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// watchingFleets are two managers' fleets over one etcd, each following
// the stored hosts through its watch, as clocker serve runs them.
func watchingFleets(t *testing.T) []*hosts.Fleet {
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var fleets []*hosts.Fleet
	for range 2 {
		et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/hosts/", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { et.Close() })
		f := hosts.NewFleet(et, testLogger(), nil)
		t.Cleanup(f.Close)
		go et.Watch(ctx, store.BucketHosts, func() { _ = f.SyncStored(ctx) })
		fleets = append(fleets, f)
	}
	return fleets
}

// A host joined through one manager is followed by another sharing the
// store (its watch), with its labels; removed there, it is dropped here.
func TestSyncStoredFollowsAnotherManager(t *testing.T) {
	fake := newFakeEngine(t, fakeOpts{name: "h1"})
	fleets := watchingFleets(t)
	a, b := fleets[0], fleets[1]
	if _, err := a.Join(testCtx(t), hosts.Record{Name: "h1", URL: fake.URL}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other manager to follow h1", func() bool {
		h, ok := b.Host("h1")
		return ok && h.Healthy()
	})
	if err := a.SetLabels("h1", map[string]string{"zone": "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the label at the other manager", func() bool {
		h, ok := b.Host("h1")
		return ok && h.Labels()["zone"] == "a"
	})
	if err := b.Remove("h1", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first manager to drop h1", func() bool {
		_, ok := a.Host("h1")
		return !ok
	})
}

// Two managers joining one host name at once for two different engines:
// one wins (etcd's transaction), the other gets a 409 naming the winner's
// engine and keeps nothing of its own; both end up following the winner.
// The same engine joined through both managers is no conflict.
func TestJoinOneNameThroughTwoManagers(t *testing.T) {
	engines := []*fakeEngine{newFakeEngine(t, fakeOpts{name: "e1"}), newFakeEngine(t, fakeOpts{name: "e2"})}
	fleets := watchingFleets(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, f := range fleets {
		wg.Go(func() { _, errs[i] = f.Join(testCtx(t), hosts.Record{Name: "hx", URL: engines[i].URL}) })
	}
	wg.Wait()
	winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
	loser := 1 - winner
	if winner < 0 || !errors.Is(errs[loser], errdefs.ErrConflict) || !strings.Contains(errs[loser].Error(), engines[winner].URL) {
		t.Fatalf("joins of hx at once: %v", errs)
	}
	for i, f := range fleets {
		waitFor(t, fmt.Sprintf("manager %d to follow the winner's hx", i), func() bool {
			h, ok := f.Host("hx")
			return ok && h.URL == engines[winner].URL && len(f.Hosts()) == 1
		})
	}
	// The winner's engine, joined again through the other manager.
	if _, err := fleets[loser].Join(testCtx(t), hosts.Record{Name: "hx", URL: engines[winner].URL}); err != nil {
		t.Errorf("the same engine through the other manager: %v", err)
	}
}
