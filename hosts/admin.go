package hosts

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// noSuchHost is the error for an unknown host name.
func noSuchHost(name string) error {
	return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no such host: %s", name))
}

// Remove takes a host out of the fleet and forgets its record. A host with
// containers is refused unless it is draining: removing it would hide
// them. Its containers stay on its engine either way. users says which
// containers are the user's (nil: all); the others (Clocker's own agents)
// do not keep a host in the fleet.
func (f *Fleet) Remove(name string, users func(*Container) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.byName[name]
	if !ok {
		return noSuchHost(name)
	}
	if n := h.CountContainers(users); n > 0 && !h.Draining() {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
			"host %s has %d containers: remove them, or drain the host first (POST /v1/fleet/hosts/%s/drain) to remove it with them", name, n, name))
	}
	if h.persisted {
		if err := f.store.Delete(store.BucketHosts, name); err != nil {
			return fmt.Errorf("forget host %s: %w", name, err)
		}
	}
	f.dropLocked(h)
	return nil
}

// dropLocked stops following h; f.mu is held.
func (f *Fleet) dropLocked(h *Host) {
	name := h.Name
	i := slices.Index(f.hosts, h)
	f.hosts = slices.Delete(f.hosts, i, i+1)
	f.names = slices.Delete(f.names, i, i+1)
	delete(f.byName, name)
	if h.stop != nil {
		h.stop()
		<-h.done
	}
	h.CloseIdleConnections()
	f.metrics.forgetHost(name)
	f.emit("remove", h)
	f.log.Info("host removed", "host", name)
}

// SyncStored brings the fleet in step with the stored hosts after another
// manager sharing the store changed them (store.Etcd.Watch of the hosts
// bucket): a host stored there is followed here too, one whose record is
// gone is dropped (its containers stay on its engine, as with Remove), and
// draining and labels follow the records.
func (f *Fleet) SyncStored(ctx context.Context) error {
	recs, err := f.StoredRecords()
	if err != nil {
		return err
	}
	stored := make(map[string]bool, len(recs))
	for _, rec := range recs {
		stored[rec.Name] = true
		h, ok := f.Host(rec.Name)
		if !ok {
			if _, err := f.add(ctx, rec, false, true); err != nil {
				f.log.Warn("following a host another manager added", "host", rec.Name, "err", err)
			}
			continue
		}
		h.mu.Lock()
		if h.Record.Draining != rec.Draining || !maps.Equal(h.Record.Labels, rec.Labels) {
			h.Record.Draining, h.Record.Labels = rec.Draining, rec.Labels
			h.changedLocked()
		}
		h.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range slices.Clone(f.hosts) {
		if !h.persisted || stored[h.Name] {
			continue
		}
		// Joined here since the records were read?
		var rec Record
		if err := f.store.Get(store.BucketHosts, h.Name, &rec); !errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		f.dropLocked(h)
	}
	return nil
}

// SetDraining marks a host as taking no new containers, or lifts it.
func (f *Fleet) SetDraining(name string, draining bool) error {
	return f.update(name, func(r *Record) { r.Draining = draining })
}

// SetLabels sets Clocker's labels of a host: each given key is set, and
// removed when its value is empty.
func (f *Fleet) SetLabels(name string, labels map[string]string) error {
	for k := range labels {
		if k == "" {
			return errdefs.New(errdefs.ErrInvalid, "label keys cannot be empty")
		}
	}
	return f.update(name, func(r *Record) {
		r.Labels = maps.Clone(r.Labels)
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		for k, v := range labels {
			if v == "" {
				delete(r.Labels, k)
			} else {
				r.Labels[k] = v
			}
		}
		if len(r.Labels) == 0 {
			r.Labels = nil
		}
	})
}

// update changes a host's record, stores it first (nothing changes when
// that fails) and lets placement see it.
func (f *Fleet) update(name string, change func(*Record)) error {
	h, ok := f.Host(name)
	if !ok {
		return noSuchHost(name)
	}
	rec := h.record()
	change(&rec)
	if h.persisted {
		if err := f.store.Put(store.BucketHosts, name, rec); err != nil {
			return fmt.Errorf("store host %s: %w", name, err)
		}
	}
	h.mu.Lock()
	h.Record.Draining, h.Record.Labels = rec.Draining, rec.Labels
	h.changedLocked()
	h.mu.Unlock()
	return nil
}

// Join adds a host on request (the fleet API): the engine must answer
// first, and the host is stored. Nothing changes when it fails.
func (f *Fleet) Join(ctx context.Context, rec Record) (*Host, error) {
	ep, err := ParseEndpoint(rec.URL)
	if err != nil {
		return nil, err
	}
	if ep, err = ep.WithTLS(rec.TLS); err != nil {
		return nil, err
	}
	probe, err := newHost(Record{URL: ep.URL}, ep, f.log, nil)
	if err != nil {
		return nil, err
	}
	defer probe.CloseIdleConnections()
	if err := probe.refreshFacts(ctx); err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("engine %s does not answer: %v", ep.URL, err))
	}
	if rec.Name == "" {
		rec.Name = probe.Facts().EngineName
	}
	return f.Add(ctx, rec, true)
}
