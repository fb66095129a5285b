package proxy

import (
	"net/http"

	"github.com/gorilla/mux"
)

// registerNetworks adds the networks routes. A network lives on one host
// until fleet networks arrive; its ID, name or ID prefix, or HOST/… of
// those, reaches it (see networks_handlers.go).
func (s *Server) registerNetworks(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/networks", s.listNetworks},
		route{http.MethodPost, "/networks/create", s.createNetwork},
		route{http.MethodPost, "/networks/prune", s.pruneNetworks},
	)
	for _, ref := range []string{"/networks/{name}", "/networks/{host}/{name}"} {
		s.register(r,
			route{http.MethodGet, ref, s.inspectNetwork},
			route{http.MethodDelete, ref, s.removeNetwork},
			route{http.MethodPost, ref + "/connect", s.connectNetwork},
			route{http.MethodPost, ref + "/disconnect", s.disconnectNetwork},
		)
	}
}
