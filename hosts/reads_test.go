package hosts_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
)

// Re-reads of one container asked while another read holds the host join
// one read begun after them: the engine is asked once, and every caller
// returns with the cache holding what that read found.
func TestRefreshesCoalesce(t *testing.T) {
	f1 := newFakeEngine(t, fakeOpts{name: "h1"})
	ca := f1.add("", "ca", "created", "", false)
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(fleet.Close)
	if _, err := fleet.Add(testCtx(t), hosts.Record{Name: "h1", URL: f1.URL}, false); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	h1, _ := fleet.Host("h1")
	list0, inspect0 := f1.served("GET /containers/json"), f1.served("GET /containers/"+ca+"/json")
	release := h1.HoldReads()
	// Changed quietly (no event): only the callers' read can see it.
	f1.remove(ca, true)
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = h1.Refresh(testCtx(t), ca) })
	}
	waitFor(t, "every ask queued", func() bool { return h1.ReadAskers(ca) == n })
	release()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := h1.Container(ca); ok {
		t.Error("a removed container is still cached after the callers' read")
	}
	if k := f1.served("GET /containers/json") - list0; k != 1 {
		t.Errorf("%d lists for %d asks, want 1", k, n)
	}
	if k := f1.served("GET /containers/"+ca+"/json") - inspect0; k > 1 {
		t.Errorf("%d inspects for %d asks, want at most 1", k, n)
	}
}

// Re-reads of different containers of one host do not wait for each
// other: the ten stops of a compose down are each read back before their
// answer goes out.
func TestRefreshesOfContainersAtOnce(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	h1, _ := fleet.Host("h1")
	f := fakes["h1"]
	ca := f.add("", "ca", "running", "", false)
	cb := f.add("", "cb", "running", "", false)
	hold, held := make(chan struct{}), make(chan struct{})
	holdNextRefresh(f, ca, hold, held)
	slow := make(chan error, 1)
	go func() { slow <- h1.Refresh(testCtx(t), ca) }()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("refresh never reached the engine")
	}
	done := make(chan error, 1)
	go func() { done <- h1.Refresh(testCtx(t), cb) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the read of cb waited for the read of ca")
	}
	close(hold)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// A re-read whose inspect fails (the engine going away) keeps what was
// inspected before: a rescheduler recreates the container from it.
func TestRefreshKeepsInspectWhenInspectFails(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	h1, _ := fleet.Host("h1")
	f := fakes["h1"]
	ca := f.add("", "ca", "running", "", false)
	if err := h1.Refresh(testCtx(t), ca); err != nil {
		t.Fatal(err)
	}
	before, ok := h1.Container(ca)
	if !ok || len(before.Inspect) == 0 {
		t.Fatalf("ca not inspected: %+v", before)
	}
	f.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/containers/"+ca+"/json" || strings.HasSuffix(r.URL.Path, "/containers/"+ca+"/json") {
			http.Error(w, "engine shutting down", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
	if err := h1.Refresh(testCtx(t), ca); err != nil {
		t.Fatal(err)
	}
	after, ok := h1.Container(ca)
	if !ok || !bytes.Equal(after.Inspect, before.Inspect) || !after.Created.Equal(before.Created) {
		t.Errorf("after a failed inspect: %+v, want the inspect of before", after)
	}
}
