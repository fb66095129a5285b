package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
)

// Re-reads of one container coalesce. A container's life sends a burst of
// events (create, connect, start, die, disconnect), and the proxy re-reads
// it after each change it forwards; read one by one, a `docker run --rm`
// cost an engine four times the calls it costs without Clocker, and each
// answer waited behind the reads of the events before it.
//
// An ask for a re-read joins the one of the same container that is queued
// and has not begun: that read begins after the ask, so what it finds is at
// least as new as what the asker wanted. Reads of one container run one at
// a time (lockRead), so that an answer taken before a change is never
// written after it; those of different containers run at once. Events do
// not wait for their reads: the stream is read on at once.

// readKind is what a re-read reads.
type readKind uint8

const (
	readFull    readKind = iota // the list entry and inspect
	readInspect                 // inspect only (an exec's start or end)
)

type readKey struct {
	id   string
	kind readKind
}

// readAsk is one queued re-read and everyone waiting for it.
type readAsk struct {
	done chan struct{}
	err  error
	// ifMissing: only create events asked; a container cached by then (by
	// the proxy's own read after its create) is not read again.
	ifMissing bool
	// askers counts the asks it serves.
	askers int
}

// readQueue holds the asks not begun, by container and kind.
type readQueue struct {
	mu   sync.Mutex
	asks map[readKey]*readAsk
	// events counts the reads events started, which the host's run waits
	// for: a removed host's gauges must stay removed.
	events sync.WaitGroup
}

// readTimeout bounds a re-read a caller leads: others may have joined it,
// so it is served whatever that caller's context does.
const readTimeout = 30 * time.Second

// ask queues a re-read of id, or joins the queued one. lead tells the
// caller to run it (runRead).
func (h *Host) ask(id string, kind readKind, ifMissing bool) (a *readAsk, lead bool) {
	q := &h.reads
	q.mu.Lock()
	defer q.mu.Unlock()
	key := readKey{id, kind}
	if a := q.asks[key]; a != nil {
		a.ifMissing = a.ifMissing && ifMissing
		a.askers++
		return a, false
	}
	if q.asks == nil {
		q.asks = map[readKey]*readAsk{}
	}
	a = &readAsk{done: make(chan struct{}), ifMissing: ifMissing, askers: 1}
	q.asks[key] = a
	return a, true
}

// lockRead takes what a read-then-write of container id holds: syncMu
// shared (no resync meanwhile) and id's own lock. It returns the release.
func (h *Host) lockRead(id string) func() {
	h.syncMu.RLock()
	unlock := h.idMu.Lock(id)
	return func() {
		unlock()
		h.syncMu.RUnlock()
	}
}

// runRead runs a queued re-read: once it holds the container's read lock
// it leaves the queue (later asks queue anew), reads and writes the cache.
func (h *Host) runRead(ctx context.Context, id string, kind readKind, a *readAsk) {
	unlock := h.lockRead(id)
	h.reads.mu.Lock()
	delete(h.reads.asks, readKey{id, kind})
	ifMissing := a.ifMissing
	h.reads.mu.Unlock()
	switch {
	case kind == readInspect:
		a.err = h.refreshInspectLocked(ctx, id)
	case ifMissing && h.cached(id):
	default:
		a.err = h.refreshLocked(ctx, id)
	}
	unlock()
	close(a.done)
}

func (h *Host) cached(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.containers[id]
	return ok
}

// Refresh re-reads one container from the engine into the cache, dropping
// it when the engine no longer has it; it returns once the cache holds
// what a read begun after the call found. A read already queued serves
// the call.
func (h *Host) Refresh(ctx context.Context, id string) error {
	for {
		a, lead := h.ask(id, readFull, false)
		if lead {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
			h.runRead(rctx, id, readFull, a)
			cancel()
		}
		select {
		case <-a.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if a.err != nil && !lead && isContextErr(a.err) {
			continue // an event's read ended with the stream: read anew
		}
		return a.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// refreshAfterEvent queues a re-read for an event and returns at once;
// the stream goes on.
func (h *Host) refreshAfterEvent(ctx context.Context, id string, kind readKind, ifMissing bool, action string) {
	a, lead := h.ask(id, kind, ifMissing)
	if !lead {
		return
	}
	h.reads.events.Add(1)
	go func() {
		defer h.reads.events.Done()
		h.runRead(ctx, id, kind, a)
		if a.err != nil {
			h.log.Debug("refresh after event", "id", id, "action", action, "err", a.err)
		}
	}()
}

// Forget drops a container the engine answered it removed (DELETE, wait
// for removal) from the cache, without asking the engine again.
func (h *Host) Forget(id string) {
	defer h.lockRead(id)()
	h.forget(id)
}

// refreshLocked reads one container, its list entry then its inspect,
// under its read lock. The inspect comes second: a container that went between
// the two, with no event to tell (a lagging stream), is found gone.
func (h *Host) refreshLocked(ctx context.Context, id string) error {
	f, _ := json.Marshal(map[string][]string{"id": {id}})
	list, err := h.listRaw(ctx, url.Values{"all": {"1"}, "filters": {string(f)}})
	if err != nil {
		return err
	}
	var found *Container
	for i := range list {
		if list[i].Summary.ID == id {
			found = &list[i]
		}
	}
	if found == nil {
		h.forget(id)
		return nil
	}
	if err := h.inspect(ctx, found); errors.Is(err, errdefs.ErrNotFound) {
		h.forget(id) // removed between list and inspect
		return nil
	} else if err != nil {
		h.keepInspected(found)
	}
	h.mu.Lock()
	h.containers[id] = found
	n := len(h.containers)
	h.changedLocked()
	h.mu.Unlock()
	h.metrics.setContainers(h.Name, n)
	return nil
}

// refreshInspectLocked re-reads only a container's inspect JSON (exec IDs
// change without changing what the list shows), under its read lock.
func (h *Host) refreshInspectLocked(ctx context.Context, id string) error {
	h.mu.RLock()
	prev, ok := h.containers[id]
	h.mu.RUnlock()
	if !ok {
		return nil
	}
	c := *prev
	if err := h.inspect(ctx, &c); err != nil {
		return err
	}
	h.mu.Lock()
	if _, still := h.containers[id]; still {
		h.containers[id] = &c
		h.changedLocked()
	}
	h.mu.Unlock()
	return nil
}

// keepInspected gives c, whose inspect failed (the engine going away, a
// timeout), what the cache last inspected of it: its configuration is
// still what a reschedule recreates and what inspect serves. Never
// inspected: the list's seconds.
func (h *Host) keepInspected(c *Container) {
	h.mu.RLock()
	prev, ok := h.containers[c.Summary.ID]
	h.mu.RUnlock()
	if ok && !prev.Created.IsZero() {
		c.Created, c.NanoCPUs, c.Memory, c.Inspect = prev.Created, prev.NanoCPUs, prev.Memory, prev.Inspect
		return
	}
	c.Created = time.Unix(c.Summary.Created, 0)
}
