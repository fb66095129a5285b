// Package leader elects one manager of a fleet to run its control loops,
// and lists the managers.
//
// On bbolt there is one manager: it leads from the start and is never
// fenced (Single). On etcd (Etcd) every manager holds a session (a lease
// kept alive) under which it registers itself and campaigns with
// concurrency.Election; the one elected runs the control loops until its
// session ends. A manager whose session is lost (etcd unreachable, or
// partitioned from it for longer than the lease) stops leading at once
// and is fenced: Writable says no, and changes answer 503 naming the
// store, until a new session is had.
package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Manager is one manager of the fleet, as GET /v1/fleet/managers lists it.
type Manager struct {
	ID      string
	Address string // where it serves the API
	Started time.Time
	Leader  bool
	Self    bool `json:",omitempty"` // the manager answering
}

// Group is this manager's view of the fleet's managers.
type Group struct {
	self Manager
	log  *slog.Logger
	et   *store.Etcd // nil: the only manager (bbolt)
	ttl  time.Duration

	changes prometheus.Counter
	leading prometheus.Gauge

	mu       sync.Mutex
	isLeader bool
	fenced   error  // non-nil while without a session (etcd only)
	leaderID string // as last observed
	known    map[string]Manager
}

// DefaultTTL is the lease of a manager's session: a dead leader is
// replaced within about this long.
const DefaultTTL = 3 * time.Second

func newGroup(self Manager, log *slog.Logger, reg prometheus.Registerer) *Group {
	g := &Group{self: self, log: log, known: map[string]Manager{}}
	g.changes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "clocker", Subsystem: "manager", Name: "leadership_changes_total",
		Help: "Times this manager became or stopped being the fleet's leader.",
	})
	g.leading = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "clocker", Subsystem: "manager", Name: "leader",
		Help: "1 while this manager leads the fleet (runs its control loops), else 0.",
	})
	if reg != nil {
		reg.MustRegister(g.changes, g.leading)
	}
	return g
}

// Single is the only manager of a fleet on bbolt: it always leads.
func Single(self Manager, log *slog.Logger, reg prometheus.Registerer) *Group {
	return newGroup(self, log, reg)
}

// Etcd is a manager among those sharing et; its session's lease is ttl.
func Etcd(et *store.Etcd, self Manager, ttl time.Duration, log *slog.Logger, reg prometheus.Registerer) *Group {
	g := newGroup(self, log, reg)
	g.et, g.ttl = et, ttl
	g.fenced = g.unavailable(errors.New("no etcd session yet"))
	return g
}

// Replicated reports whether there may be other managers.
func (g *Group) Replicated() bool { return g.et != nil }

// Self is this manager.
func (g *Group) Self() Manager { return g.self }

// IsLeader reports whether this manager leads now.
func (g *Group) IsLeader() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.isLeader
}

// Writable is nil when this manager may change the fleet; else an error
// that is errdefs.ErrUnavailable and names the store.
func (g *Group) Writable() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fenced
}

func (g *Group) unavailable(err error) error {
	return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("state store %s unavailable: this manager (%s) has no etcd session: %v; changes are refused until it is back", g.et, g.self.Address, err))
}

func (g *Group) setLeader(on bool) {
	g.mu.Lock()
	changed := g.isLeader != on
	g.isLeader = on
	if on {
		g.leaderID = g.self.ID
	}
	g.mu.Unlock()
	if changed {
		g.changes.Inc()
		if on {
			g.leading.Set(1)
			g.log.Info("this manager leads the fleet", "id", g.self.ID, "address", g.self.Address)
		} else {
			g.leading.Set(0)
			g.log.Warn("this manager no longer leads the fleet", "id", g.self.ID)
		}
	}
}

// Run takes part in elections until ctx ends. Each time this manager is
// elected, lead runs with a context that ends when leadership does; Run
// waits for lead to return before campaigning again. With a single
// manager, lead runs once, with ctx.
func (g *Group) Run(ctx context.Context, lead func(ctx context.Context)) {
	if g.et == nil {
		g.setLeader(true)
		lead(ctx)
		g.setLeader(false)
		return
	}
	retry := time.NewTicker(g.ttl / 3)
	defer retry.Stop()
	for ctx.Err() == nil {
		err := g.term(ctx, lead)
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		g.fenced = g.unavailable(err)
		g.mu.Unlock()
		g.log.Warn("etcd session lost: fenced until a new one", "err", err)
		select {
		case <-ctx.Done():
		case <-retry.C:
		}
	}
}

// term is one session: register, campaign, lead when elected, until the
// session ends (its error) or ctx does.
func (g *Group) term(ctx context.Context, lead func(ctx context.Context)) error {
	cli := g.et.Client()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(int((g.ttl+time.Second-1)/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer func() {
		// Revoking the lease hands leadership on at once on a clean stop.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = cli.Revoke(rctx, sess.Lease())
		cancel()
		sess.Close()
	}()
	self, _ := json.Marshal(g.self)
	pctx, cancel := context.WithTimeout(ctx, g.ttl)
	_, err = cli.Put(pctx, g.et.Prefix()+"managers/"+g.self.ID, string(self), clientv3.WithLease(sess.Lease()))
	cancel()
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.fenced = nil
	g.mu.Unlock()

	el := concurrency.NewElection(sess, g.et.Prefix()+"leader")
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	go g.observe(tctx, el)
	elected := make(chan error, 1)
	go func() { elected <- el.Campaign(tctx, g.self.ID) }()
	select {
	case <-sess.Done():
		return errors.New("session lease expired")
	case <-ctx.Done():
		return ctx.Err()
	case err := <-elected:
		if err != nil {
			return err
		}
	}
	g.setLeader(true)
	lctx, endLead := context.WithCancel(tctx)
	done := make(chan struct{})
	go func() { defer close(done); lead(lctx) }()
	select {
	case <-sess.Done():
		err = errors.New("session lease expired while leading")
	case <-ctx.Done():
		err = ctx.Err()
	}
	endLead()
	g.setLeader(false)
	<-done
	if ctx.Err() == nil {
		return err
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = el.Resign(rctx)
	cancel()
	return err
}

// observe follows who leads.
func (g *Group) observe(ctx context.Context, el *concurrency.Election) {
	for resp := range el.Observe(ctx) {
		if len(resp.Kvs) == 0 {
			continue
		}
		g.mu.Lock()
		g.leaderID = string(resp.Kvs[0].Value)
		g.mu.Unlock()
	}
}

// Leader is the manager that leads as last known, and whether one is.
func (g *Group) Leader() (Manager, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.et == nil || g.isLeader {
		return g.self, g.isLeader || g.et == nil
	}
	if m, ok := g.known[g.leaderID]; ok {
		return m, true
	}
	if g.leaderID != "" {
		return Manager{ID: g.leaderID}, true
	}
	return Manager{}, false
}

// Managers lists the fleet's managers, the leader marked. It reads etcd;
// when etcd does not answer, the last list read, and the error.
func (g *Group) Managers(ctx context.Context) ([]Manager, error) {
	if g.et == nil {
		m := g.self
		m.Leader, m.Self = true, true
		return []Manager{m}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.ttl)
	defer cancel()
	resp, err := g.et.Client().Get(ctx, g.et.Prefix()+"managers/", clientv3.WithPrefix())
	var leaderID string
	if err == nil {
		var lr *clientv3.GetResponse
		lr, err = g.et.Client().Get(ctx, g.et.Prefix()+"leader/", clientv3.WithFirstCreate()...)
		if err == nil && len(lr.Kvs) > 0 {
			leaderID = string(lr.Kvs[0].Value)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.known = map[string]Manager{}
		for _, kv := range resp.Kvs {
			var m Manager
			if json.Unmarshal(kv.Value, &m) == nil {
				g.known[m.ID] = m
			}
		}
		g.leaderID = leaderID
	} else {
		err = g.unavailableStore(err)
	}
	out := make([]Manager, 0, len(g.known))
	for _, m := range g.known {
		m.Leader = m.ID == g.leaderID
		m.Self = m.ID == g.self.ID
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Address < out[j].Address || out[i].Address == out[j].Address && out[i].ID < out[j].ID
	})
	return out, err
}

func (g *Group) unavailableStore(err error) error {
	return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("state store %s unavailable: %v", g.et, err))
}
