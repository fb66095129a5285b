package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/internal/statusrec"
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
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.upstream)
	}
	return m
}

func (m *metrics) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := statusrec.New(w)
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.Status())).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}
