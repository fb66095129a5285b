package scheduler

import (
	"fmt"
	"strconv"

	"github.com/docker/go-units"

	lbl "github.com/clocker/clocker/internal/labels"
)

// Filter names: the kind of every rejection, in errors, the dry run and the
// rejections metric.
const (
	FilterHealth         = "health"
	FilterPin            = "pin"
	FilterAllow          = "allow"
	FilterConstraint     = "constraint"
	FilterAffinity       = "affinity"
	FilterRule           = "rule"
	FilterPort           = "port"
	FilterResources      = "resources"
	FilterImage          = "image"
	FilterSoftConstraint = "soft-constraint"
	FilterSoftAffinity   = "soft-affinity"
	FilterMaxContainers  = "max-containers"
	FilterMaxCPUUsage    = "max-cpu-usage"
	FilterLabel          = "label"
	FilterHostname       = "hostname"
	FilterGroup          = "group"
	FilterGeographic     = "geographic"
)

// SlotsLabel is the engine label that caps a host's containers.
const SlotsLabel = "containerslots"

type healthFilter struct{}

func (healthFilter) Name() string { return FilterHealth }
func (healthFilter) Keep(_ *Request, n *Node) (bool, Reason) {
	switch {
	case !n.Healthy:
		return false, "unhealthy"
	case n.Draining:
		return false, "draining"
	case n.Provisioning:
		return false, "still being provisioned"
	}
	return true, ""
}

type pinFilter struct{}

func (pinFilter) Name() string { return FilterPin }
func (pinFilter) Keep(req *Request, n *Node) (bool, Reason) {
	if len(req.Pins) == 0 || req.Pins[0].Host == n.Name {
		return true, ""
	}
	return false, Reason(fmt.Sprintf("pinned elsewhere: %s is on host %s", req.Pins[0].Reason, req.Pins[0].Host))
}

// allowFilter keeps the hosts that are in every set of Request.Allow.
type allowFilter struct{}

func (allowFilter) Name() string { return FilterAllow }
func (allowFilter) Keep(req *Request, n *Node) (bool, Reason) {
	for _, a := range req.Allow {
		if !a.Hosts[n.Name] {
			return false, Reason(a.Reason)
		}
	}
	return true, ""
}

// imageFilter turns down a host without a container's image; other kinds
// need none (a build prefers its base images: a ranker).
type imageFilter struct{}

func (imageFilter) Name() string { return FilterImage }
func (imageFilter) Keep(req *Request, n *Node) (bool, Reason) {
	if n.HasImage || req.Kind != KindContainer {
		return true, ""
	}
	if req.Image == "" {
		return false, "image not present"
	}
	return false, Reason("image " + req.Image + " not present")
}

// constraintFilter holds the hard Swarm constraints.
type constraintFilter struct{}

func (constraintFilter) Name() string { return FilterConstraint }
func (constraintFilter) Keep(req *Request, n *Node) (bool, Reason) {
	for i := range req.Constraints {
		e := &req.Constraints[i]
		if !e.Soft && !constraintHolds(e, n) {
			return false, Reason(fmt.Sprintf("constraint %s not met", e))
		}
	}
	return true, ""
}

// constraintHolds matches a constraint against the node's name (key
// "node") or one of its labels. A missing label matches nothing.
func constraintHolds(e *Expr, n *Node) bool {
	if e.Key == "node" {
		return e.holds(e.match(n.Name))
	}
	v, ok := n.Labels[e.Key]
	return e.holds(ok && e.match(v))
}

// affinityFilter holds the hard Swarm affinities.
type affinityFilter struct{}

func (affinityFilter) Name() string { return FilterAffinity }
func (affinityFilter) Keep(req *Request, n *Node) (bool, Reason) {
	for i := range req.Affinities {
		e := &req.Affinities[i]
		if !e.Soft && !affinityHolds(e, n) {
			return false, Reason(fmt.Sprintf("affinity %s not met", e))
		}
	}
	return true, ""
}

// affinityHolds: == wants a container on the node that matches (by name or
// ID for "container", by image for "image", else by the label KEY); !=
// wants none.
func affinityHolds(e *Expr, n *Node) bool {
	found := false
	for i := range n.Items {
		c := &n.Items[i]
		switch e.Key {
		case "container":
			found = e.match(c.Name) || e.match(c.ID) || (len(e.Value) >= 12 && len(c.ID) >= len(e.Value) && c.ID[:len(e.Value)] == e.Value)
		case "image":
			found = e.match(c.Image) || e.match(imageRepo(c.Image))
		default:
			v, ok := c.Labels[e.Key]
			found = ok && e.match(v)
		}
		if found {
			break
		}
	}
	return e.holds(found)
}

// ruleFilter holds Clocker's affinity rules.
type ruleFilter struct{}

func (ruleFilter) Name() string { return FilterRule }
func (ruleFilter) Keep(req *Request, n *Node) (bool, Reason) {
	for i := range req.Rules {
		if r := &req.Rules[i]; !r.Holds(req, n) {
			return false, Reason(fmt.Sprintf("affinity rule %q not met", r))
		}
	}
	return true, ""
}

// portFilter turns down a host where a host port the request publishes is
// taken, unless only replicas of the request's own compose service hold
// it (its replacement, created before the old one stops). (When published
// ports become fleet-wide with ingress, this rule gives way to that
// conflict error.)
type portFilter struct{}

func (portFilter) Name() string { return FilterPort }
func (portFilter) Keep(req *Request, n *Node) (bool, Reason) {
	replicaOf := ""
	if len(n.PortReplicas) > 0 {
		replicaOf = lbl.ComposeReplicaOf(req.Labels)
	}
	for _, p := range req.Ports {
		if _, used := n.Ports[p]; used && (replicaOf == "" || n.PortReplicas[p] != replicaOf) {
			return false, Reason(fmt.Sprintf("host port %s already in use", p))
		}
	}
	return true, ""
}

// resourceFilter keeps reservations within the host's totals times the
// overcommit ratio, and the container count within containerslots.
type resourceFilter struct{ ratio float64 }

func (resourceFilter) Name() string { return FilterResources }
func (f resourceFilter) Keep(req *Request, n *Node) (bool, Reason) {
	if req.Memory > 0 && n.MemTotal > 0 {
		capacity := int64(float64(n.MemTotal) * f.ratio)
		if free := capacity - n.ReservedMemory; req.Memory > free {
			return false, Reason(fmt.Sprintf("memory %s requested, %s free", units.BytesSize(float64(req.Memory)), units.BytesSize(float64(max(free, 0)))))
		}
	}
	if cpus := req.NanoCPUs; cpus > 0 && n.NCPU > 0 {
		capacity := int64(float64(n.NCPU) * 1e9 * f.ratio)
		if free := capacity - n.ReservedNanoCPUs; cpus > free {
			return false, Reason(fmt.Sprintf("%s CPUs requested, %s free", fmtCPUs(cpus), fmtCPUs(max(free, 0))))
		}
	}
	if s, ok := n.Labels[SlotsLabel]; ok {
		if slots, err := strconv.Atoi(s); err == nil && n.Containers >= slots {
			return false, Reason(fmt.Sprintf("%d containers fill its %s=%d", n.Containers, SlotsLabel, slots))
		}
	}
	return true, ""
}

func fmtCPUs(nano int64) string { return strconv.FormatFloat(float64(nano)/1e9, 'g', 4, 64) }
