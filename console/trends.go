package console

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
)

// Trends are kept in memory, sampled every trendEvery over trendSpan.
const (
	trendEvery = 10 * time.Second
	trendSpan  = time.Hour
	trendKept  = int(trendSpan / trendEvery)
)

// Series names of the fleet-wide trends; per host: "containers:HOST".
const (
	seriesContainers   = "containers"
	seriesHealthy      = "healthy hosts"
	seriesDecisions    = "placement decisions"
	seriesLatency      = "placement latency ms"
	seriesProvisions   = "hosts provisioned"
	seriesPerHostStart = "containers:"
)

// trends samples what Clocker already counts: the host views and the
// metrics registry. Counters become per-interval deltas.
type trends struct {
	gatherer prometheus.Gatherer
	hosts    func() []hosts.Status

	mu      sync.Mutex
	samples []sample
	last    map[string]float64 // counters' previous totals
}

type sample struct {
	t      time.Time
	values map[string]float64
}

func newTrends(g prometheus.Gatherer, h func() []hosts.Status) *trends {
	return &trends{gatherer: g, hosts: h}
}

// Run samples until ctx ends.
func (c *Console) Run(ctx context.Context) {
	c.trends.sample(time.Now())
	t := time.NewTicker(trendEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.trends.sample(now)
		}
	}
}

// counterTotals are the counters (and histogram sums and counts) the
// trends read, by series.
func (tr *trends) counterTotals() map[string]float64 {
	out := map[string]float64{}
	if tr.gatherer == nil {
		return out
	}
	mfs, err := tr.gatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "clocker_placement_decisions_total":
				out[seriesDecisions] += m.GetCounter().GetValue()
			case "clocker_placement_decision_duration_seconds":
				out["latency.sum"] += m.GetHistogram().GetSampleSum()
				out["latency.count"] += float64(m.GetHistogram().GetSampleCount())
			case "clocker_fleet_provisions_total":
				out[seriesProvisions] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func (tr *trends) sample(now time.Time) {
	v := map[string]float64{}
	if tr.hosts != nil {
		total, healthy := 0, 0
		for _, h := range tr.hosts() {
			total += h.Containers
			v[seriesPerHostStart+h.Name] = float64(h.Containers)
			if h.State == "healthy" {
				healthy++
			}
		}
		v[seriesContainers], v[seriesHealthy] = float64(total), float64(healthy)
	}
	totals := tr.counterTotals()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.last != nil {
		v[seriesDecisions] = totals[seriesDecisions] - tr.last[seriesDecisions]
		v[seriesProvisions] = totals[seriesProvisions] - tr.last[seriesProvisions]
		if n := totals["latency.count"] - tr.last["latency.count"]; n > 0 {
			v[seriesLatency] = (totals["latency.sum"] - tr.last["latency.sum"]) / n * 1000
		}
	}
	tr.last = totals
	tr.samples = append(tr.samples, sample{t: now, values: v})
	if len(tr.samples) > trendKept {
		tr.samples = slices.Delete(tr.samples, 0, len(tr.samples)-trendKept)
	}
}

// Series is one trend: points [unix ms, value], oldest first.
type Series struct {
	Name   string
	Points [][2]float64
}

// listTrends answers GET /ui/api/trends: every series over the last hour.
func (c *Console) listTrends(w http.ResponseWriter, r *http.Request) error {
	tr := c.trends
	tr.mu.Lock()
	by := map[string]*Series{}
	var names []string
	for _, s := range tr.samples {
		for name, v := range s.values {
			se, ok := by[name]
			if !ok {
				se = &Series{Name: name}
				by[name] = se
				names = append(names, name)
			}
			se.Points = append(se.Points, [2]float64{float64(s.t.UnixMilli()), v})
		}
	}
	tr.mu.Unlock()
	slices.Sort(names)
	out := struct {
		EverySeconds float64
		Series       []Series
	}{trendEvery.Seconds(), []Series{}}
	for _, n := range names {
		out.Series = append(out.Series, *by[n])
	}
	return writeJSON(w, http.StatusOK, out)
}
