// Package scheduler places containers, volumes, networks and builds on
// hosts. It is pure: it sees a snapshot of the fleet and a request, does no
// I/O, and explains every host it turns down. A Ledger holds the
// reservations of decided creates until the snapshot shows them.
//
//	Request + []Node
//	   │
//	   ▼ always-on filters (health, pin, allow, constraint, affinity, rule, compose replicas, ports, resources)
//	   ▼ the fleet chain's filters (max-containers, label, hostname, …)
//	   ▼ the container's own chain's filters (io.clocker.strategy)
//	   ▼ image (last: a host turned down only for the image fits once it pulls)
//	   ▼ soft constraints and affinities (dropped when no host meets them)
//	   ▼ rankers, in chain order: the first decides, the next break its ties
//	     (a compose service's replicas: fewest of them first;
//	     volumes and networks: compose-project locality first, fewest
//	     objects of the kind last; builds: base-image locality first)
//	   ▼ round-robin among hosts still equal (breadth-first)
//	Decision: ranked hosts with scores, and a reason for every host turned down
//
// A strategy chain is written as the user gives it to --strategy:
// "max-containers=12,breadth-first". See strategies.go for the elements,
// expr.go for Swarm's constraint and affinity expressions and rules.go for
// Clocker's affinity rules.
package scheduler

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// Node is what placement knows of one host: a snapshot, read only.
type Node struct {
	Name string
	// Healthy: the engine answers and the cache is in sync.
	Healthy bool
	// Draining: the host is leaving the fleet and takes nothing new.
	Draining bool
	// Provisioning: the host is being set up (pending) and cannot run
	// containers yet.
	Provisioning bool
	// Labels are the engine's labels (dockerd --label k=v), plus the
	// attributes Swarm matched as labels: storagedriver, kernelversion,
	// operatingsystem.
	Labels map[string]string
	// NCPU and MemTotal are the host's totals (0: unknown, no limit).
	NCPU     int
	MemTotal int64
	// ReservedMemory and ReservedNanoCPUs sum what the host's containers
	// (and pending creates) reserve with -m, --cpus and -c.
	ReservedMemory, ReservedNanoCPUs int64
	// Running counts the containers that are load: every state but exited
	// and dead (stopped containers take no CPU or memory).
	Running int
	// Containers counts every container of the host, in any state, with
	// the pending creates.
	Containers int
	// Pending counts the creates decided for this host that its cache does
	// not show yet; they are already in the counts above.
	Pending int
	// Usage is the host's sampled CPU and memory use.
	Usage Usage
	// HasImage: the host holds the request's image.
	HasImage bool
	// Ports are the host ports in use (published by its containers).
	Ports map[Port]struct{}
	// PortReplicas names, for a port held only by replicas of one compose
	// service, that service (see labels.ComposeReplicaOf): a create of
	// the service may take the port over, since compose creates a
	// service's new container before it stops the old one and an engine
	// binds ports at start. Set with HoldPort.
	PortReplicas map[Port]string
	// Items are the host's containers, for affinities and groups.
	Items []Container

	// What the caller counted for one request of another kind than a
	// container (the scheduler cannot look it up: it does no I/O).

	// ProjectObjects counts what the host holds of the request's compose
	// project (containers, volumes, networks): volume and network
	// requests.
	ProjectObjects int
	// Objects counts the host's objects of the request's kind (its
	// volumes, or its networks): volume and network requests.
	Objects int
	// BaseImages scores what the host holds of a build's images, its base
	// images first, then its cache sources and its tags (see
	// placement.PlaceBuild): build requests.
	BaseImages int
}

// HoldPort records that a container, a replica of the compose service
// replicaOf ("" for none), holds host port p.
func (n *Node) HoldPort(p Port, replicaOf string) {
	if n.Ports == nil {
		n.Ports = map[Port]struct{}{}
	}
	_, held := n.Ports[p]
	n.Ports[p] = struct{}{}
	if replicaOf == "" || (held && n.PortReplicas[p] != replicaOf) {
		delete(n.PortReplicas, p)
		return
	}
	if n.PortReplicas == nil {
		n.PortReplicas = map[Port]string{}
	}
	n.PortReplicas[p] = replicaOf
}

// Usage is a host's measured use, sampled every few seconds.
type Usage struct {
	// Known: at least one sample was taken.
	Known bool
	// CPU is the fraction of the whole host in use (0..1).
	CPU float64
	// Memory is the bytes in use by containers.
	Memory int64
}

// Container is what affinities and groups need of one container.
type Container struct {
	ID, Name, Image string
	Labels          map[string]string
	// Group is the container's application: see GroupOf.
	Group string
}

// Port is a host port with its protocol ("tcp", "udp", "sctp").
type Port struct {
	Proto string
	Port  uint16
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Proto) }

// Request is one thing to place: a container (the zero Kind), a volume,
// a network or a build.
type Request struct {
	// Kind is what is placed.
	Kind Kind
	// Name and Image as the user gave them; used in errors and affinities.
	Name, Image string
	// Labels of the container.
	Labels map[string]string
	// Memory (bytes) and NanoCPUs (--cpus, or --cpu-quota over
	// --cpu-period) are what the container reserves. CPU shares (-c) are a
	// relative weight between containers and reserve nothing.
	Memory, NanoCPUs int64
	// Ports are the host ports the container publishes.
	Ports []Port
	// Constraints and Affinities are Swarm's expressions (hard or soft).
	Constraints, Affinities []Expr
	// Rules are Clocker's affinity rules (io.clocker.affinity).
	Rules []Rule
	// Pins are hosts the container must run on, each with why (a named
	// volume, --volumes-from, --link, --network container:X, a network).
	Pins []Pin
	// Allow are sets of hosts the container may run on, each with why the
	// others may not (a fleet network address only some hosts hand out);
	// a host must be in every set.
	Allow []Allow
	// Group is the container's application or compose project.
	Group string
	// Replicas is how a compose service's replicas spread (ReplicasSpread,
	// ReplicasHard); "" when the container is none or the spread is off.
	Replicas string
	// Chain is the container's own strategy (io.clocker.strategy): its
	// filters add to the fleet's, its rankers replace the fleet's.
	Chain *Chain
	// Project is a volume's or network's compose project: they go where
	// the project already is.
	Project string
	// BaseImages are the images a build starts FROM: it goes where they
	// are.
	BaseImages []string
}

// Pin ties a request to one host.
type Pin struct {
	Host   string
	Reason string
}

// Allow limits a request to some hosts. Reason says why a host outside
// Hosts cannot take it, as rejections show it.
type Allow struct {
	Hosts  map[string]bool
	Reason string
}

// Reason says, for a human, why a filter turned a host down.
type Reason string

// Filter drops the nodes a request cannot use. Name is a constant: it is
// the rejection's kind, in errors and metrics.
type Filter interface {
	Name() string
	Keep(req *Request, n *Node) (ok bool, why Reason)
}

// Ranker scores feasible nodes: higher is better. It sees them all at once
// (some rankers count across hosts, such as zones) and writes one score per
// node into scores.
type Ranker interface {
	Name() string
	Score(req *Request, nodes []*Node, scores []float64)
}

// roundRobin marks rankers whose equal hosts take turns.
type roundRobin interface{ RoundRobin() bool }

// Strategy is the fleet's placement: always-on filters, the chain the
// operator chose, and the overcommit ratio.
type Strategy struct {
	// Name is the chain as written (e.g. "max-containers=12,breadth-first").
	Name string
	// Filters are every filter a request meets, in order (for /info).
	Filters []Filter
	// Overcommit multiplies host totals for the resource filter.
	Overcommit float64

	chain *Chain
	base  []Filter // always-on, before the chains
	image Filter   // always last
	rr    atomic.Uint64
	// The fleet chain's rankers with those of each kind around them.
	objectRankers, buildRankers, replicaRankers []Ranker
}

// Option adjusts a strategy.
type Option func(*Strategy) error

// WithOvercommit lets reservations reach ratio × the host's totals.
func WithOvercommit(ratio float64) Option {
	return func(s *Strategy) error {
		if !(ratio > 0) || ratio > 1000 {
			return fmt.Errorf("overcommit ratio %v: want a number above 0 (1.0: reserve no more than the host has)", ratio)
		}
		s.Overcommit = ratio
		return nil
	}
}

// New builds the strategy for a chain such as "spread" or
// "max-containers=12,breadth-first"; unknown names and bad options are
// errors that list what is known.
func New(spec string, opts ...Option) (*Strategy, error) {
	c, err := ParseChain(spec)
	if err != nil {
		return nil, err
	}
	s := &Strategy{Name: c.String(), Overcommit: 1, chain: c}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.base = []Filter{
		healthFilter{},                      // a host that does not answer takes nothing
		pinFilter{},                         // volumes, links and networks live on one host
		allowFilter{},                       // hosts that can hand out an asked-for address
		constraintFilter{},                  // Swarm's constraint:KEY==VALUE (hard)
		affinityFilter{},                    // Swarm's affinity:container==X (hard)
		ruleFilter{},                        // Clocker's [NOT] TYPE|NAME|ID|APPLICATION|EMPTY
		replicaFilter{},                     // io.clocker.replicas=hard: one replica a host
		portFilter{},                        // a published host port taken there
		resourceFilter{ratio: s.Overcommit}, // memory, CPUs, containerslots
	}
	s.image = imageFilter{} // never pull during create: the client pulls on 404
	s.Filters = append(append(slices.Clone(s.base), c.filters...), s.image)
	s.objectRankers = kindRankers(KindVolume, c.rankers)
	s.buildRankers = kindRankers(KindBuild, c.rankers)
	s.replicaRankers = append([]Ranker{replicaSpread}, c.rankers...)
	return s, nil
}

// NewSpread builds the default strategy, "spread".
func NewSpread() *Strategy {
	s, err := New("spread")
	if err != nil {
		panic(err)
	}
	return s
}

// NeedsUsage reports whether the chain reads sampled CPU or memory use, so
// the caller samples it only then.
func (s *Strategy) NeedsUsage() bool { return s.chain.needsUsage }

// Decision is a placement's outcome, explained.
type Decision struct {
	// Strategy is the chain that ranked the hosts.
	Strategy string `json:"Strategy"`
	// Hosts are the feasible hosts, best first.
	Hosts []Candidate `json:"Hosts"`
	// Rejected are the hosts turned down, in the fleet's order.
	Rejected []Rejection `json:"Rejected"`
}

// Candidate is a feasible host with its scores, one per ranker in order.
type Candidate struct {
	Host   string  `json:"Host"`
	Scores []Score `json:"Scores"`
}

// Score is one ranker's score of a host (higher is better).
type Score struct {
	Ranker string  `json:"Ranker"`
	Value  float64 `json:"Value"`
}

// Rejection is why a host was turned down: the filter (a constant kind)
// and the reason in words.
type Rejection struct {
	Host   string `json:"Host"`
	Filter string `json:"Filter"`
	Reason Reason `json:"Reason"`
}

// Place picks the host for req among nodes.
func (s *Strategy) Place(req Request, nodes []Node) (string, error) {
	d, err := s.Decide(&req, nodes)
	if err != nil {
		return "", err
	}
	return d.Hosts[0].Host, nil
}

// Decide ranks the hosts for req; when none fits, the error is a
// *NoHostFitsError and the decision still says why each host was turned
// down. It takes a turn of the round-robin among equal hosts.
func (s *Strategy) Decide(req *Request, nodes []Node) (*Decision, error) {
	return s.decide(req, nodes, true)
}

// Explain is Decide without taking a turn: a dry run.
func (s *Strategy) Explain(req *Request, nodes []Node) (*Decision, error) {
	return s.decide(req, nodes, false)
}

func (s *Strategy) decide(req *Request, nodes []Node, turn bool) (*Decision, error) {
	d := &Decision{Strategy: s.Name}
	if req.Chain != nil {
		d.Strategy = req.Chain.String()
	}
	if err := checkPins(req.Pins); err != nil {
		return d, err
	}
	var extra []Filter
	if req.Chain != nil {
		extra = req.Chain.filters
	}
	feasible := make([]*Node, 0, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if f, why := s.firstFailing(req, n, extra); f != "" {
			d.Rejected = append(d.Rejected, Rejection{Host: n.Name, Filter: f, Reason: why})
			continue
		}
		feasible = append(feasible, n)
	}
	feasible = applySoft(req, feasible, d)
	if len(feasible) == 0 {
		return d, newNoHostFits(req, nodes, d.Rejected)
	}

	rankers := s.rankersFor(req)
	k := len(rankers)
	scores := make([]float64, k*len(feasible))
	col := make([]float64, len(feasible))
	rr := false
	for j, r := range rankers {
		clear(col)
		r.Score(req, feasible, col)
		for i, v := range col {
			scores[i*k+j] = v
		}
		if t, ok := r.(roundRobin); ok && t.RoundRobin() {
			rr = true
		}
	}
	order := make([]int, len(feasible))
	for i := range order {
		order[i] = i
	}
	less := func(a, b int) int {
		for j := 0; j < k; j++ {
			x, y := scores[a*k+j], scores[b*k+j]
			if x != y {
				if x > y {
					return -1
				}
				return 1
			}
		}
		return 0
	}
	slices.SortStableFunc(order, less)
	if rr && len(order) > 1 {
		// Hosts still equal after every ranker take turns, so that
		// stopped containers (which are not load) do not pile up on the
		// first host.
		top := 1
		for top < len(order) && less(order[0], order[top]) == 0 {
			top++
		}
		if top > 1 {
			var t uint64
			if turn {
				t = s.rr.Add(1) - 1
			} else {
				t = s.rr.Load()
			}
			pick := int(t % uint64(top))
			first := order[pick]
			copy(order[1:pick+1], order[:pick])
			order[0] = first
		}
	}
	d.Hosts = make([]Candidate, len(order))
	backing := make([]Score, k*len(order)) // one allocation, not one per host
	for i, idx := range order {
		c := Candidate{Host: feasible[idx].Name, Scores: backing[i*k : (i+1)*k : (i+1)*k]}
		for j, r := range rankers {
			c.Scores[j] = Score{Ranker: r.Name(), Value: scores[idx*k+j]}
		}
		d.Hosts[i] = c
	}
	return d, nil
}

// firstFailing runs the filters in order and returns the first that turns
// n down, with why.
func (s *Strategy) firstFailing(req *Request, n *Node, extra []Filter) (string, Reason) {
	for _, f := range s.base {
		if ok, why := f.Keep(req, n); !ok {
			return f.Name(), why
		}
	}
	for _, f := range s.chain.filters {
		if ok, why := f.Keep(req, n); !ok {
			return f.Name(), why
		}
	}
	for _, f := range extra {
		if ok, why := f.Keep(req, n); !ok {
			return f.Name(), why
		}
	}
	if ok, why := s.image.Keep(req, n); !ok {
		return s.image.Name(), why
	}
	return "", ""
}

// applySoft drops the hosts that miss a soft constraint or affinity, unless
// no host meets it: then it is ignored, as Swarm did.
func applySoft(req *Request, feasible []*Node, d *Decision) []*Node {
	for _, set := range []struct {
		exprs  []Expr
		filter string
		match  func(e *Expr, n *Node) bool
	}{
		{req.Constraints, FilterSoftConstraint, constraintHolds},
		{req.Affinities, FilterSoftAffinity, affinityHolds},
	} {
		for i := range set.exprs {
			e := &set.exprs[i]
			if !e.Soft {
				continue
			}
			keep := make([]*Node, 0, len(feasible))
			for _, n := range feasible {
				if set.match(e, n) {
					keep = append(keep, n)
				}
			}
			if len(keep) == 0 || len(keep) == len(feasible) {
				continue
			}
			for _, n := range feasible {
				if !set.match(e, n) {
					d.Rejected = append(d.Rejected, Rejection{Host: n.Name, Filter: set.filter,
						Reason: Reason(fmt.Sprintf("soft %s %s not met (other hosts meet it)", kindOf(set.filter), e))})
				}
			}
			feasible = keep
		}
	}
	return feasible
}

func kindOf(filter string) string {
	if filter == FilterSoftAffinity {
		return "affinity"
	}
	return "constraint"
}

// checkPins refuses a request tied to two different hosts.
func checkPins(pins []Pin) error {
	for _, p := range pins[min(1, len(pins)):] {
		if p.Host != pins[0].Host {
			return &NoHostFitsError{Detail: fmt.Sprintf(
				"no host fits: %s is on host %s but %s is on host %s; they cannot share a container",
				pins[0].Reason, pins[0].Host, p.Reason, p.Host)}
		}
	}
	return nil
}
