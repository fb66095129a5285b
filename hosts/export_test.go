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

// HoldReads stops the container re-reads from beginning until the
// returned func is called (tests queue asks behind it).
func (h *Host) HoldReads() (release func()) {
	h.syncMu.Lock()
	return h.syncMu.Unlock
}

// ReadAskers is how many asks wait on the queued re-read of id (0: none
// queued).
func (h *Host) ReadAskers(id string) int {
	h.reads.mu.Lock()
	defer h.reads.mu.Unlock()
	if a := h.reads.asks[readKey{id, readFull}]; a != nil {
		return a.askers
	}
	return 0
}
