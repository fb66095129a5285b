package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/distribution/reference"
)

// imageIndex is what a host holds, by ID and by normalized reference
// (docker.io/library/busybox:latest, name@digest), so that placement asks
// no engine whether it has an image.
type imageIndex struct {
	known bool // filled since the last (re)connect
	ids   []string
	refs  map[string]bool
}

// RefreshImages re-reads the engine's image list into the index. The
// event stream calls it on every image event; the proxy after its own
// pulls, loads, builds, tags and removals, so that the next create sees
// them without waiting for the event.
func (h *Host) RefreshImages(ctx context.Context) error {
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
	idx := imageIndex{known: true, ids: make([]string, 0, len(list)), refs: map[string]bool{}}
	for _, im := range list {
		idx.ids = append(idx.ids, strings.TrimPrefix(im.ID, "sha256:"))
		for _, r := range append(im.RepoTags, im.RepoDigests...) {
			if n, ok := normalizeRef(r); ok {
				idx.refs[n] = true
			}
		}
	}
	h.mu.Lock()
	h.images = idx
	h.changedLocked()
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
	if ref.norm != "" && h.images.refs[ref.norm] {
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
