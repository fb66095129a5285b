package hosts

// Hide takes a container out of every view of the fleet (list, resolve,
// names) while it stays in the cache and on its engine: a copy of it runs
// on another host now (rescheduling), and the stale one must neither show
// twice in `docker ps` nor hold its name.
func (h *Host) Hide(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hidden == nil {
		h.hidden = map[string]bool{}
	}
	if !h.hidden[id] {
		h.hidden[id] = true
		h.changedLocked()
	}
}

// Unhide ends Hide (the stale copy is gone, or the mark was a mistake).
func (h *Host) Unhide(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hidden[id] {
		delete(h.hidden, id)
		h.changedLocked()
	}
}

func (h *Host) isHidden(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.hidden[id]
}
