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
	}
	if reg != nil {
		reg.MustRegister(m.healthy, m.containers)
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
