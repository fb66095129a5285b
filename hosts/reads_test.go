package hosts_test

import (
	"testing"
	"time"
)

// inspects is how many times the engine was asked to inspect container id:
// one per read of it into the cache.
func inspects(f *fakeEngine, id string) int { return f.served("GET /containers/" + id + "/json") }

// quietly checks that n reads of id happened and no more come.
func wantReads(t *testing.T, f *fakeEngine, id string, n int) {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // a read that should not happen would by now
	if got := inspects(f, id); got != n {
		t.Errorf("container read %d times, want %d", got, n)
	}
}

// Events that come while a read of their container is in flight cost one
// more read between them, not one each.
func TestEventReadsCoalesce(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	h1, _ := fleet.Host("h1")
	f := fakes["h1"]
	id := f.add("", "busy", "created", "", true)
	if err := h1.Refresh(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	before := inspects(f, id)

	hold, held := make(chan struct{}), make(chan struct{})
	holdNextRefresh(f, hold, held)
	if err := f.Start(id); err != nil {
		t.Fatal(err)
	}
	<-held // the start event's read is in flight
	for _, action := range []string{"update", "rename", "pause", "unpause"} {
		if err := f.Emit(id, action); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the events to be asked", func() bool { return h1.ReadPending(id) })
	close(hold)
	waitFor(t, "the reads to end", func() bool {
		c, _ := cached(fleet, id)
		return c.Summary.State == "running" && !h1.ReadPending(id)
	})
	wantReads(t, f, id, before+2)
}

// While a caller holds a container (a change of it in flight), the events
// it causes wait; the caller's own refresh answers them, or, without one,
// they are read once it lets go.
func TestHoldDefersEventReads(t *testing.T) {
	tests := []struct {
		name      string
		refresh   bool // the holder refreshes before letting go
		wantReads int  // reads after the hold began
	}{
		{name: "the holder's refresh answers the events", refresh: true, wantReads: 1},
		{name: "no refresh: read once let go", refresh: false, wantReads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
			h1, _ := fleet.Host("h1")
			f := fakes["h1"]
			id := f.add("", "held", "created", "", false)
			waitFor(t, "the cache to know it", func() bool { _, ok := cached(fleet, id); return ok && !h1.ReadPending(id) })
			before := inspects(f, id)

			release := h1.Hold(id)
			if err := f.Start(id); err != nil {
				t.Fatal(err)
			}
			if err := f.Emit(id, "update"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the events to be asked", func() bool { return h1.ReadPending(id) })
			wantReads(t, f, id, before) // held: not read
			if tt.refresh {
				if err := h1.Refresh(testCtx(t), id); err != nil {
					t.Fatal(err)
				}
				if h1.ReadPending(id) {
					t.Error("the refresh did not answer the events asked before it")
				}
			}
			release()
			release() // a second call changes nothing
			waitFor(t, "the cache to show it running", func() bool {
				c, _ := cached(fleet, id)
				return c.Summary.State == "running" && !h1.ReadPending(id)
			})
			wantReads(t, f, id, before+tt.wantReads)
		})
	}
}

// A container created through Clocker is read once: by the proxy (Cached)
// or by its create event, whichever comes first.
func TestCreatedContainerReadOnce(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	h1, _ := fleet.Host("h1")
	f := fakes["h1"]
	for i := range 5 {
		id := f.add("", "", "created", "", false)
		if err := h1.Cached(testCtx(t), id); err != nil {
			t.Fatal(err)
		}
		if _, ok := cached(fleet, id); !ok {
			t.Fatalf("container %d not cached after Cached", i)
		}
		waitFor(t, "the create event", func() bool { return !h1.ReadPending(id) })
		wantReads(t, f, id, 1)
	}
}

// A container the cache saw removed is not read again: a wait for its
// removal that ends after the destroy event costs the engine nothing.
func TestRefreshOfRemovedContainer(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	h1, _ := fleet.Host("h1")
	f := fakes["h1"]
	id := f.add("", "gone", "running", "", false)
	waitFor(t, "the cache to know it", func() bool { _, ok := cached(fleet, id); return ok })
	f.remove(id, false)
	waitFor(t, "the destroy event", func() bool { _, ok := cached(fleet, id); return !ok })
	lists := f.served("GET /containers/json")
	if err := h1.Refresh(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	if n := f.served("GET /containers/json") - lists; n != 0 {
		t.Errorf("refresh of a removed container listed %d times, want 0", n)
	}
	if _, ok := cached(fleet, id); ok {
		t.Error("a removed container came back")
	}
}
