package proxy

import (
	"net/http"

	"github.com/gorilla/mux"
)

// registerVolumes adds the volumes routes. A volume lives on one host;
// NAME or HOST/NAME reaches it (see volumes_handlers.go).
func (s *Server) registerVolumes(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/volumes", s.listVolumes},
		route{http.MethodPost, "/volumes/create", s.createVolume},
		route{http.MethodPost, "/volumes/prune", s.pruneVolumes},
		route{http.MethodGet, "/volumes/{name}", s.inspectVolume},
		route{http.MethodGet, "/volumes/{host}/{name}", s.inspectVolume},
		route{http.MethodDelete, "/volumes/{name}", s.removeVolume},
		route{http.MethodDelete, "/volumes/{host}/{name}", s.removeVolume},
	)
}
