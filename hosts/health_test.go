package hosts_test

import (
	"errors"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
)

// A failed forwarded call makes the watcher check at once: an engine that
// hangs (its event stream still open) is marked unhealthy long before the
// next scheduled check, and healthy again once it answers.
func TestPassiveFailureChecksAtOnce(t *testing.T) {
	f := newFakeEngine(t, fakeOpts{name: "h1"})
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	fleet.HealthInterval = time.Hour // no scheduled check during the test
	fleet.HealthTimeout = 100 * time.Millisecond
	t.Cleanup(fleet.Close)
	h, err := fleet.Add(testCtx(t), hosts.Record{Name: "h1", URL: f.URL}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	f.hung.Store(true)
	time.Sleep(300 * time.Millisecond)
	if !h.Healthy() {
		t.Fatal("unhealthy without a failed call or a check")
	}
	h.ReportFailure(errors.New("i/o timeout"))
	waitFor(t, "unhealthy after a failed call", func() bool { return !h.Healthy() })

	f.hung.Store(false)
	h.ReportFailure(errors.New("i/o timeout")) // the next failed call checks again
	waitFor(t, "healthy once it answers", func() bool { return h.Healthy() })
}
