// Package hosts owns the fleet: host records, one engine connection each,
// the per-host container cache fed by that engine's event stream, health,
// and fleet-wide container names.
//
//	engine events ──► Host.syncAndFollow ──► Host.containers (cache)
//	                                              │
//	proxy: list / resolve / reserve name ◄────────┘
package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Fleet is the set of hosts behind the front door.
type Fleet struct {
	store   *store.Store
	log     *slog.Logger
	metrics *Metrics
	// HealthInterval is how often each engine is checked.
	HealthInterval time.Duration

	mu    sync.RWMutex
	hosts []*Host // in the order they joined

	namesMu sync.Mutex
	pending map[string]chan struct{} // names being created right now

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewFleet returns an empty fleet that stores its hosts in st (may be nil in
// tests).
func NewFleet(st *store.Store, log *slog.Logger, m *Metrics) *Fleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &Fleet{store: st, log: log, metrics: m, HealthInterval: 2 * time.Second,
		pending: map[string]chan struct{}{}, ctx: ctx, cancel: cancel}
}

// StoredRecords returns the hosts kept from earlier runs.
func (f *Fleet) StoredRecords() ([]Record, error) {
	if f.store == nil {
		return nil, nil
	}
	var out []Record
	err := f.store.ForEach(store.BucketHosts, func(_ string, v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	slices.SortFunc(out, func(a, b Record) int { return a.Added.Compare(b.Added) })
	return out, err
}

// Add connects a host and starts following it. An empty rec.Name is taken
// from the engine's own name (GET /info), which needs the engine to answer.
// persist stores the record so the host is back after a restart.
func (f *Fleet) Add(ctx context.Context, rec Record, persist bool) (*Host, error) {
	ep, err := ParseEndpoint(rec.URL)
	if err != nil {
		return nil, err
	}
	rec.URL = ep.URL
	if rec.Provisioner == "" {
		rec.Provisioner = "static"
	}
	if rec.Added.IsZero() {
		rec.Added = time.Now().UTC()
	}
	probe, err := newHost(rec, ep, f.log, f.metrics)
	if err != nil {
		return nil, err
	}
	if rec.Name == "" {
		if err := probe.refreshFacts(ctx); err != nil {
			return nil, fmt.Errorf("engine %s does not answer, so its name is unknown (give NAME=URL): %v: %w", rec.URL, err, errdefs.ErrUnavailable)
		}
		rec.Name = probe.Facts().EngineName
		probe.Record.Name = rec.Name
		probe.log = f.log.With("host", rec.Name)
	}
	if !validHostName(rec.Name) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("host name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", rec.Name))
	}
	f.mu.Lock()
	for _, h := range f.hosts {
		switch {
		case h.URL == rec.URL && h.Name == rec.Name:
			f.mu.Unlock()
			return h, nil // given again: already in the fleet
		case h.URL == rec.URL:
			f.mu.Unlock()
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("engine %s is already in the fleet as host %q", rec.URL, h.Name))
		case h.Name == rec.Name:
			f.mu.Unlock()
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("host name %q is already taken by %s; name the engine with NAME=URL", rec.Name, h.URL))
		}
	}
	f.hosts = append(f.hosts, probe)
	f.mu.Unlock()
	if persist && f.store != nil {
		if err := f.store.Put(store.BucketHosts, rec.Name, rec); err != nil {
			return nil, fmt.Errorf("store host %s: %w", rec.Name, err)
		}
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		probe.run(f.ctx, f.HealthInterval)
	}()
	return probe, nil
}

func validHostName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("_.-", r)) {
			return false
		}
	}
	return true
}

// WaitSynced waits until every host has filled its cache once, or ctx ends.
func (f *Fleet) WaitSynced(ctx context.Context) error {
	for {
		all := true
		for _, h := range f.Hosts() {
			if !h.Healthy() {
				all = false
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops following every host.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
}

// Hosts returns the fleet's hosts in joining order.
func (f *Fleet) Hosts() []*Host {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.hosts)
}

// Host returns a host by name.
func (f *Fleet) Host(name string) (*Host, bool) {
	for _, h := range f.Hosts() {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}

// Containers returns every cached container of the fleet.
func (f *Fleet) Containers() []Container {
	var out []Container
	for _, h := range f.Hosts() {
		out = append(out, h.Containers()...)
	}
	return out
}

// Resolve finds a container by full ID, name (with or without the leading
// slash) or unique ID prefix, as an engine does, across the fleet. When the
// cache does not know the reference, the healthy engines are asked, so a
// container made behind Clocker's back is still found.
func (f *Fleet) Resolve(ctx context.Context, ref string) (*Host, Container, error) {
	h, c, err := f.resolveCached(ref)
	if err == nil || ref == "" || !errors.Is(err, errdefs.ErrNotFound) {
		return h, c, err
	}
	for _, h := range f.Hosts() {
		if !h.Healthy() {
			continue
		}
		body, status, gerr := h.getJSON(ctx, "/containers/"+ref+"/json", nil)
		if gerr != nil || status != http.StatusOK {
			continue
		}
		var in struct {
			ID string `json:"Id"`
		}
		if json.Unmarshal(body, &in) != nil || in.ID == "" {
			continue
		}
		if rerr := h.Refresh(ctx, in.ID); rerr == nil {
			if c, ok := h.Container(in.ID); ok {
				return h, c, nil
			}
		}
	}
	return nil, Container{}, err
}

func (f *Fleet) resolveCached(ref string) (*Host, Container, error) {
	if ref == "" {
		return nil, Container{}, errdefs.NoSuchContainer(ref)
	}
	name := "/" + strings.TrimPrefix(ref, "/")
	var (
		prefixHost *Host
		prefixC    Container
		prefixN    int
	)
	for _, h := range f.Hosts() {
		if c, ok := h.Container(ref); ok {
			return h, c, nil
		}
		h.mu.RLock()
		for _, c := range h.containers {
			if slices.Contains(c.Summary.Names, name) {
				cc := *c
				h.mu.RUnlock()
				return h, cc, nil
			}
			if strings.HasPrefix(c.Summary.ID, ref) {
				prefixN++
				prefixHost, prefixC = h, *c
			}
		}
		h.mu.RUnlock()
	}
	switch prefixN {
	case 0:
		return nil, Container{}, errdefs.NoSuchContainer(ref)
	case 1:
		return prefixHost, prefixC, nil
	default:
		return nil, Container{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("multiple IDs found with provided prefix: %s", ref))
	}
}

// NameInUse is Docker's conflict error for a taken container name.
func NameInUse(name, id string) error {
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
		"Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.",
		"/"+strings.TrimPrefix(name, "/"), id))
}

// ReserveName claims a container name fleet-wide for the length of a create
// or rename. Concurrent claims of one name wait for the first to finish:
// when it made the container they get Docker's conflict error, when it
// failed the next claim goes ahead. Call release once the cache knows the
// outcome.
func (f *Fleet) ReserveName(ctx context.Context, name string) (release func(), err error) {
	name = strings.TrimPrefix(name, "/")
	for {
		f.namesMu.Lock()
		if done, busy := f.pending[name]; busy {
			f.namesMu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if _, c, err := f.resolveName(name); err == nil {
			f.namesMu.Unlock()
			return nil, NameInUse(name, c.Summary.ID)
		}
		done := make(chan struct{})
		f.pending[name] = done
		f.namesMu.Unlock()
		return func() {
			f.namesMu.Lock()
			delete(f.pending, name)
			f.namesMu.Unlock()
			close(done)
		}, nil
	}
}

func (f *Fleet) resolveName(name string) (*Host, Container, error) {
	full := "/" + name
	for _, h := range f.Hosts() {
		h.mu.RLock()
		for _, c := range h.containers {
			if slices.Contains(c.Summary.Names, full) {
				cc := *c
				h.mu.RUnlock()
				return h, cc, nil
			}
		}
		h.mu.RUnlock()
	}
	return nil, Container{}, errdefs.NoSuchContainer(name)
}

// APIVersion is the version the fleet advertises: the highest that every
// healthy host supports (all hosts when none is healthy; fallback when no
// host has answered yet).
func (f *Fleet) APIVersion(fallback string) string {
	v := ""
	consider := func(healthyOnly bool) {
		for _, h := range f.Hosts() {
			if healthyOnly && !h.Healthy() {
				continue
			}
			max := h.Facts().MaxAPI
			if max == "" {
				continue
			}
			if v == "" || CompareVersions(max, v) < 0 {
				v = max
			}
		}
	}
	consider(true)
	if v == "" {
		consider(false)
	}
	if v == "" {
		return fallback
	}
	return v
}

// CompareVersions compares API versions like "1.41" and "1.9" numerically.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscan(as[i], &x)
		}
		if i < len(bs) {
			fmt.Sscan(bs[i], &y)
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
