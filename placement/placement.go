// Package placement is the bridge between the fleet and the pure
// scheduler: it reads the hosts' caches into scheduler nodes, asks the
// scheduler, and holds what it decided in the scheduler's ledger until
// the host's cache shows the container. Every placement of Clocker goes
// through it: containers (the create pipeline's placement steps),
// volumes, per-host networks, builds and imports. See README.md.
package placement

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/scheduler"
)

// Placer places requests on the fleet with the fleet's strategy and holds
// the reservations of the containers it placed. It is the create
// pipeline's place step (see Place).
type Placer struct {
	fleet    *hosts.Fleet
	strategy *scheduler.Strategy
	ledger   *scheduler.Ledger
	metrics  *metrics

	// mu makes one snapshot at a time: the nodes buffer is reused by the
	// next decision, and the snapshots are rebuilt in place.
	mu    sync.Mutex
	buf   []scheduler.Node
	snaps map[*hosts.Host]*hostSnap

	// placed are the reservations of creates placed and not yet bound
	// (Place to Bind: see steps.go), by create.
	placed sync.Map
	// decisions are the recent creates' decisions, by container ID.
	decisions decisionLog
}

// New returns the fleet's placer; reg receives the placement metrics
// (nil: none).
func New(fleet *hosts.Fleet, strategy *scheduler.Strategy, reg prometheus.Registerer) *Placer {
	return &Placer{
		fleet: fleet, strategy: strategy, ledger: scheduler.NewLedger(), metrics: newMetrics(reg),
		snaps: map[*hosts.Host]*hostSnap{},
	}
}

// Warm builds every host's snapshot now, so that the first create after a
// start does not pay for all of them (half a second at a thousand hosts).
func (p *Placer) Warm() {
	all := p.fleet.Hosts()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodesLocked(all, make([]bool, len(all)), false)
}

// Decide places a container request on the fleet and reserves room on the
// chosen host until release (once the host's cache shows the container, or
// the create failed; calling it again does nothing). A "no host fits" is
// the scheduler's *NoHostFitsError, with the decision saying why each host
// was turned down; see CreateError for the client's answer.
func (p *Placer) Decide(ctx context.Context, req *scheduler.Request) (d *scheduler.Decision, h *hosts.Host, release func(), err error) {
	d, h, _, release, err = p.decide(ctx, req, false)
	return
}

// Explain is Decide as a dry run: the decision, nothing reserved.
func (p *Placer) Explain(ctx context.Context, req *scheduler.Request) (*scheduler.Decision, error) {
	d, _, _, _, err := p.decide(ctx, req, true)
	return d, err
}

func (p *Placer) decide(ctx context.Context, req *scheduler.Request, dry bool) (*scheduler.Decision, *hosts.Host, *scheduler.Reservation, func(), error) {
	all := p.fleet.Hosts()
	hasImage := make([]bool, len(all))
	if req.Image == "" {
		for i := range hasImage {
			hasImage[i] = true
		}
	} else {
		hasImage = imagePresence(ctx, all, req.Image)
	}
	var (
		d   *scheduler.Decision
		r   *scheduler.Reservation
		err error
	)
	start := time.Now()
	p.mu.Lock()
	nodes := p.nodesLocked(all, hasImage, p.strategy.NeedsUsage() || (req.Chain != nil && req.Chain.NeedsUsage()))
	if dry {
		d, err = p.ledger.Explain(p.strategy, req, nodes)
	} else {
		d, r, err = p.ledger.Decide(p.strategy, req, nodes)
	}
	p.mu.Unlock()
	p.metrics.observe(d, err, dry, time.Since(start))
	nothing := func() {}
	if err != nil {
		return d, nil, nil, nothing, err
	}
	release := nothing
	if r != nil {
		release = sync.OnceFunc(func() { p.ledger.Release(r) })
	}
	name := d.Hosts[0].Host
	for _, h := range all {
		if h.Name == name {
			return d, h, r, release, nil
		}
	}
	release()
	return d, nil, nil, nothing, leftTheFleet(name)
}

func leftTheFleet(name string) error {
	return errdefs.New(errdefs.ErrUnavailable, "host "+name+" left the fleet")
}
