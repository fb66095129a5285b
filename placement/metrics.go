package placement

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/scheduler"
)

// metrics are placement's: decisions by strategy and outcome, hosts turned
// down by filter (a constant, never a host or container), decision
// latency.
type metrics struct {
	placements *prometheus.CounterVec
	rejections *prometheus.CounterVec
	decisions  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clocker", Subsystem: "placement",
			Name: "decisions_total", Help: "Placement decisions by strategy chain and outcome (placed, no_host_fits, image_missing, no_host_healthy); dry runs are not counted.",
		}, []string{"strategy", "outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clocker", Subsystem: "placement",
			Name: "rejections_total", Help: "Hosts turned down by placement, by the filter that turned them down.",
		}, []string{"reason"}),
		decisions: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "clocker", Subsystem: "placement",
			Name: "decision_duration_seconds", Help: "Time to decide a placement: the fleet snapshot and the strategy, without image look-ups.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.placements, m.rejections, m.decisions)
	}
	return m
}

// observe records one container decision (dry runs only in the latency).
func (m *metrics) observe(d *scheduler.Decision, err error, dry bool, took time.Duration) {
	m.decisions.Observe(took.Seconds())
	if dry || d == nil {
		return
	}
	outcome := "placed"
	var nf *scheduler.NoHostFitsError
	if errors.As(err, &nf) {
		switch {
		case nf.NoHealthy:
			outcome = "no_host_healthy"
		case nf.ImageMissing:
			outcome = "image_missing"
		default:
			outcome = "no_host_fits"
		}
	}
	m.placements.WithLabelValues(d.Strategy, outcome).Inc()
	if len(d.Rejected) == 0 {
		return
	}
	by := map[string]int{}
	for _, r := range d.Rejected {
		by[r.Filter]++
	}
	for f, n := range by {
		m.rejections.WithLabelValues(f).Add(float64(n))
	}
}
