package scheduler

import "fmt"

// Kind is what a request places.
type Kind int

// The kinds of request. Containers are the zero value.
const (
	// KindContainer is a container create: every filter, the chain's
	// rankers, a reservation.
	KindContainer Kind = iota
	// KindVolume and KindNetwork are a volume or a per-host network:
	// they go where their compose project already is, else where the
	// chain puts them, the host with fewest of the kind among equals.
	KindVolume
	KindNetwork
	// KindBuild is an image build: it goes where its base images are,
	// else where the chain puts it.
	KindBuild
)

func (k Kind) String() string {
	switch k {
	case KindContainer:
		return "container"
	case KindVolume:
		return "volume"
	case KindNetwork:
		return "network"
	case KindBuild:
		return "build"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Ranker names of the kinds' own rankers, in Decision scores.
const (
	RankerProject    = "compose-project"
	RankerObjects    = "fewest-objects"
	RankerBaseImages = "base-images"
)

// rankersFor is the chain's rankers (the request's own chain's when it
// has rankers) with those of the request's kind around them.
func (s *Strategy) rankersFor(req *Request) []Ranker {
	if req.Chain != nil && len(req.Chain.rankers) > 0 {
		return rankersOf(req, req.Chain.rankers)
	}
	switch req.Kind {
	case KindContainer:
		if req.Replicas != "" {
			return s.replicaRankers
		}
	case KindVolume, KindNetwork:
		return s.objectRankers
	case KindBuild:
		return s.buildRankers
	}
	return s.chain.rankers
}

// kindRankers puts a kind's rankers around a chain's: locality first (it
// decides), the chain's next, fewest objects of the kind last (among
// equally busy hosts objects spread too).
func kindRankers(k Kind, chain []Ranker) []Ranker {
	switch k {
	case KindVolume, KindNetwork:
		out := make([]Ranker, 0, len(chain)+2)
		out = append(out, projectLocality)
		out = append(out, chain...)
		return append(out, fewestObjects)
	case KindBuild:
		out := make([]Ranker, 0, len(chain)+1)
		out = append(out, baseImageLocality)
		return append(out, chain...)
	}
	return chain
}

// rankersOf is kindRankers for a request: a compose service's replica
// spreads first (see replicas.go).
func rankersOf(req *Request, chain []Ranker) []Ranker {
	if req.Kind == KindContainer && req.Replicas != "" {
		return append([]Ranker{replicaSpread}, chain...)
	}
	return kindRankers(req.Kind, chain)
}

var (
	// projectLocality puts a compose project's volume or network on the
	// host that holds most of the project: compose creates a project's
	// networks, then its volumes, then its containers, and the volumes
	// and per-host networks of one container must meet on one host.
	projectLocality = nodeRanker{name: RankerProject, score: func(req *Request, n *Node) float64 {
		if req.Project == "" {
			return 0
		}
		return float64(n.ProjectObjects)
	}}
	// fewestObjects prefers the host with fewest volumes (or networks).
	fewestObjects = nodeRanker{name: RankerObjects, score: func(_ *Request, n *Node) float64 {
		return -float64(n.Objects)
	}}
	// baseImageLocality puts a build where the most of its base images
	// are: it pulls nothing, and `docker run` of the result lands there
	// too.
	baseImageLocality = nodeRanker{name: RankerBaseImages, score: func(_ *Request, n *Node) float64 {
		return float64(n.BaseImages)
	}}
)
