package provision

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	metricsNamespace = "clocker"
	metricsSubsystem = "fleet"
)

// Metrics are provisioning's counters and the headroom sensors.
type Metrics struct {
	provisions *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	// The headroom sensors, as Clocker's autoscaler policy had them.
	hosts       prometheus.Gauge
	slots       prometheus.Gauge
	available   prometheus.Gauge
	needed      prometheus.Gauge
	utilisation prometheus.Gauge
	hot, cold   prometheus.Gauge
}

// NewMetrics registers the metrics on reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help})
	}
	m := &Metrics{
		provisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "provisions_total", Help: "Hosts provisioned, by provisioner and result (ok, error).",
		}, []string{"provisioner", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "provision_seconds", Help: "Time to provision a host until it takes containers.",
			Buckets: []float64{1, 2, 5, 10, 15, 30, 60, 120, 300},
		}, []string{"provisioner"}),
		hosts:       g("headroom_hosts", "Hosts counted by the headroom policy (healthy, not draining, and being provisioned)."),
		slots:       g("headroom_slots", "Container slots: max-containers-per-host × hosts."),
		available:   g("headroom_available", "Slots not taken by containers."),
		needed:      g("headroom_needed", "Slots missing to reach the headroom (0 when there is enough)."),
		utilisation: g("utilisation", "Containers / slots."),
		hot:         g("hot", "1 when available slots are below the headroom (the fleet wants to grow)."),
		cold:        g("cold", "1 when available slots exceed the headroom by a host's worth (the fleet may shrink)."),
	}
	if reg != nil {
		reg.MustRegister(m.provisions, m.duration, m.hosts, m.slots, m.available, m.needed, m.utilisation, m.hot, m.cold)
	}
	return m
}

func (m *Metrics) observe(driver string, start time.Time, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		m.duration.WithLabelValues(driver).Observe(time.Since(start).Seconds())
	}
	m.provisions.WithLabelValues(driver, result).Inc()
}

func (m *Metrics) sense(s Sensors) {
	if m == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.hosts.Set(float64(s.Hosts))
	m.slots.Set(float64(s.Slots))
	m.available.Set(float64(s.Available))
	m.needed.Set(float64(s.Needed))
	m.utilisation.Set(s.Utilisation)
	m.hot.Set(b(s.Hot))
	m.cold.Set(b(s.Cold))
}
