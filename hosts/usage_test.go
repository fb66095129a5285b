package hosts_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
)

// TestSampleUsage: one-shot stats of the running containers only, CPU from
// the change between two samples, memory without page cache.
func TestSampleUsage(t *testing.T) {
	f := newFakeEngine(t, fakeOpts{name: "h1"})
	var round, calls atomic.Int64
	var badQuery atomic.Value
	// The fake keeps no usage: the samples are scripted here.
	f.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, "/stats") {
			calls.Add(1)
			if q := r.URL.Query(); q.Get("stream") != "false" || q.Get("one-shot") != "true" {
				badQuery.Store(r.URL.RawQuery)
			}
			k := round.Load()
			fmt.Fprintf(w, `{"cpu_stats":{"cpu_usage":{"total_usage":%d},"system_cpu_usage":%d},
				"memory_stats":{"usage":%d,"stats":{"inactive_file":%d}}}`, k*1e9, k*4e9, 100<<20, 20<<20)
			return
		}
		next.ServeHTTP(w, r)
	})
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(fleet.Close)
	ctx := testCtx(t)
	h, err := fleet.Add(ctx, hosts.Record{Name: "h1", URL: f.URL}, false)
	if err != nil {
		t.Fatal(err)
	}
	f.add("", "ca", "running", "", false)
	f.add("", "cb", "running", "", false)
	f.add("", "cc", "exited", "", false)
	waitFor(t, "three containers cached", func() bool { return len(h.Containers()) == 3 })
	if _, ok := h.Usage(); ok {
		t.Fatal("usage known before any sample")
	}
	round.Store(1)
	if err := h.SampleUsage(ctx); err != nil {
		t.Fatal(err)
	}
	u, ok := h.Usage()
	if !ok || u.Memory != 2*80<<20 || u.CPU != 0 {
		t.Fatalf("first sample = %+v %v, want 160 MiB and no CPU yet", u, ok)
	}
	round.Store(2)
	if err := h.SampleUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ = h.Usage(); u.CPU != 0.5 {
		t.Fatalf("second sample CPU = %v, want 2 × 1e9/4e9", u.CPU)
	}
	if calls.Load() != 4 {
		t.Fatalf("%d stats calls, want 4 (two running containers, two samples)", calls.Load())
	}
	if q := badQuery.Load(); q != nil {
		t.Fatalf("stats asked with %v: want one-shot, not a stream", q)
	}

	// The fleet's sampler keeps it current on its own.
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := calls.Load()
	fleet.SampleUsage(sctx, time.Second)
	waitFor(t, "the sampler to run", func() bool { return calls.Load() >= before+2 })
}
