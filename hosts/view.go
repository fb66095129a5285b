package hosts

import (
	"maps"
	"net"
	"strings"
	"time"

	"github.com/clocker/clocker/internal/labels"
)

// How a host and its containers look to users (`docker info`, the fleet
// API, events, ingress): one place, so every answer agrees.

// Addr is the engine's address as users know it: HOST:PORT, or the
// socket's URL.
func (e Endpoint) Addr() string {
	if e.Network == "tcp" {
		return e.Address
	}
	return e.URL
}

// IP is the engine's IP address (loopback for a local socket).
func (e Endpoint) IP() string {
	if e.Network == "tcp" {
		if ip, _, err := net.SplitHostPort(e.Address); err == nil {
			return ip
		}
	}
	return "127.0.0.1"
}

// IsAgent tells Clocker's own agent containers from the user's: they take
// no slot, keep no host busy and are not listed.
func IsAgent(c *Container) bool { return c.Summary.Labels[labels.Agent] != "" }

// UserContainers leaves the agent containers out, as `docker ps` counts.
func UserContainers(all []Container) []Container {
	out := make([]Container, 0, len(all))
	for i := range all {
		if !IsAgent(&all[i]) {
			out = append(out, all[i])
		}
	}
	return out
}

// Reservations sums what containers reserve with --cpus and -m.
func Reservations(cs []Container) (nanoCPUs, memory int64) {
	for _, c := range cs {
		nanoCPUs += c.NanoCPUs
		memory += c.Memory
	}
	return nanoCPUs, memory
}

// EngineLabels are the labels the engine was started with (dockerd
// --label k=v), as a map.
func (f Facts) EngineLabels() map[string]string {
	m := make(map[string]string, len(f.Labels)+3)
	for _, kv := range f.Labels {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// State names the host's state for users: pending (not answered yet),
// healthy, unhealthy or draining.
func (h *Host) State() string {
	switch {
	case h.Draining():
		return "draining"
	case h.Healthy():
		return "healthy"
	case h.LastError() == nil:
		return "pending"
	default:
		return "unhealthy"
	}
}

// Status is one host as the fleet API lists it (GET /v1/fleet/hosts),
// with Docker-style names.
type Status struct {
	Name        string
	Address     string
	Provisioner string
	// State is pending (not answered yet), healthy, unhealthy or draining.
	State          string
	Containers     int
	NCPU           int
	ReservedCPUs   float64
	MemTotal       int64
	ReservedMemory int64
	// Labels are the engine's labels with Clocker's own over them.
	Labels map[string]string
	// EngineLabels and ClockerLabels are the two sources apart.
	EngineLabels  map[string]string
	ClockerLabels map[string]string
	ServerVersion string `json:",omitempty"`
	Error         string `json:",omitempty"`
	Added         time.Time
}

// Status is the host as the fleet API lists it; its containers are the
// user's, as `docker ps` counts them.
func (h *Host) Status() Status {
	f := h.Facts()
	cs := UserContainers(h.Containers())
	cpus, mem := Reservations(cs)
	engine := f.EngineLabels()
	all := maps.Clone(engine)
	maps.Copy(all, h.Labels())
	out := Status{
		Name: h.Name, Address: h.URL, Provisioner: h.Provisioner, State: h.State(),
		Containers: len(cs), NCPU: f.NCPU, ReservedCPUs: float64(cpus) / 1e9,
		MemTotal: f.MemTotal, ReservedMemory: mem,
		Labels: all, EngineLabels: engine, ClockerLabels: h.Labels(),
		ServerVersion: f.Version, Added: h.Added,
	}
	if out.ClockerLabels == nil {
		out.ClockerLabels = map[string]string{}
	}
	if err := h.LastError(); err != nil && !h.Healthy() {
		out.Error = err.Error()
	}
	return out
}

// PendingStatus is a host a provisioner is still making, not in the
// fleet yet.
func PendingStatus(name, url, provisioner string) Status {
	return Status{Name: name, Address: url, Provisioner: provisioner, State: "pending",
		Labels: map[string]string{}, EngineLabels: map[string]string{}, ClockerLabels: map[string]string{}}
}
