package hosts

// ImageRefreshPending reports whether an image list re-read is requested
// and has not started (tests wait on it instead of sleeping).
func (h *Host) ImageRefreshPending() bool {
	h.imgRefresh.mu.Lock()
	defer h.imgRefresh.mu.Unlock()
	return h.imgRefresh.pending
}

// ImageRefreshWaiters is how many RefreshImages calls wait.
func (h *Host) ImageRefreshWaiters() int {
	h.imgRefresh.mu.Lock()
	defer h.imgRefresh.mu.Unlock()
	return h.imgRefresh.waiters
}

// ReadPending reports whether an event asked for a read of container id
// that has not been answered yet.
func (h *Host) ReadPending(id string) bool {
	h.reads.mu.Lock()
	defer h.reads.mu.Unlock()
	_, ok := h.reads.dirty[id]
	return ok
}
