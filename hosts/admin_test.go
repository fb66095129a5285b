package hosts_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Join needs an answering engine and stores the host; drain and labels are
// stored too; a busy host is removed only once draining; a removed host is
// forgotten by the store and its goroutines end.
func TestFleetAdmin(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f1 := newFakeEngine(t, fakeOpts{name: "h1"})
	f2 := newFakeEngine(t, fakeOpts{name: "h2"})
	fleet := hosts.NewFleet(st, testLogger(), nil)
	t.Cleanup(fleet.Close)

	// Bad input changes nothing.
	if _, err := fleet.Join(testCtx(t), hosts.Record{URL: "ftp://x"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad URL: %v, want invalid", err)
	}
	down := newFakeEngine(t, fakeOpts{name: "down"})
	down.Close()
	if _, err := fleet.Join(testCtx(t), hosts.Record{URL: down.URL}); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("unreachable engine: %v", err)
	}
	if recs, _ := fleet.StoredRecords(); len(recs) != 0 || len(fleet.Hosts()) != 0 {
		t.Fatalf("failed joins left %d records, %d hosts", len(recs), len(fleet.Hosts()))
	}

	// Named by the engine, stored.
	if _, err := fleet.Join(testCtx(t), hosts.Record{URL: f1.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.Join(testCtx(t), hosts.Record{Name: "two", URL: f2.URL}); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	f1.add("", "busy", "running", "", false)
	h1, _ := fleet.Host("h1")
	waitFor(t, "h1's container", func() bool { return len(h1.Containers()) == 1 })

	if err := fleet.SetLabels("two", map[string]string{"storage": "ssd", "zone": "z9"}); err != nil {
		t.Fatal(err)
	}
	if err := fleet.SetLabels("two", map[string]string{"zone": ""}); err != nil {
		t.Fatal(err)
	}
	two, _ := fleet.Host("two")
	if got := two.Labels(); !maps.Equal(got, map[string]string{"storage": "ssd"}) {
		t.Errorf("labels %v", got)
	}
	if err := fleet.SetLabels("nope", map[string]string{"a": "b"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("labels of an unknown host: %v", err)
	}

	// A busy host stays until drained.
	gen := h1.Generation()
	if err := fleet.Remove("h1", nil); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "1 containers") {
		t.Fatalf("remove busy: %v", err)
	}
	if err := fleet.SetDraining("h1", true); err != nil {
		t.Fatal(err)
	}
	if !h1.Draining() || h1.Generation() == gen {
		t.Error("drain not seen by placement (state or generation)")
	}

	// Stored: a restart sees labels and drain.
	recs, err := fleet.StoredRecords()
	if err != nil || len(recs) != 2 {
		t.Fatalf("stored %v %v", recs, err)
	}
	for _, r := range recs {
		switch r.Name {
		case "h1":
			if !r.Draining {
				t.Error("h1 stored without its drain")
			}
		case "two":
			if r.Labels["storage"] != "ssd" {
				t.Errorf("two stored with labels %v", r.Labels)
			}
		}
	}

	if err := fleet.Remove("h1", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := fleet.Host("h1"); ok {
		t.Error("h1 still in the fleet")
	}
	if recs, _ := fleet.StoredRecords(); len(recs) != 1 || recs[0].Name != "two" {
		t.Errorf("after remove the store holds %v", recs)
	}
	waitFor(t, "h1's event stream to end", func() bool { return f1.EventStreams() == 0 })
	if err := fleet.Remove("h1", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
}
