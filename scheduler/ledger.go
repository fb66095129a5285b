package scheduler

import (
	"maps"
	"slices"
	"sync"

	lbl "github.com/clocker/clocker/internal/labels"
)

// Ledger holds the reservations of decided creates that the fleet's
// snapshot does not show yet, so that concurrent creates never book the
// same room twice: Decide folds every reservation into the nodes, decides
// and reserves the chosen host as one step. It is safe for concurrent use.
//
//	nodes (snapshot) ─► Fold (+ reservations) ─► Strategy.Decide ─► Reserve
//	                                    (one step under the ledger's lock)
//	... the create reaches the engine, the snapshot shows it ─► Release
type Ledger struct {
	mu      sync.Mutex
	pending map[string][]*Reservation // by host name
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{pending: map[string][]*Reservation{}}
}

// Reservation is a placed request its host's snapshot does not show yet:
// the room it takes there.
type Reservation struct {
	host             string
	memory, nanoCPUs int64
	ports            []Port
	item             Container
}

// Host is the host the reservation holds room on.
func (r *Reservation) Host() string { return r.host }

// Reserve holds room for req on host until Release.
func (l *Ledger) Reserve(host string, req *Request) *Reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserveLocked(host, req)
}

func (l *Ledger) reserveLocked(host string, req *Request) *Reservation {
	// The labels are copied: other decisions read them while the caller
	// goes on labelling its container.
	r := &Reservation{host: host, memory: req.Memory, nanoCPUs: req.NanoCPUs, ports: slices.Clone(req.Ports),
		item: Container{Name: req.Name, Image: req.Image, Labels: maps.Clone(req.Labels), Group: req.Group}}
	l.pending[host] = append(l.pending[host], r)
	return r
}

// Release gives a reservation back: once the host's snapshot shows the
// container, or the create failed. Releasing nil or twice does nothing.
func (l *Ledger) Release(r *Reservation) {
	if r == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := l.pending[r.host]
	i := slices.Index(rs, r)
	if i < 0 {
		return
	}
	rs = append(rs[:i:i], rs[i+1:]...)
	if len(rs) == 0 {
		delete(l.pending, r.host)
	} else {
		l.pending[r.host] = rs
	}
}

// Name gives a reservation its container's name, once that name is held
// fleet-wide: from then on a snapshot showing a container of that name
// shows this one, and the reservation is counted once. Until then it is
// always counted.
func (l *Ledger) Name(r *Reservation, name string) {
	if r == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.item.Name = name
}

// Pending counts the reservations held on host.
func (l *Ledger) Pending(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending[host])
}

// Fold adds the reservations to the nodes of their hosts: counts,
// reserved memory and CPUs, ports, items. A reservation whose container
// the node shows already (by name) is counted once. The nodes' Items and
// Ports are copied before they change: a snapshot shared with the nodes
// stays as it was.
func (l *Ledger) Fold(nodes []Node) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.foldLocked(nodes)
}

func (l *Ledger) foldLocked(nodes []Node) {
	if len(l.pending) == 0 {
		return
	}
	for i := range nodes {
		rs := l.pending[nodes[i].Name]
		if len(rs) == 0 {
			continue
		}
		n := &nodes[i]
		shown := n.Items // the snapshot's, before any reservation
		n.Items = slices.Clip(n.Items)
		copied := false
		for _, r := range rs {
			if shows(shown, r.item.Name) {
				continue
			}
			n.Pending++
			n.Containers++
			n.Running++
			n.ReservedMemory += r.memory
			n.ReservedNanoCPUs += r.nanoCPUs
			n.Items = append(n.Items, r.item)
			if len(r.ports) > 0 && !copied {
				// The snapshot's maps are shared: change copies.
				n.Ports, n.PortReplicas, copied = maps.Clone(n.Ports), maps.Clone(n.PortReplicas), true
			}
			for _, p := range r.ports {
				n.HoldPort(p, lbl.ComposeReplicaOf(r.item.Labels))
			}
		}
	}
}

// shows tells whether items hold a container of this name.
func shows(items []Container, name string) bool {
	if name == "" {
		return false
	}
	for i := range items {
		if items[i].Name == name {
			return true
		}
	}
	return false
}

// Decide folds the reservations into nodes (which it changes), asks s
// for a decision and reserves the chosen host, as one step: a concurrent
// Decide sees this reservation. With no host fitting, the reservation is
// nil and the error s's.
func (l *Ledger) Decide(s *Strategy, req *Request, nodes []Node) (*Decision, *Reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.foldLocked(nodes)
	d, err := s.Decide(req, nodes)
	if err != nil {
		return d, nil, err
	}
	return d, l.reserveLocked(d.Hosts[0].Host, req), nil
}

// Explain folds the reservations into nodes and explains the decision
// s would make, reserving nothing: a dry run.
func (l *Ledger) Explain(s *Strategy, req *Request, nodes []Node) (*Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.foldLocked(nodes)
	return s.Explain(req, nodes)
}
