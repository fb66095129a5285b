package ingress

import "github.com/prometheus/client_golang/prometheus"

const (
	metricsNamespace = "clocker"
	metricsSubsystem = "ingress"
)

var (
	descOpen = prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "forwards_open"),
		"Open ingress listeners, by protocol.", []string{"proto"}, nil)
	descConns = prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "connections_total"),
		"Connections (TCP) or client sessions (UDP) accepted by a forward.", []string{"port", "proto"}, nil)
	descActive = prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "connections_active"),
		"Connections or UDP sessions open through a forward.", []string{"port", "proto"}, nil)
	descBytes = prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "bytes_total"),
		"Bytes forwarded, by direction: in (client to container) or out; userland TCP bytes are added every 4 MiB and when a direction ends, kernel forwards count IP packets.", []string{"port", "proto", "direction"}, nil)
	descKernel = prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "kernel_forwards"),
		"Open forwards made in the kernel (iptables DNAT), by protocol; the others are in userland.", []string{"proto"}, nil)
)

// Collector exposes the counters of forwards, read at scrape time. Labels
// are the published port and protocol (bounded by the ports a fleet
// publishes), never a container.
type Collector struct{ F Forwards }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOpen
	ch <- descConns
	ch <- descActive
	ch <- descBytes
	ch <- descKernel
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	open := map[string]int{"tcp": 0, "udp": 0}
	kernel := map[string]int{"tcp": 0, "udp": 0}
	for k, st := range c.F.AllStats() {
		open[k.Proto]++
		if st.Kernel {
			kernel[k.Proto]++
		}
		port := k.portString()
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(st.Connections), port, k.Proto)
		if st.Active >= 0 {
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active), port, k.Proto)
		}
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.BytesIn), port, k.Proto, "in")
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.BytesOut), port, k.Proto, "out")
	}
	for proto, n := range open {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n), proto)
		ch <- prometheus.MustNewConstMetric(descKernel, prometheus.GaugeValue, float64(kernel[proto]), proto)
	}
}

var _ prometheus.Collector = Collector{}
