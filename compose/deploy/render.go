package deploy

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// String renders the plan as the golden files hold it: one object per
// line, each container with what its create asks, maps sorted.
func (p *Plan) String() string {
	var b strings.Builder
	w := func(indent int, format string, a ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, a...)
		b.WriteByte('\n')
	}
	w(0, "project %s (working dir %s)", p.Project, p.WorkingDir)
	for _, n := range p.Networks {
		if n.External {
			w(0, "network %s: external %s", n.Key, n.Name)
			continue
		}
		w(0, "network %s: %s driver=%q labels %s", n.Key, n.Name, n.Create.Driver, kv(n.Create.Labels))
	}
	for _, v := range p.Volumes {
		if v.External {
			w(0, "volume %s: external %s", v.Key, v.Name)
			continue
		}
		w(0, "volume %s: %s driver=%q labels %s", v.Key, v.Name, v.Create.Driver, kv(v.Create.Labels))
	}
	for _, s := range p.Services {
		w(0, "service %s: %d replicas", s.Name, len(s.Containers))
		for _, d := range s.DependsOn {
			w(1, "after %s %s (required %t)", d.Service, d.Condition, d.Required)
		}
		for _, c := range s.Containers {
			cfg, hc := c.Create.Config, c.Create.HostConfig
			w(1, "container %s image %s", c.Create.Name, cfg.Image)
			if len(cfg.Entrypoint) > 0 {
				w(2, "entrypoint %q", []string(cfg.Entrypoint))
			}
			if len(cfg.Cmd) > 0 {
				w(2, "cmd %q", []string(cfg.Cmd))
			}
			if len(cfg.Env) > 0 {
				w(2, "env %q", cfg.Env)
			}
			w(2, "labels %s", kv(cfg.Labels))
			if h := cfg.Healthcheck; h != nil {
				w(2, "healthcheck %q interval %s timeout %s retries %d start %s", h.Test, h.Interval, h.Timeout, h.Retries, h.StartPeriod)
			}
			w(2, "network mode %s", hc.NetworkMode)
			if nc := c.Create.NetworkingConfig; nc != nil {
				for _, name := range slices.Sorted(maps.Keys(nc.EndpointsConfig)) {
					ep := nc.EndpointsConfig[name]
					w(2, "network %s aliases %q", name, ep.Aliases)
				}
			}
			for _, m := range hc.Mounts {
				w(2, "mount %s %s -> %s ro=%t", m.Type, m.Source, m.Target, m.ReadOnly)
			}
			for _, bind := range hc.Binds {
				w(2, "bind %s", bind)
			}
			var ports []string
			for p, bs := range hc.PortBindings {
				for _, pb := range bs {
					ports = append(ports, fmt.Sprintf("%s:%s", hostPort(pb), p))
				}
			}
			sort.Strings(ports)
			if len(ports) > 0 {
				w(2, "ports %s", strings.Join(ports, " "))
			}
			if hc.RestartPolicy.Name != "" {
				w(2, "restart %s max %d", hc.RestartPolicy.Name, hc.RestartPolicy.MaximumRetryCount)
			}
			if r := hc.Resources; r.Memory != 0 || r.NanoCPUs != 0 || r.MemoryReservation != 0 {
				w(2, "resources memory %d cpus %g reservation %d", r.Memory, float64(r.NanoCPUs)/1e9, r.MemoryReservation)
			}
		}
	}
	return b.String()
}

func hostPort(b network.PortBinding) string {
	if b.HostIP.IsValid() {
		return b.HostIP.String() + ":" + b.HostPort
	}
	return b.HostPort
}

func kv(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
