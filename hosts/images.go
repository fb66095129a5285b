package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"

	"github.com/clocker/clocker/internal/errdefs"
)

// imageIndex is what a host holds, by ID and by normalized reference
// (docker.io/library/busybox:latest, name@digest), so that placement asks
// no engine whether it has an image.
type imageIndex struct {
	known bool // filled since the last (re)connect
	ids   []string
	refs  map[string]string // reference → the hex ID of the image it names
}

// imageListTimeout bounds one GET /images/json of the refresh loop: a hung
// engine must not hold every later refresh of its host.
const imageListTimeout = time.Minute

// imageRefresh coalesces the re-reads of a host's image list: at most one
// GET /images/json is in flight, and every request made while one runs is
// served by a single run after it. A burst of image events (docker load
// of N images, a pull with many tags) thus lists at most twice, and the
// index is never older than the last request.
type imageRefresh struct {
	mu      sync.Mutex
	wake    chan struct{} // capacity 1: wakes the loop for a pending run
	running bool          // the loop serves requests
	pending bool          // a run is requested and has not started
	started uint64        // runs started
	done    uint64        // runs ended (the loop runs them in order)
	err     error         // how the last run ended
	waiters int           // RefreshImages calls waiting
	ended   chan struct{} // closed and replaced whenever a run ends
}

// startImageRefresh marks the loop as serving before it runs, so that the
// resync that follows already goes through it.
func (h *Host) startImageRefresh(ctx context.Context) func() {
	r := &h.imgRefresh
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
	return func() { h.imageRefreshLoop(ctx) }
}

// imageRefreshLoop runs the requested refreshes one at a time until ctx
// ends.
func (h *Host) imageRefreshLoop(ctx context.Context) {
	r := &h.imgRefresh
	defer func() {
		r.mu.Lock()
		r.running, r.pending = false, false
		close(r.ended) // waiters see the loop gone
		r.ended = make(chan struct{})
		r.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		if !r.pending {
			r.mu.Unlock()
			continue
		}
		// Requests from now on need the run after this one.
		r.pending = false
		r.started++
		n := r.started
		r.mu.Unlock()
		lctx, cancel := context.WithTimeout(ctx, imageListTimeout)
		err := h.listImages(lctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			h.log.Debug("image list", "err", err)
		}
		r.mu.Lock()
		r.done, r.err = n, err
		close(r.ended)
		r.ended = make(chan struct{})
		r.mu.Unlock()
	}
}

// requestImageRefresh asks the loop for a run that starts after this call
// and returns its number and the channel closed when the current run ends.
// ok is false when no loop serves the host (not started yet, or removed).
func (h *Host) requestImageRefresh() (target uint64, ended chan struct{}, ok bool) {
	r := &h.imgRefresh
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return 0, nil, false
	}
	if !r.pending {
		r.pending = true
		select {
		case r.wake <- struct{}{}:
		default: // the loop has not taken the last wake-up yet
		}
	}
	// A pending run has not started: started+1 is it, after this call.
	return r.started + 1, r.ended, true
}

// RefreshImages re-reads the engine's image list into the index and
// returns once a read that started after the call has ended (with its
// error), so that the next placement sees what the engine held at the
// call. The proxy calls it after its own pulls, loads, builds, tags and
// removals on the hosts they touched; concurrent calls and image events
// share one read.
func (h *Host) RefreshImages(ctx context.Context) error {
	target, ended, ok := h.requestImageRefresh()
	if !ok {
		return h.listImages(ctx) // no loop to coalesce with
	}
	r := &h.imgRefresh
	r.mu.Lock()
	r.waiters++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiters--
		r.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err() // the run goes on and fills the index
		case <-ended:
		}
		r.mu.Lock()
		done, err, running := r.done, r.err, r.running
		ended = r.ended
		r.mu.Unlock()
		if done >= target {
			return err
		}
		if !running {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s left the fleet", h.Name))
		}
	}
}

// listImages reads GET /images/json into the index.
func (h *Host) listImages(ctx context.Context) error {
	body, status, err := h.getJSON(ctx, "/images/json", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /images/json: status %d", status)
	}
	var list []struct {
		ID          string `json:"Id"`
		RepoTags    []string
		RepoDigests []string
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("GET /images/json: %w", err)
	}
	idx := imageIndex{known: true, ids: make([]string, 0, len(list)), refs: map[string]string{}}
	for _, im := range list {
		id := strings.TrimPrefix(im.ID, "sha256:")
		idx.ids = append(idx.ids, id)
		for _, r := range append(im.RepoTags, im.RepoDigests...) {
			if n, ok := normalizeRef(r); ok {
				idx.refs[n] = id
			}
		}
	}
	h.mu.Lock()
	// Placement rebuilds its snapshot when the generation moves: an
	// unchanged list (the proxy's read and the event's) moves nothing.
	if !h.images.known || !slices.Equal(h.images.ids, idx.ids) || !maps.Equal(h.images.refs, idx.refs) {
		h.images = idx
		h.changedLocked()
	}
	h.mu.Unlock()
	return nil
}

// ImageRef is an image reference parsed once, to ask many hosts.
type ImageRef struct {
	norm string // canonical name:tag or name@digest ("" when not a name)
	id   string // hex ID prefix ("" when it cannot be one)
}

// ParseImageRef parses a name, name:tag, name@digest, ID or ID prefix.
func ParseImageRef(ref string) ImageRef {
	var r ImageRef
	r.norm, _ = normalizeRef(ref)
	r.id, _ = idPrefix(ref)
	return r
}

// HasImage answers from the index whether the host holds ref (a name, a
// name:tag, a name@digest, an ID or an ID prefix). known is false while
// the index is not filled: ask the engine then.
func (h *Host) HasImage(ref string) (has, known bool) {
	return h.HasImageRef(ParseImageRef(ref))
}

// HasImageRef is HasImage for a reference parsed once: placement asks
// every host of the fleet about the same image.
func (h *Host) HasImageRef(ref ImageRef) (has, known bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.images.known {
		return false, false
	}
	if _, ok := h.images.refs[ref.norm]; ok && ref.norm != "" {
		return true, true
	}
	// Like the engine: a reference that names no image may be an ID.
	if ref.id != "" {
		for _, full := range h.images.ids {
			if strings.HasPrefix(full, ref.id) {
				return true, true
			}
		}
	}
	return false, true
}

// normalizeRef gives a reference's canonical form, with the default tag
// when it has neither tag nor digest.
func normalizeRef(ref string) (string, bool) {
	if ref == "" || ref == "<none>:<none>" || ref == "<none>@<none>" {
		return "", false
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", false
	}
	return reference.TagNameOnly(named).String(), true
}

// idPrefix reports whether ref can be an image ID or a prefix of one.
func idPrefix(ref string) (string, bool) {
	hex := strings.TrimPrefix(ref, "sha256:")
	if hex == "" || len(hex) > 64 {
		return "", false
	}
	for _, r := range hex {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return "", false
		}
	}
	return hex, true
}
