package hosts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"

	"github.com/clocker/clocker/internal/fanout"
)

// A tag names one image across the fleet, as it does on one engine: when a
// commit, build, tag, load, import or pull through Clocker sets a tag on
// some hosts, the copies of that tag other hosts hold for another image are
// untagged, so that `docker images` lists the tag once and a container of
// it is placed only where it is the new image.

// TagWatch is what a host's tags named when an image operation began;
// after the operation (and RefreshImages), Moved tells the tags it set.
type TagWatch struct {
	Host *Host
	// before is the index's reference map at the start. The index never
	// changes a map it published (listImages makes a new one), so the
	// watch keeps it without a copy. nil: the index was not known.
	before map[string]string
}

// WatchTags notes what h's tags name now, before an image operation.
func (h *Host) WatchTags() TagWatch {
	h.mu.RLock()
	defer h.mu.RUnlock()
	w := TagWatch{Host: h}
	if h.images.known {
		w.before = h.images.refs
	}
	return w
}

// Moved returns the tags (normalized, name:tag) that name another image on
// the host than when the watch began, new tags included, each with the
// hex ID of the image it names now. Digest references are not tags: a
// pull by digest moves nothing. Nothing moved when the index was not
// known at either end.
func (w TagWatch) Moved() map[string]string {
	if w.before == nil {
		return nil
	}
	w.Host.mu.RLock()
	now, known := w.Host.images.refs, w.Host.images.known
	w.Host.mu.RUnlock()
	if !known {
		return nil
	}
	var out map[string]string
	for ref, id := range now {
		if isDigestRef(ref) {
			continue
		}
		if prev, ok := w.before[ref]; !ok || prev != id {
			if out == nil {
				out = map[string]string{}
			}
			out[ref] = id
		}
	}
	return out
}

// imageIdentity is what tells two hosts' images apart: the ID, and the
// registry digests (name@sha256:…) that name it. The same pull gives
// different IDs on hosts of different platforms and the same digest.
type imageIdentity struct {
	id      string
	digests map[string]bool
}

// identity returns the identity of the image id in h's index.
func (h *Host) identity(id string) imageIdentity {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ident := imageIdentity{id: id}
	for ref, named := range h.images.refs {
		if named == id && isDigestRef(ref) {
			if ident.digests == nil {
				ident.digests = map[string]bool{}
			}
			ident.digests[ref] = true
		}
	}
	return ident
}

// same reports whether other is the same image (or the same pull).
func (i imageIdentity) same(other imageIdentity) bool {
	if i.id == other.id {
		return true
	}
	for d := range other.digests {
		if i.digests[d] {
			return true
		}
	}
	return false
}

// tagID is the hex ID of the image tag names in h's index.
func (h *Host) tagID(tag string) (string, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.images.known {
		return "", false
	}
	id, ok := h.images.refs[tag]
	return id, ok
}

// staleTag is a tag a host holds for another image than the one it was
// set to elsewhere.
type staleTag struct {
	tag string // normalized
	id  string // the image it names on that host
}

// UntagStale makes every tag the watched operations moved name one image
// across the fleet: on every other healthy host where the tag names
// another image (not the same ID, and no registry digest shared with the
// image it was set to), the tag is removed, and that host's image index
// re-read before UntagStale returns, so that the next placement sees only
// the hosts where the tag is the new image. It asks no engine when no tag
// moved or no host holds a stale copy.
//
// The untag is the engine's DELETE /images/{tag}?noprune=1: the image
// stays when it has other tags; with its last tag it is deleted (an
// engine would leave it dangling) without its parents (the classic
// builder's cache). When a container uses it and the tag is its only
// name the engine refuses, and the untag is forced: the engine then
// keeps an image a running container uses, untagged, as a moved tag
// leaves it; one only stopped containers use goes as with `docker rmi
// -f`, its layers staying with the containers.
//
// Settlements run one at a time, each checking that the hosts that set a
// tag still hold it. A build that ends after another one settled wins, as
// on one engine the later to finish does; of two that both set the tag
// before either settled, the first to settle wins, and the tag is never
// left on no host.
func (f *Fleet) UntagStale(ctx context.Context, watches []TagWatch) error {
	moved := map[string]map[*Host]string{} // tag → setter → image ID
	for _, w := range watches {
		for tag, id := range w.Moved() {
			if moved[tag] == nil {
				moved[tag] = map[*Host]string{}
			}
			moved[tag][w.Host] = id
		}
	}
	if len(moved) == 0 {
		return nil
	}
	f.tagsMu.Lock()
	defer f.tagsMu.Unlock()
	all := f.Hosts()
	stale := map[*Host][]staleTag{}
	tags := make([]string, 0, len(moved))
	for tag := range moved {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		var set []imageIdentity
		for h, id := range moved[tag] {
			if now, ok := h.tagID(tag); ok && now == id {
				set = append(set, h.identity(id))
			}
		}
		if len(set) == 0 {
			continue // moved again since, by a settlement that won
		}
		for _, h := range all {
			id, ok := h.tagID(tag)
			if !ok || !h.Healthy() {
				continue
			}
			ident := h.identity(id)
			if !identityIn(ident, set) {
				stale[h] = append(stale[h], staleTag{tag: tag, id: id})
			}
		}
	}
	if len(stale) == 0 {
		return nil
	}
	answers := fanout.Each(slices.Collect(maps.Keys(stale)), func(h *Host) (struct{}, error) {
		var errs []error
		for _, s := range stale[h] {
			if err := h.untagStale(ctx, s.tag, s.id); err != nil {
				errs = append(errs, err)
				continue
			}
			f.log.Info("untagged a stale copy: the tag was set to another image elsewhere",
				"host", h.Name, "tag", familiar(s.tag), "image", shortID(s.id))
		}
		if err := h.RefreshImages(ctx); err != nil {
			errs = append(errs, fmt.Errorf("host %s: image list after untag: %w", h.Name, err))
		}
		return struct{}{}, errors.Join(errs...)
	})
	var errs []error
	for _, a := range answers {
		errs = append(errs, a.Err)
	}
	return errors.Join(errs...)
}

func identityIn(ident imageIdentity, set []imageIdentity) bool {
	for _, s := range set {
		if s.same(ident) {
			return true
		}
	}
	return false
}

// untagStale removes tag on h if it still names the image id there (a
// tag set on h since is left alone); see UntagStale for what becomes of
// the image.
func (h *Host) untagStale(ctx context.Context, tag, id string) error {
	name := familiar(tag)
	status, body, err := h.Call(ctx, http.MethodGet, "/images/"+name+"/json", nil, nil, "")
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil
	default:
		return engineStatus(h, "image inspect "+name, status, body)
	}
	var in struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return fmt.Errorf("host %s: image inspect %s: %w", h.Name, name, err)
	}
	if strings.TrimPrefix(in.ID, "sha256:") != id {
		return nil
	}
	// An engine whose tag moves keeps the old image, untagged (dangling);
	// a removal of its last tag would delete it. A child image holds it
	// while the tag goes: the engine then keeps it (it has a child), and
	// the child goes after it without its parents (noprune).
	child, err := h.holdImage(ctx, id)
	if err != nil {
		return err
	}
	defer h.dropHold(context.WithoutCancel(ctx), child)
	q := url.Values{"noprune": {"1"}}
	status, body, err = h.Call(ctx, http.MethodDelete, "/images/"+name, q, nil, "")
	if err == nil && status == http.StatusConflict {
		// A container uses the image: the engine asks for force.
		q.Set("force", "1")
		status, body, err = h.Call(ctx, http.MethodDelete, "/images/"+name, q, nil, "")
	}
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusNotFound {
		return engineStatus(h, "untag "+name, status, body)
	}
	return nil
}

// holdImage makes a child image of image id on h (the commit of a
// container created from it, never started, then removed) and returns its
// ID.
func (h *Host) holdImage(ctx context.Context, id string) (string, error) {
	spec, _ := json.Marshal(map[string]any{"Image": id, "Cmd": []string{"true"},
		"HostConfig": map[string]string{"NetworkMode": "none"}})
	status, body, err := h.Call(ctx, http.MethodPost, "/containers/create", nil, bytes.NewReader(spec), "application/json")
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", engineStatus(h, "hold image "+shortID(id), status, body)
	}
	var c struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", fmt.Errorf("host %s: hold image: %w", h.Name, err)
	}
	defer func() {
		_, _, _ = h.Call(context.WithoutCancel(ctx), http.MethodDelete, "/containers/"+c.ID, url.Values{"force": {"1"}, "v": {"1"}}, nil, "")
	}()
	status, body, err = h.Call(ctx, http.MethodPost, "/commit", url.Values{"container": {c.ID}}, nil, "")
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", engineStatus(h, "hold image "+shortID(id), status, body)
	}
	var img struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(body, &img); err != nil {
		return "", fmt.Errorf("host %s: hold image: %w", h.Name, err)
	}
	return img.ID, nil
}

// dropHold removes a child image holdImage made, keeping its parents.
func (h *Host) dropHold(ctx context.Context, child string) {
	_, _, _ = h.Call(ctx, http.MethodDelete, "/images/"+child, url.Values{"noprune": {"1"}}, nil, "")
}

// engineStatus is an engine's unexpected answer as an error.
func engineStatus(h *Host, what string, status int, body []byte) error {
	var m struct{ Message string }
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return fmt.Errorf("host %s: %s: %d %s", h.Name, what, status, m.Message)
	}
	return fmt.Errorf("host %s: %s: status %d", h.Name, what, status)
}

// isDigestRef reports whether a normalized reference is name@digest.
func isDigestRef(ref string) bool { return strings.Contains(ref, "@") }

// familiar is a normalized reference as the docker CLI writes it
// (app:1, not docker.io/library/app:1).
func familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
