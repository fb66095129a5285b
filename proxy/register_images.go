package proxy

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/hosts"
)

// registerImages adds the images routes (Front door II). Image names may
// hold slashes and colons (registry.example:5000/team/app:1), hence the
// {name:.*} patterns; the fixed routes come first so that /images/json is
// never read as an image called "json".
func (s *Server) registerImages(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/images/json", s.listImages},
		route{http.MethodGet, "/images/search", s.searchImages},
		route{http.MethodGet, "/images/get", s.saveImages},
		route{http.MethodPost, "/images/create", s.imagesChanged(s.createImage)},
		route{http.MethodPost, "/images/load", s.imagesChanged(s.loadImages)},
		route{http.MethodPost, "/images/prune", s.imagesChanged(s.pruneImages)},
		route{http.MethodGet, "/images/{name:.*}/json", s.inspectImage},
		route{http.MethodGet, "/images/{name:.*}/history", s.imageHistory},
		route{http.MethodGet, "/images/{name:.*}/get", s.saveImages},
		route{http.MethodPost, "/images/{name:.*}/tag", s.imagesChanged(s.tagImage)},
		route{http.MethodPost, "/images/{name:.*}/push", s.pushImage},
		route{http.MethodDelete, "/images/{name:.*}", s.imagesChanged(s.removeImage)},
		route{http.MethodPost, "/build", s.imagesChanged(s.build)},
		route{http.MethodPost, "/build/prune", s.pruneBuildCache},
	)
}

// imagesChanged re-reads the image lists of the hosts the handler touched
// (see touchImages) once it is done, so that a create right after a pull,
// load, build, commit, tag or removal is placed on what those hosts hold
// now, not on what their event streams have delivered so far. The other
// hosts changed nothing: their lists are not read.
func (s *Server) imagesChanged(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		touched := &touchedHosts{}
		r = r.WithContext(context.WithValue(r.Context(), touchedKey{}, touched))
		err := next(w, r)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, h := range touched.list() {
			if h.Healthy() {
				// The event stream catches up if this fails.
				wg.Go(func() { _ = h.RefreshImages(ctx) })
			}
		}
		wg.Wait()
		return err
	}
}

type touchedKey struct{}

// touchedHosts are the hosts an image operation sent a changing request to.
type touchedHosts struct {
	mu    sync.Mutex
	hosts []*hosts.Host
}

func (t *touchedHosts) list() []*hosts.Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.hosts)
}

// touchImages notes that the request may change h's images (marked before
// the call: a failed or cut answer may still have changed them). Outside
// imagesChanged it does nothing.
func touchImages(ctx context.Context, h *hosts.Host) {
	t, ok := ctx.Value(touchedKey{}).(*touchedHosts)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.Contains(t.hosts, h) {
		t.hosts = append(t.hosts, h)
	}
}
