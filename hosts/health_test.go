package hosts_test

import (
	"context"
	"errors"
	"sync"
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
	f.Hang(true)
	time.Sleep(300 * time.Millisecond)
	if !h.Healthy() {
		t.Fatal("unhealthy without a failed call or a check")
	}
	h.ReportFailure(errors.New("i/o timeout"))
	waitFor(t, "unhealthy after a failed call", func() bool { return !h.Healthy() })

	f.Hang(false)
	// The next failed call checks again. Under load that check can
	// outlast HealthTimeout; the calls that fail go on reporting, as the
	// proxy's would.
	waitFor(t, "healthy once it answers", func() bool {
		if h.Healthy() {
			return true
		}
		h.ReportFailure(errors.New("i/o timeout"))
		return false
	})
}

// healthFleet follows one fake engine with the given health interval and
// check timeout.
func healthFleet(t *testing.T, interval, timeout time.Duration) (*fakeEngine, *hosts.Host) {
	t.Helper()
	f := newFakeEngine(t, fakeOpts{name: "h1"})
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	fleet.HealthInterval = interval
	fleet.HealthTimeout = timeout
	t.Cleanup(fleet.Close)
	h, err := fleet.Add(testCtx(t), hosts.Record{Name: "h1", URL: f.URL}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return f, h
}

// traffic makes calls to h until the returned stop is called: what a busy
// host sees from the proxy.
func traffic(t *testing.T, h *hosts.Host, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			// A call ends with its answer or with stop: a short timeout
			// would, on a loaded machine, turn slow answers into no
			// answers, and a host without answers is pinged.
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			_, _, _ = h.GetJSON(cctx, "/containers/json", nil)
			ccancel()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// A host that answers forwarded calls needs no pings: its answers prove
// it alive. Once the calls stop, the pings resume.
func TestTrafficDefersPings(t *testing.T) {
	const interval = 500 * time.Millisecond
	f, h := healthFleet(t, interval, 0)
	stop := traffic(t, h, 10*time.Millisecond)
	before := f.served("GET /_ping")
	// Four intervals: an idle host would have been pinged about four times.
	time.Sleep(4 * interval)
	if n := f.served("GET /_ping") - before; n != 0 {
		t.Errorf("%d pings while the host answered calls every 10ms, want none", n)
	}
	stop()
	waitFor(t, "a ping once the calls stopped", func() bool { return f.served("GET /_ping") > before })
	if !h.Healthy() {
		t.Error("host answering calls and pings is not healthy")
	}
}

// An idle host is pinged about once an interval.
func TestIdleHostIsPinged(t *testing.T) {
	const interval = 100 * time.Millisecond
	f, h := healthFleet(t, interval, 0)
	before := f.served("GET /_ping")
	waitFor(t, "three pings", func() bool { return f.served("GET /_ping")-before >= 3 })
	if !h.Healthy() {
		t.Error("host answering pings is not healthy")
	}
}

// Traffic defers the checks but never past one interval after the last
// answer: an engine that stops answering in the middle of calls is marked
// unhealthy as soon as without them (the next check, then its
// confirmation).
func TestHungHostDetectedDespiteTraffic(t *testing.T) {
	const (
		interval = 300 * time.Millisecond
		timeout  = 100 * time.Millisecond
	)
	f, h := healthFleet(t, interval, timeout)
	stop := traffic(t, h, 10*time.Millisecond)
	hungAt := time.Now()
	f.Hang(true) // the calls now time out; nothing reports them
	waitFor(t, "unhealthy", func() bool { return !h.Healthy() })
	took := time.Since(hungAt)
	stop()
	// Due: one interval, a timed-out check, the confirmation after 250 ms
	// and its timeout; the rest is slack for a loaded machine (traffic
	// deferring the checks for good would not end the wait above at all).
	if limit := interval + timeout + 250*time.Millisecond + timeout + 5*time.Second; took > limit {
		t.Errorf("unhealthy after %v, want within %v", took, limit)
	}
	t.Logf("unhealthy %v after the engine hung", took)

	f.Hang(false)
	waitFor(t, "healthy once it answers", func() bool { return h.Healthy() })
}
