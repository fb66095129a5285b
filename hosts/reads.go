package hosts

import (
	"context"
	"sync"
)

// Re-reads of one container (a list entry and an inspect, two calls to the
// engine) keep the cache current. Events ask for them, and so does the
// proxy after each change it forwards. One read brings the container up to
// date with everything that happened to it before the read began, so an
// ask that a read began after is answered by that read, whoever asked it:
//
//	event ─▶ mark dirty (one queue entry per container) ─▶ readLoop ─┐
//	Refresh (proxy, after a call) ──────────────────────────────────┤
//	                             syncMu: one read at a time ◀───────┘
//
// Without it a `docker run --rm` cost the engine a read per event (create,
// network connect, start, die, network disconnect) on top of the proxy's
// own: about fifteen calls for the run's five, which an engine on a busy
// machine pays for in the run's own latency.

// containerReads is the bookkeeping of the asks and reads of a host's
// containers. The clock ticks once per ask and once per read begun, so
// that "began after" is a comparison of ticks.
type containerReads struct {
	mu    sync.Mutex
	clock uint64
	read  map[string]uint64 // id → when its last good read began
	dirty map[string]ask    // id → an event's ask not yet answered
	queue []string          // dirty ids, oldest first (each once)
	held  map[string]int    // ids whose event reads wait (see Hold)
	wake  chan struct{}     // capacity 1: wakes readLoop
	// removed are the last containers found gone (IDs are never reused,
	// so a read of one is answered for good), oldest first in order.
	removed map[string]bool
	order   []string
}

// ask is an event's ask for a read of a container.
type ask struct {
	tick uint64
	// missing: only if the cache does not hold the container yet (its
	// create event; the proxy reads what it creates itself).
	missing bool
}

// keepRemoved is how many removed containers are remembered: enough for
// the calls still in flight about them (a wait that ends with the
// removal), few enough to cost nothing.
const keepRemoved = 1024

func newContainerReads() containerReads {
	return containerReads{
		read:  map[string]uint64{},
		dirty: map[string]ask{},
		held:  map[string]int{},
		wake:  make(chan struct{}, 1),

		removed: map[string]bool{},
	}
}

// ask returns the tick of a new ask.
func (r *containerReads) ask() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clock++
	return r.clock
}

// answered reports whether a read of id that began after the ask at tick
// asked has ended well.
func (r *containerReads) answered(id string, asked uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read[id] > asked || r.removed[id]
}

// ended records a good read of id that began at tick began: it answers the
// event's ask if that came before.
func (r *containerReads) ended(id string, began uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read[id] = began
	if a, ok := r.dirty[id]; ok && a.tick < began {
		delete(r.dirty, id)
	}
}

// gone records a container that no longer exists: there is nothing left
// to read, now or later (a wait for its removal asks once it is gone).
func (r *containerReads) gone(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.read, id)
	delete(r.dirty, id)
	if r.removed[id] {
		return
	}
	if len(r.order) >= keepRemoved {
		delete(r.removed, r.order[0])
		r.order = r.order[1:]
	}
	r.removed[id] = true
	r.order = append(r.order, id)
}

// reset forgets every ask and read: a resync reads everything anew.
func (r *containerReads) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.read)
	clear(r.dirty)
	r.queue = r.queue[:0]
}

// markDirty records an event's ask for a read of id; with missing, only
// if the cache does not hold it by then (a create event).
func (r *containerReads) markDirty(id string, missing bool) {
	r.mu.Lock()
	r.clock++
	prev, queued := r.dirty[id]
	if !queued {
		r.queue = append(r.queue, id)
	}
	r.dirty[id] = ask{tick: r.clock, missing: missing && (!queued || prev.missing)}
	r.mu.Unlock()
	r.signal()
}

func (r *containerReads) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest dirty container that is not held, with the tick
// of its ask; held ones keep their place.
func (r *containerReads) next() (id string, asked ask, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.queue[:0]
	for i, q := range r.queue {
		a, dirty := r.dirty[q]
		switch {
		case !dirty: // answered meanwhile, or gone
		case r.held[q] > 0:
			keep = append(keep, q)
		default:
			delete(r.dirty, q)
			keep = append(keep, r.queue[i+1:]...)
			r.queue = keep
			return q, a, true
		}
	}
	r.queue = keep
	return "", ask{}, false
}

// Hold defers the reads that events ask for container id until release is
// called. A caller holds a container while a call that changes it is in
// flight and calls Refresh once the engine answered: that one read then
// answers every event of the call (a start's network connect and start)
// instead of one read each, and none blocks in the engine behind the call
// itself (an inspect waits for the container's lock, held by its start).
// release may be called more than once.
func (h *Host) Hold(id string) (release func()) {
	r := &h.reads
	r.mu.Lock()
	r.held[id]++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			if r.held[id]--; r.held[id] <= 0 {
				delete(r.held, id)
			}
			_, dirty := r.dirty[id]
			r.mu.Unlock()
			if dirty {
				r.signal()
			}
		})
	}
}

// readLoop reads the containers events marked dirty, one at a time, until
// ctx ends. A failed read is logged and dropped, as the event's own read
// was: the next event or resync brings the container back in line.
func (h *Host) readLoop(ctx context.Context) {
	r := &h.reads
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for ctx.Err() == nil {
			id, asked, ok := r.next()
			if !ok {
				break
			}
			read := h.refreshAsked
			if asked.missing {
				read = h.cachedAsked
			}
			if err := read(ctx, id, asked.tick); err != nil {
				h.log.Debug("refresh after event", "id", id, "err", err)
			}
		}
	}
}
