package proxy

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/scheduler"
)

const (
	metricsNamespace = "clocker"
	metricsSubsystem = "api"
)

// metrics are the front door's: requests by route template (never an ID).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	upstream *prometheus.CounterVec

	// Placement: decisions by strategy and outcome, hosts turned down by
	// filter (a constant, never a host or container), decision latency.
	placements *prometheus.CounterVec
	rejections *prometheus.CounterVec
	decisions  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "requests_total", Help: "API requests by route, method and status.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "request_duration_seconds", Help: "Time to the end of the response (streams included), by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "method"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "upstream_failures_total", Help: "Forwarded requests that failed to reach a host.",
		}, []string{"host"}),
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "placement",
			Name: "decisions_total", Help: "Placement decisions by strategy chain and outcome (placed, no_host_fits, image_missing, no_host_healthy); dry runs are not counted.",
		}, []string{"strategy", "outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "placement",
			Name: "rejections_total", Help: "Hosts turned down by placement, by the filter that turned them down.",
		}, []string{"reason"}),
		decisions: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "placement",
			Name: "decision_duration_seconds", Help: "Time to decide a placement: the fleet snapshot and the strategy, without image look-ups.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.upstream, m.placements, m.rejections, m.decisions)
	}
	return m
}

// statusRecorder remembers the status; it keeps Flush and Hijack reachable
// through Unwrap for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *metrics) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.status
		if code == 0 {
			code = http.StatusSwitchingProtocols // hijacked
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

// observePlacement records one decision (dry runs only in the latency).
func (m *metrics) observePlacement(d *scheduler.Decision, err error, dry bool, took time.Duration) {
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
