package proxy

import (
	"net/http"

	"github.com/gorilla/mux"
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
		route{http.MethodPost, "/images/create", s.createImage},
		route{http.MethodPost, "/images/load", s.loadImages},
		route{http.MethodPost, "/images/prune", s.pruneImages},
		route{http.MethodGet, "/images/{name:.*}/json", s.inspectImage},
		route{http.MethodGet, "/images/{name:.*}/history", s.imageHistory},
		route{http.MethodGet, "/images/{name:.*}/get", s.saveImages},
		route{http.MethodPost, "/images/{name:.*}/tag", s.tagImage},
		route{http.MethodPost, "/images/{name:.*}/push", s.pushImage},
		route{http.MethodDelete, "/images/{name:.*}", s.removeImage},
		route{http.MethodPost, "/build", s.build},
		route{http.MethodPost, "/build/prune", s.pruneBuildCache},
	)
}
