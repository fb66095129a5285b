package scheduler

import (
	"fmt"
	"strings"

	lbl "github.com/clocker/clocker/internal/labels"
)

// The replicas of one compose service (containers with the same compose
// project and service labels, `compose run` ones aside) go to different
// hosts where possible: a soft anti-affinity, ranked before the chain. The
// label io.clocker.replicas makes it hard or turns it off.
const (
	LabelReplicas = lbl.Replicas
	// ReplicasSpread (the default) prefers hosts with fewest replicas.
	ReplicasSpread = "spread"
	// ReplicasHard turns down hosts that run a replica.
	ReplicasHard = "hard"
	// ReplicasOff leaves replicas to the chain.
	ReplicasOff = "off"

	RankerReplicas = "compose-replicas"
	FilterReplicas = "compose-replicas"
)

// parseReplicas reads the label io.clocker.replicas: "" unless the
// container is a compose service's replica, else its mode.
func parseReplicas(labels map[string]string) (string, error) {
	mode := ReplicasSpread
	if raw, ok := labels[LabelReplicas]; ok {
		switch v := strings.TrimSpace(raw); v {
		case ReplicasSpread, ReplicasHard, ReplicasOff:
			mode = v
		default:
			return "", fmt.Errorf("invalid label %s=%q: want %s, %s or %s", LabelReplicas, raw, ReplicasSpread, ReplicasHard, ReplicasOff)
		}
	}
	if _, _, ok := serviceOf(labels); !ok || mode == ReplicasOff {
		return "", nil
	}
	return mode, nil
}

// serviceOf is the compose project and service of a replica.
func serviceOf(labels map[string]string) (project, service string, ok bool) {
	return lbl.ComposeReplica(labels)
}

// replicasOn counts the host's replicas of req's service and names one.
func replicasOn(req *Request, n *Node) (int, string) {
	project, service, _ := serviceOf(req.Labels)
	k, name := 0, ""
	for i := range n.Items {
		p, s, ok := serviceOf(n.Items[i].Labels)
		if ok && p == project && s == service {
			k++
			name = n.Items[i].Name
		}
	}
	return k, name
}

// replicaSpread ranks hosts with fewer replicas of the service first.
var replicaSpread = nodeRanker{name: RankerReplicas, score: func(req *Request, n *Node) float64 {
	if req.Replicas == "" {
		return 0
	}
	k, _ := replicasOn(req, n)
	return -float64(k)
}}

// replicaFilter turns down the hosts running a replica when the spread is
// hard.
type replicaFilter struct{}

func (replicaFilter) Name() string { return FilterReplicas }

func (replicaFilter) Keep(req *Request, n *Node) (bool, Reason) {
	if req.Replicas != ReplicasHard {
		return true, ""
	}
	if k, name := replicasOn(req, n); k > 0 {
		project, service, _ := serviceOf(req.Labels)
		return false, Reason(fmt.Sprintf("runs %s, a replica of compose service %s/%s (%s=%s)", name, project, service, LabelReplicas, ReplicasHard))
	}
	return true, ""
}
