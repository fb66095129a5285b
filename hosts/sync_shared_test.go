package hosts_test

import (
	"context"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// A host joined through one manager is followed by another sharing the
// store (its watch), with its labels; removed there, it is dropped here.
func TestSyncStoredFollowsAnotherManager(t *testing.T) {
	srv := etcdtest.Start(t)
	fake := newFakeEngine(t, fakeOpts{name: "h1"})
	var fleets []*hosts.Fleet
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for range 2 {
		et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/sync/", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { et.Close() })
		f := hosts.NewFleet(et, testLogger(), nil)
		t.Cleanup(f.Close)
		go et.Watch(ctx, store.BucketHosts, func() { _ = f.SyncStored(ctx) })
		fleets = append(fleets, f)
	}
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
