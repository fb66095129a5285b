// Package scheduler places containers on hosts. It is pure: it sees a
// snapshot of the fleet and a request, does no I/O, and explains every host
// it turns down.
//
//	Request + []Node ─► filters (each drops nodes with a reason) ─► ranker ─► host
//
// Front door I ships one strategy, "spread"; the full set of strategies,
// constraints and affinities arrives with the placement issue.
package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Node is what placement knows of one host.
type Node struct {
	Name    string
	Healthy bool
	// Containers counts the host's containers (all states).
	Containers int
	// HasImage: the host holds the request's image.
	HasImage bool
}

// Request is one container to place.
type Request struct {
	// Image as the user named it; used in errors.
	Image string
	// Pins are hosts the container must run on, each with why (a named
	// volume, --volumes-from, --link, --network container:X, a network).
	Pins []Pin
}

// Pin ties a request to one host.
type Pin struct {
	Host   string
	Reason string
}

// Reason says why a filter turned a host down.
type Reason string

// Reasons filters give.
const (
	ReasonUnhealthy Reason = "unhealthy"
	ReasonNoImage   Reason = "image not present"
	ReasonPinned    Reason = "pinned elsewhere"
)

// Filter drops the nodes a request cannot use.
type Filter interface {
	Name() string
	Keep(req *Request, n *Node) (ok bool, why Reason)
}

// Ranker orders feasible nodes, best first.
type Ranker interface {
	Name() string
	Rank(req *Request, nodes []*Node)
}

// NoHostFitsError lists, per host, why none could take the request.
type NoHostFitsError struct {
	Rejected map[string]Reason
	// ImageMissing is set when some host failed only for lack of the
	// image: the proxy answers Docker's "No such image" so the client pulls.
	ImageMissing bool
	Image        string
	Detail       string
}

func (e *NoHostFitsError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	names := make([]string, 0, len(e.Rejected))
	for n := range e.Rejected {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s: %s", n, e.Rejected[n])
	}
	if len(parts) == 0 {
		return "no host fits: the fleet has no hosts"
	}
	return "no host fits: " + strings.Join(parts, "; ")
}

// Strategy is a named chain of filters and a ranker.
type Strategy struct {
	Name    string
	Filters []Filter
	Ranker  Ranker
}

// strategies maps names to constructors.
var strategies = map[string]func() *Strategy{
	"spread": NewSpread,
}

// New returns the named strategy, or an error naming the known ones.
func New(name string) (*Strategy, error) {
	mk, ok := strategies[name]
	if !ok {
		known := make([]string, 0, len(strategies))
		for k := range strategies {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown placement strategy %q (known: %s)", name, strings.Join(known, ", "))
	}
	return mk(), nil
}

// NewSpread builds the spread strategy: healthy hosts, the pinned host if
// any, hosts holding the image; fewest containers first.
func NewSpread() *Strategy {
	return &Strategy{
		Name: "spread",
		Filters: []Filter{
			healthFilter{}, // a host that does not answer takes nothing
			pinFilter{},    // volumes, links and networks live on one host
			imageFilter{},  // never pull during create: the client pulls on 404
		},
		Ranker: fewestContainers{},
	}
}

// Place picks the host for req among nodes.
func (s *Strategy) Place(req Request, nodes []Node) (string, error) {
	if err := checkPins(req.Pins); err != nil {
		return "", err
	}
	rejected := map[string]Reason{}
	var feasible []*Node
	for i := range nodes {
		n := &nodes[i]
		ok := true
		for _, f := range s.Filters {
			if keep, why := f.Keep(&req, n); !keep {
				rejected[n.Name] = why
				ok = false
				break
			}
		}
		if ok {
			feasible = append(feasible, n)
		}
	}
	if len(feasible) == 0 {
		e := &NoHostFitsError{Rejected: rejected, Image: req.Image}
		// Filters run health, pin, image: a host turned down for the image
		// alone could run the container once the image is pulled there.
		e.ImageMissing = slices.Contains(slices.Collect(maps.Values(rejected)), ReasonNoImage)
		return "", e
	}
	s.Ranker.Rank(&req, feasible)
	return feasible[0].Name, nil
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

type healthFilter struct{}

func (healthFilter) Name() string { return "health" }
func (healthFilter) Keep(_ *Request, n *Node) (bool, Reason) {
	return n.Healthy, ReasonUnhealthy
}

type pinFilter struct{}

func (pinFilter) Name() string { return "pin" }
func (pinFilter) Keep(req *Request, n *Node) (bool, Reason) {
	if len(req.Pins) == 0 || req.Pins[0].Host == n.Name {
		return true, ""
	}
	return false, Reason(fmt.Sprintf("%s: %s is on host %s", ReasonPinned, req.Pins[0].Reason, req.Pins[0].Host))
}

type imageFilter struct{}

func (imageFilter) Name() string { return "image" }
func (imageFilter) Keep(_ *Request, n *Node) (bool, Reason) {
	return n.HasImage, ReasonNoImage
}

type fewestContainers struct{}

func (fewestContainers) Name() string { return "fewest-containers" }
func (fewestContainers) Rank(_ *Request, nodes []*Node) {
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Containers < nodes[j].Containers })
}
