package proxy

import (
	"context"
	"net/http"
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

// imagesChanged re-reads the image lists of the healthy hosts once the
// handler is done, so that a create right after a pull, load, build, tag
// or removal is placed on what the hosts hold now, not on what their event
// streams have delivered so far.
func (s *Server) imagesChanged(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := next(w, r)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		_ = imageFanout(s.Fleet.Hosts(), func(_ int, h *hosts.Host) error {
			if h.Healthy() {
				_ = h.RefreshImages(ctx) // the event stream catches up if this fails
			}
			return nil
		})
		return err
	}
}
