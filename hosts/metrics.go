package hosts

import "github.com/prometheus/client_golang/prometheus"

const (
	metricsNamespace = "clocker"
	metricsSubsystem = "host"
)

// Metrics are the fleet's gauges, labelled by host name only.
type Metrics struct {
	healthy    *prometheus.GaugeVec
	containers *prometheus.GaugeVec
	passive    *prometheus.CounterVec
	requests   *prometheus.CounterVec
}

// NewMetrics registers the fleet's gauges on reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "healthy", Help: "1 when the host answers and its cache is in sync, else 0.",
		}, []string{"host"}),
		containers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "containers", Help: "Containers on the host (all states), from the cache.",
		}, []string{"host"}),
		passive: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "passive_failures_total", Help: "Calls forwarded to the host that failed at the transport.",
		}, []string{"host"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "requests_total", Help: "Calls sent to the host's engine: forwarded, hijacked and Clocker's own (cache reads), not the health checks.",
		}, []string{"host"}),
	}
	if reg != nil {
		reg.MustRegister(m.healthy, m.containers, m.passive, m.requests)
	}
	return m
}

func (m *Metrics) setHealth(host string, ok bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.healthy.WithLabelValues(host).Set(v)
}

func (m *Metrics) setContainers(host string, n int) {
	if m == nil {
		return
	}
	m.containers.WithLabelValues(host).Set(float64(n))
}

// forgetHost drops a removed host's series.
func (m *Metrics) forgetHost(host string) {
	if m == nil {
		return
	}
	m.healthy.DeleteLabelValues(host)
	m.containers.DeleteLabelValues(host)
	m.passive.DeleteLabelValues(host)
	m.requests.DeleteLabelValues(host)
}

func (m *Metrics) passiveFailure(host string) {
	if m == nil {
		return
	}
	m.passive.WithLabelValues(host).Inc()
}

func (m *Metrics) request(host string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(host).Inc()
}
