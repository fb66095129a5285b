package fleetnet

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
)

// Fleet network metrics, computed when scraped: the networks from the
// allocator, their members from the hosts' caches, the DNS counts from
// what the agents last reported.
var (
	networksDesc = prometheus.NewDesc("clocker_fleetnet_networks",
		"Fleet networks.", nil, nil)
	networkHostsDesc = prometheus.NewDesc("clocker_fleetnet_network_hosts",
		"Member hosts of each fleet network.", []string{"network"}, nil)
	networkContainersDesc = prometheus.NewDesc("clocker_fleetnet_network_containers",
		"Containers (in any state) on each fleet network, on all hosts.", []string{"network"}, nil)
	dnsQueriesDesc = prometheus.NewDesc("clocker_fleetnet_dns_queries_total",
		"DNS queries to each host's agent since it started: answered with fleet names, or forwarded to the host's resolvers.",
		[]string{"host", "result"}, nil)
)

// collector is the controller's prometheus.Collector.
type collector struct{ c *Controller }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- networksDesc
	ch <- networkHostsDesc
	ch <- networkContainersDesc
	ch <- dnsQueriesDesc
}

func (col collector) Collect(ch chan<- prometheus.Metric) {
	c := col.c
	nets := c.alloc.List()
	ch <- prometheus.MustNewConstMetric(networksDesc, prometheus.GaugeValue, float64(len(nets)))
	containers := map[string]int{}
	for _, h := range c.fleet.Hosts() {
		countByNetwork(h.Containers(), containers)
	}
	for _, n := range nets {
		ch <- prometheus.MustNewConstMetric(networkHostsDesc, prometheus.GaugeValue, float64(len(n.Hosts)), n.Name)
		ch <- prometheus.MustNewConstMetric(networkContainersDesc, prometheus.GaugeValue, float64(containers[n.Name]), n.Name)
	}
	a := c.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	for host, ah := range a.hosts {
		if ah.id == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(dnsQueriesDesc, prometheus.CounterValue, float64(ah.stats.Answered), host, "answered")
		ch <- prometheus.MustNewConstMetric(dnsQueriesDesc, prometheus.CounterValue, float64(ah.stats.Forwarded), host, "forwarded")
	}
}

// countByNetwork adds the containers of cs (the agents left out) to the
// count of each network they are on, by network name.
func countByNetwork(cs []hosts.Container, counts map[string]int) {
	for i := range cs {
		if cs[i].Summary.NetworkSettings == nil || hosts.IsAgent(&cs[i]) {
			continue
		}
		for name := range cs[i].Summary.NetworkSettings.Networks {
			counts[name]++
		}
	}
}
