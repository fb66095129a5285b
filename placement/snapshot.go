package placement

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

// hostSnap is a host's node as of one cache generation: rebuilt only when
// the host's containers, facts or health change.
type hostSnap struct {
	gen  uint64
	node scheduler.Node
	// extra memoizes what only inspect tells (port bindings of containers
	// not running), by container ID and inspect body.
	extra map[string]inspectExtra
}

type inspectExtra struct {
	raw   []byte // the inspect body it was read from (identity)
	ports []scheduler.Port
}

// nodesLocked builds the fleet's nodes from the hosts' snapshots (the
// ledger folds in the pending creates). Called with p.mu held; the slice
// is reused by the next call (decisions are made one at a time and keep
// no reference to it), sparing the heap a thousand nodes per create.
func (p *Placer) nodesLocked(all []*hosts.Host, hasImage []bool, withUsage bool) []scheduler.Node {
	p.buf = slices.Grow(p.buf[:0], len(all))[:len(all)]
	out := p.buf
	for i, h := range all {
		gen := h.Generation()
		snap := p.snaps[h]
		if snap == nil || snap.gen != gen {
			snap = buildSnap(h, gen, snap)
			p.snaps[h] = snap
		}
		n := snap.node // a copy; its maps and slices stay shared and read only
		n.Healthy = h.Healthy()
		n.Draining = h.Draining()
		n.HasImage = hasImage[i]
		if withUsage {
			if u, ok := h.Usage(); ok {
				n.Usage = scheduler.Usage{Known: true, CPU: u.CPU, Memory: u.Memory}
			}
		}
		out[i] = n
	}
	if len(p.snaps) > len(all) { // a host left the fleet
		live := make(map[*hosts.Host]bool, len(all))
		for _, h := range all {
			live[h] = true
		}
		for h := range p.snaps {
			if !live[h] {
				delete(p.snaps, h)
			}
		}
	}
	return out
}

// buildSnap reads one host's cache into a node.
func buildSnap(h *hosts.Host, gen uint64, prev *hostSnap) *hostSnap {
	f := h.Facts()
	snap := &hostSnap{gen: gen, extra: map[string]inspectExtra{}}
	n := scheduler.Node{Name: h.Name, NCPU: f.NCPU, MemTotal: f.MemTotal, Labels: nodeLabels(h)}
	cs := h.Containers()
	n.Items = make([]scheduler.Container, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		if hosts.IsAgent(c) {
			continue
		}
		x := inspectExtraOf(c, prev)
		snap.extra[c.Summary.ID] = x
		n.Containers++
		n.ReservedMemory += c.Memory
		n.ReservedNanoCPUs += c.NanoCPUs // CPU shares are a weight: they reserve nothing
		state := c.Summary.State
		if state != container.StateExited && state != container.StateDead {
			n.Running++
		}
		var ports []scheduler.Port
		if state == container.StateCreated {
			ports = x.ports // not published until it starts, but it will be
		} else {
			for _, pt := range c.Summary.Ports {
				if pt.PublicPort != 0 {
					ports = append(ports, scheduler.Port{Proto: pt.Type, Port: pt.PublicPort})
				}
			}
		}
		if len(ports) > 0 {
			replicaOf := labels.ComposeReplicaOf(c.Summary.Labels)
			for _, pt := range ports {
				n.HoldPort(pt, replicaOf)
			}
		}
		name := ""
		if len(c.Summary.Names) > 0 {
			name = strings.TrimPrefix(c.Summary.Names[0], "/")
		}
		n.Items = append(n.Items, scheduler.Container{ID: c.Summary.ID, Name: name, Image: c.Summary.Image,
			Labels: c.Summary.Labels, Group: scheduler.GroupOf(c.Summary.Labels)})
	}
	snap.node = n
	return snap
}

// inspectExtraOf reads the port bindings from a container's
// cached inspect body, reusing the previous snapshot's answer when the body
// is the same one.
func inspectExtraOf(c *hosts.Container, prev *hostSnap) inspectExtra {
	if len(c.Inspect) == 0 {
		return inspectExtra{}
	}
	if prev != nil {
		if x, ok := prev.extra[c.Summary.ID]; ok && len(x.raw) == len(c.Inspect) && &x.raw[0] == &c.Inspect[0] {
			return x
		}
	}
	var in struct {
		HostConfig struct {
			PortBindings map[string][]struct{ HostPort string }
		}
	}
	x := inspectExtra{raw: c.Inspect}
	if json.Unmarshal(c.Inspect, &in) == nil {
		for key, bs := range in.HostConfig.PortBindings {
			_, proto, _ := strings.Cut(key, "/")
			for _, b := range bs {
				if p, ok := hostPort(b.HostPort, proto); ok {
					x.ports = append(x.ports, p)
				}
			}
		}
	}
	return x
}

// hostPort parses a binding's host port; ranges and "0" (any) take no one
// port.
func hostPort(s, proto string) (scheduler.Port, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return scheduler.Port{}, false
	}
	if proto == "" {
		proto = "tcp"
	}
	return scheduler.Port{Proto: proto, Port: uint16(n)}, true
}

// nodeLabels are the labels placement matches: the engine's, with the
// attributes Swarm matched as labels when the engine does not set them
// itself, and Clocker's own labels of the host over them.
func nodeLabels(h *hosts.Host) map[string]string {
	f := h.Facts()
	m := f.EngineLabels()
	var info struct{ Driver, KernelVersion, OperatingSystem string }
	if len(f.Info) > 0 && json.Unmarshal(f.Info, &info) == nil {
		for k, v := range map[string]string{"storagedriver": info.Driver, "kernelversion": info.KernelVersion, "operatingsystem": info.OperatingSystem} {
			if _, set := m[k]; !set && v != "" {
				m[k] = v
			}
		}
	}
	maps.Copy(m, h.Labels())
	return m
}
