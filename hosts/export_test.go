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
