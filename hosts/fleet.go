// Package hosts owns the fleet: host records, one engine connection each,
// the per-host container cache fed by that engine's event stream, health,
// and fleet-wide container names.
//
//	engine events ──► Host.syncAndFollow ──► Host.containers (cache)
//	                                              │
//	proxy: list / resolve / reserve name ◄────────┘
package hosts

import (
	"cmp"
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

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Fleet is the set of hosts behind the front door.
type Fleet struct {
	store   store.Store
	log     *slog.Logger
	metrics *Metrics
	// HealthInterval: each engine gives a sign of life (an answered check
	// or any traffic) at least this often, or is checked.
	HealthInterval time.Duration
	// HealthTimeout bounds one check (0: HealthInterval).
	HealthTimeout time.Duration

	mu     sync.RWMutex
	hosts  []*Host // in the order they joined
	names  []*nameIndex
	byName map[string]*Host

	namesMu sync.Mutex
	pending map[string]chan struct{} // names being created right now
	// shared reserves names in the store the managers share (nil: this
	// manager is the only one); see ShareNames.
	shared      NameStore
	sharedOwner string
	sharedTTL   time.Duration

	events fleetEvents

	tagsMu sync.Mutex // one settlement of moved tags at a time (UntagStale)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewFleet returns an empty fleet that stores its hosts in st (may be nil in
// tests).
func NewFleet(st store.Store, log *slog.Logger, m *Metrics) *Fleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &Fleet{store: st, log: log, metrics: m, HealthInterval: 2 * time.Second,
		byName: map[string]*Host{}, pending: map[string]chan struct{}{}, ctx: ctx, cancel: cancel}
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

// storeNew stores the record of a host joining the fleet. It is created,
// not overwritten: two managers sharing the store that add one name at
// once (on etcd, a transaction decides) do not both win. The name stored
// already for the same engine is that engine joining through another
// manager too (the managers' --engine flags at their first start): fine.
func (f *Fleet) storeNew(rec Record) error {
	err := f.store.Create(store.BucketHosts, rec.Name, rec)
	if !errors.Is(err, errdefs.ErrConflict) {
		if err != nil {
			return fmt.Errorf("store host %s: %w", rec.Name, err)
		}
		return nil
	}
	var other Record
	if err := f.store.Get(store.BucketHosts, rec.Name, &other); err != nil {
		return fmt.Errorf("store host %s: %w", rec.Name, err)
	}
	if other.URL == rec.URL {
		return nil
	}
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("host name %q is already taken by %s (joined through another manager); name the engine with NAME=URL", rec.Name, other.URL))
}

// forgetLocked takes back a host add registered but never announced;
// f.mu is held.
func (f *Fleet) forgetLocked(h *Host) {
	if i := slices.Index(f.hosts, h); i >= 0 {
		f.hosts = slices.Delete(f.hosts, i, i+1)
		f.names = slices.Delete(f.names, i, i+1)
	}
	if f.byName[h.Name] == h {
		delete(f.byName, h.Name)
	}
}

// Add connects a host and starts following it. An empty rec.Name is taken
// from the engine's own name (GET /info), which needs the engine to answer.
// persist stores the record so the host is back after a restart.
func (f *Fleet) Add(ctx context.Context, rec Record, persist bool) (*Host, error) {
	return f.add(ctx, rec, persist, persist && f.store != nil)
}

// add is Add; put stores the record, stored marks it as in the store
// (put, or another manager stored it).
func (f *Fleet) add(ctx context.Context, rec Record, put, stored bool) (*Host, error) {
	ep, err := ParseEndpoint(rec.URL)
	if err != nil {
		return nil, err
	}
	if ep, err = ep.WithTLS(rec.TLS); err != nil {
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
	f.names = append(f.names, &nameIndex{})
	f.byName[probe.Name] = probe
	f.mu.Unlock()
	if put && f.store != nil {
		if err := f.storeNew(rec); err != nil {
			f.mu.Lock()
			f.forgetLocked(probe)
			f.mu.Unlock()
			probe.CloseIdleConnections()
			if errors.Is(err, errdefs.ErrConflict) {
				// Another manager's host of that name: the store's watch may
				// have told while this add held the name here.
				if serr := f.SyncStored(ctx); serr != nil {
					f.log.Warn("following the hosts another manager stored", "err", serr)
				}
			}
			return nil, err
		}
	}
	f.mu.Lock() // SyncStored reads it under f.mu
	probe.persisted = stored
	f.mu.Unlock()
	probe.onHealth = func(up bool) {
		if up {
			f.emit("connect", probe)
		} else {
			f.emit("disconnect", probe)
		}
	}
	f.emit("add", probe)
	hctx, stop := context.WithCancel(f.ctx)
	probe.stop, probe.done = stop, make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(probe.done)
		probe.run(hctx, f.HealthInterval, cmp.Or(f.HealthTimeout, f.HealthInterval))
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

// hostsAndNames returns the hosts with their name indexes, in step.
func (f *Fleet) hostsAndNames() ([]*Host, []*nameIndex) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.hosts), slices.Clone(f.names)
}

// Host returns a host by name.
func (f *Fleet) Host(name string) (*Host, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	h, ok := f.byName[name]
	return h, ok
}

// Containers returns every cached container of the fleet.
func (f *Fleet) Containers() []Container {
	hs := f.Hosts()
	parts := make([][]Container, len(hs))
	n := 0
	for i, h := range hs {
		parts[i] = h.Containers()
		n += len(parts[i])
	}
	out := make([]Container, 0, n)
	for _, p := range parts {
		out = append(out, p...)
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
	// Full ID, then name, host by host, as the engines answer: from the
	// indexes, without a scan.
	name := strings.TrimPrefix(ref, "/")
	hs, idx := f.hostsAndNames()
	for i, h := range hs {
		if c, ok := h.Container(ref); ok {
			return h, c, nil
		}
		if id, ok := idx[i].lookup(h, name); ok {
			if c, ok := h.Container(id); ok {
				return h, c, nil
			}
		}
	}
	// Then a unique ID prefix: only hex digits can be one.
	if !isHex(ref) {
		return nil, Container{}, errdefs.NoSuchContainer(ref)
	}
	var (
		prefixHost *Host
		prefixC    Container
		prefixN    int
	)
	for _, h := range hs {
		h.mu.RLock()
		for _, c := range h.containers {
			if strings.HasPrefix(c.Summary.ID, ref) && !h.hidden[c.Summary.ID] {
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

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
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
		local := func() {
			f.namesMu.Lock()
			delete(f.pending, name)
			f.namesMu.Unlock()
			close(done)
		}
		if f.shared == nil {
			return local, nil
		}
		release, err := f.reserveShared(ctx, name)
		if err != nil {
			local()
			return nil, err
		}
		return func() { release(); local() }, nil
	}
}

// NameStore is what fleet-wide name reservations need of a store shared
// by several managers: a compare-and-create whose key expires by itself
// (store.Etcd).
type NameStore interface {
	CreateTTL(bucket []byte, key string, v any, ttl time.Duration) error
	Delete(bucket []byte, key string) error
	Get(bucket []byte, key string, v any) error
	// Replace and DeleteIf act only while the key holds old.
	Replace(bucket []byte, key string, old, v any) error
	DeleteIf(bucket []byte, key string, old any) error
}

// ShareNames makes ReserveName claim each name in st too, so that
// managers sharing st never create one name twice. A claim whose create
// succeeded is kept for ttl, long enough for every manager's cache to
// learn of the container; one whose create failed is dropped at once.
func (f *Fleet) ShareNames(st NameStore, owner string, ttl time.Duration) {
	f.shared, f.sharedOwner, f.sharedTTL = st, owner, ttl
}

type nameClaim struct {
	Manager string
	At      time.Time
	// ID and Host are the container's once its create succeeded: the
	// claim of a container removed within the claim's life is stale, and
	// the next create of the name drops it (ClaimStale).
	ID   string `json:",omitempty"`
	Host string `json:",omitempty"`
}

// reserveShared claims name in the shared store. Held by another manager,
// it waits until this manager's cache knows the container by that name
// (Docker's conflict) or the claim is dropped (that create failed).
func (f *Fleet) reserveShared(ctx context.Context, name string) (release func(), err error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		claim := nameClaim{Manager: f.sharedOwner, At: time.Now().UTC()}
		err := f.shared.CreateTTL(store.BucketNames, name, claim, f.sharedTTL)
		if err == nil {
			return func() {
				if h, c, err := f.resolveName(name); err == nil {
					// Made: the claim expires once every cache knows it;
					// it names the container, so that a create after its
					// removal need not wait for that.
					made := claim
					made.ID, made.Host = c.Summary.ID, h.Name
					if err := f.shared.Replace(store.BucketNames, name, claim, made); err != nil {
						f.log.Debug("naming the container in its name claim", "name", name, "err", err)
					}
					return
				}
				if err := f.shared.Delete(store.BucketNames, name); err != nil {
					f.log.Warn("dropping a name claim", "name", name, "err", err)
				}
			}, nil
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			return nil, err
		}
		var held nameClaim
		if f.shared.Get(store.BucketNames, name, &held) == nil && f.ClaimStale(ctx, held.Host, held.ID) {
			if err := f.shared.DeleteIf(store.BucketNames, name, held); err == nil {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if _, c, err := f.resolveName(name); err == nil {
			return nil, NameInUse(name, c.Summary.ID)
		}
	}
}

// ClaimStale tells whether a fleet-wide claim (of a name, a port) made
// for container id on host hostName is stale: the container was made and
// is gone, as its host's engine says. A claim naming no container (its
// create under way), a host unknown or down, or an engine that does not
// answer: not stale, the claim runs out by itself.
func (f *Fleet) ClaimStale(ctx context.Context, hostName, id string) bool {
	if id == "" {
		return false
	}
	h, ok := f.Host(hostName)
	if !ok || !h.Healthy() {
		return false
	}
	if _, known := h.Container(id); known {
		return false
	}
	_, err := h.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return cerrdefs.IsNotFound(err)
}

func (f *Fleet) resolveName(name string) (*Host, Container, error) {
	hs, idx := f.hostsAndNames()
	for i, h := range hs {
		if id, ok := idx[i].lookup(h, name); ok {
			if c, ok := h.Container(id); ok {
				return h, c, nil
			}
		}
	}
	return nil, Container{}, errdefs.NoSuchContainer(name)
}

// APIVersion is the version the fleet advertises: the highest that every
// healthy host supports (all hosts when none is healthy; fallback when no
// host has answered yet).
func (f *Fleet) APIVersion(fallback string) string {
	// Every request asks: no allocation per host.
	hs := f.Hosts()
	v := ""
	consider := func(healthyOnly bool) {
		for _, h := range hs {
			if healthyOnly && !h.Healthy() {
				continue
			}
			h.mu.RLock()
			max := h.facts.MaxAPI
			h.mu.RUnlock()
			if max == "" || max == v {
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
	for a != "" || b != "" {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		if xi, yi := leadingInt(x), leadingInt(y); xi != yi {
			if xi < yi {
				return -1
			}
			return 1
		}
	}
	return 0
}

// leadingInt reads the number a version part starts with (0 if none).
func leadingInt(s string) int {
	s = strings.TrimLeft(s, " ")
	n := 0
	for i := 0; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Qualified splits a reference of the form HOST/NAME when HOST is a host
// of the fleet; any other reference is a plain name (h nil).
func (f *Fleet) Qualified(ref string) (h *Host, name string) {
	if hn, name, ok := strings.Cut(ref, "/"); ok && name != "" {
		if h, ok := f.Host(hn); ok {
			return h, name
		}
	}
	return nil, ref
}

// Names are the names of the fleet's hosts, in the fleet's order.
func (f *Fleet) Names() []string {
	hs := f.Hosts()
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// Healthy returns the hosts that answer, in the fleet's order, or the
// unavailable error when none does.
func (f *Fleet) Healthy() ([]*Host, error) {
	var out []*Host
	for _, h := range f.Hosts() {
		if h.Healthy() {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, errdefs.New(errdefs.ErrUnavailable, "no host of the fleet is available")
	}
	return out, nil
}
