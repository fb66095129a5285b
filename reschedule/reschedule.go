// Package reschedule moves containers off hosts that stay down. A
// container created with -e reschedule:on-node-failure (or the label
// com.docker.swarm.reschedule-policies=["on-node-failure"], or
// io.clocker.reschedule=on-node-failure; PolicyStep reads them at create)
// whose host stays unhealthy for the reschedule delay is created again,
// with the same name and config, on a healthy host through the front door
// (the in-process client: placement, names, ingress and networks treat it
// as any create), and started if it ran. The stale copy is hidden from
// every view meanwhile and removed from its engine as soon as that host
// answers again. Each move is stored first, so a restarted manager hides
// and removes what it must.
//
//	host down ≥ delay ─► store record ─► hide stale ─► create + start (front door)
//	host back         ─► remove stale on its engine ─► forget record
package reschedule

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
)

// record is one move, stored under the stale copy's ID.
type record struct {
	Name    string
	OldHost string
	OldID   string
	NewID   string `json:",omitempty"`
	At      time.Time
}

// retryAfter is how long a container whose move failed waits for the next
// try.
const retryAfter = 10 * time.Second

// Rescheduler moves reschedulable containers off hosts that stay down.
type Rescheduler struct {
	fleet *hosts.Fleet
	api   *client.Client // the front door, in process
	store store.Store    // nil: moves are not kept across restarts (tests)
	after time.Duration
	log   *slog.Logger

	mu        sync.Mutex
	records   map[string]*record   // by OldID
	downSince map[string]time.Time // by host
	retryAt   map[string]time.Time // by container ID: a failed move waits
}

// New makes a rescheduler of fleet that creates and starts through api
// (the front door's in-process client) and keeps its moves in st (nil:
// not kept). A host down for after has its reschedulable containers
// moved. The stored moves are loaded and their stale copies hidden at
// once; nothing else happens until Run.
func New(fleet *hosts.Fleet, api *client.Client, st store.Store, after time.Duration, log *slog.Logger) (*Rescheduler, error) {
	rs := &Rescheduler{fleet: fleet, api: api, store: st, after: after, log: log,
		records: map[string]*record{}, downSince: map[string]time.Time{}, retryAt: map[string]time.Time{}}
	if err := rs.load(); err != nil {
		return nil, err
	}
	return rs, nil
}

// load reads the stored moves (another manager's too, when the store is
// shared) and hides their stale copies.
func (rs *Rescheduler) load() error {
	if rs.store == nil {
		return nil
	}
	recs := map[string]*record{}
	err := rs.store.ForEach(store.BucketReschedules, func(_ string, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		recs[r.OldID] = &r
		if h, ok := rs.fleet.Host(r.OldHost); ok {
			h.Hide(r.OldID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reschedules: %w", err)
	}
	rs.mu.Lock()
	rs.records = recs
	rs.mu.Unlock()
	return nil
}

// HideStored hides the stale copies of the stored moves, as another
// manager sharing the store (the leader) records them, so that every
// manager's docker ps shows one copy of a moved container. It leaves this
// manager's own moves in progress alone.
func (rs *Rescheduler) HideStored() error {
	if rs.store == nil {
		return nil
	}
	return rs.store.ForEach(store.BucketReschedules, func(_ string, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if h, ok := rs.fleet.Host(r.OldHost); ok {
			h.Hide(r.OldID)
		}
		return nil
	})
}

// Run checks the fleet every tick until ctx ends. It starts from the
// stored moves, so that a manager that comes to lead carries on with what
// the one before it moved.
func (rs *Rescheduler) Run(ctx context.Context) {
	if err := rs.load(); err != nil {
		rs.log.Warn("rescheduling: reading stored moves", "err", err)
	}
	t := time.NewTicker(min(time.Second, max(rs.after/4, 50*time.Millisecond)))
	defer t.Stop()
	for {
		rs.tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (rs *Rescheduler) tick(ctx context.Context, now time.Time) {
	for _, h := range rs.fleet.Hosts() {
		if h.Healthy() {
			rs.mu.Lock()
			delete(rs.downSince, h.Name)
			rs.mu.Unlock()
			rs.removeStale(ctx, h)
			continue
		}
		rs.mu.Lock()
		since, ok := rs.downSince[h.Name]
		if !ok {
			rs.downSince[h.Name] = now
		}
		rs.mu.Unlock()
		if !ok || now.Sub(since) < rs.after {
			continue
		}
		for _, c := range h.Containers() {
			if c.Summary.Labels[labels.Reschedule] != OnNodeFailure {
				continue
			}
			rs.mu.Lock()
			_, moved := rs.records[c.ID()]
			wait := rs.retryAt[c.ID()]
			rs.mu.Unlock()
			if moved || now.Before(wait) {
				continue
			}
			if err := rs.move(ctx, h, c, since); err != nil {
				rs.log.Warn("reschedule failed; will retry", "host", h.Name, "container", c.ID(), "err", err)
				rs.mu.Lock()
				rs.retryAt[c.ID()] = now.Add(retryAfter)
				rs.mu.Unlock()
			}
		}
	}
}

// move recreates container c of the down host h elsewhere.
func (rs *Rescheduler) move(ctx context.Context, h *hosts.Host, c hosts.Container, downSince time.Time) error {
	if c.Inspect == nil {
		return fmt.Errorf("its configuration was never read")
	}
	opts, running, err := recreate(c, downSince)
	if err != nil {
		return err
	}
	rec := &record{Name: opts.Name, OldHost: h.Name, OldID: c.ID(), At: time.Now().UTC()}
	if err := rs.save(rec); err != nil {
		return err
	}
	h.Hide(c.ID()) // frees the name and keeps `docker ps` to one copy
	created, err := rs.api.ContainerCreate(ctx, opts)
	if err != nil {
		h.Unhide(c.ID())
		rs.forget(rec)
		return fmt.Errorf("create: %w", err)
	}
	rec.NewID = created.ID
	if err := rs.save(rec); err != nil {
		rs.log.Warn("reschedule: store", "err", err)
	}
	if running {
		if _, err := rs.api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start %s: %w", created.ID, err)
		}
	}
	rs.log.Info("rescheduled", "name", opts.Name, "from", h.Name, "old", c.ID(), "new", created.ID)
	return nil
}

// removeStale removes the stale copies on h, which answers again.
func (rs *Rescheduler) removeStale(ctx context.Context, h *hosts.Host) {
	rs.mu.Lock()
	var mine []*record
	for _, r := range rs.records {
		if r.OldHost == h.Name && r.NewID != "" {
			mine = append(mine, r)
		}
	}
	rs.mu.Unlock()
	for _, r := range mine {
		status, _, err := h.Call(ctx, http.MethodDelete, "/containers/"+r.OldID, url.Values{"force": {"1"}, "v": {"0"}}, nil, "")
		if err != nil {
			continue // next tick
		}
		if status != http.StatusNoContent && status != http.StatusNotFound {
			rs.log.Warn("reschedule: remove stale copy", "host", h.Name, "id", r.OldID, "status", status)
			continue
		}
		_ = h.Refresh(ctx, r.OldID) // drops it from the cache
		h.Unhide(r.OldID)
		rs.forget(r)
		rs.log.Info("stale copy removed", "host", h.Name, "name", r.Name, "id", r.OldID)
	}
}

func (rs *Rescheduler) save(r *record) error {
	if rs.store != nil {
		if err := rs.store.Put(store.BucketReschedules, r.OldID, r); err != nil {
			return err
		}
	}
	rs.mu.Lock()
	rs.records[r.OldID] = r
	rs.mu.Unlock()
	return nil
}

func (rs *Rescheduler) forget(r *record) {
	if rs.store != nil {
		if err := rs.store.Delete(store.BucketReschedules, r.OldID); err != nil {
			rs.log.Warn("reschedule: store", "err", err)
		}
	}
	rs.mu.Lock()
	delete(rs.records, r.OldID)
	rs.mu.Unlock()
}
