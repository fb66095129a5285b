package proxy

import (
	"net/http"

	"github.com/gorilla/mux"
)

// registerNetworks adds the networks routes. A fleet network spans hosts
// (fleetnet.go); a per-host network lives on one host, and its ID, name or
// ID prefix, or HOST/… of those, reaches it (networks_handlers.go).
func (s *Server) registerNetworks(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/networks", s.listNetworks},
		route{http.MethodPost, "/networks/create", s.createNetworkRouted},
		route{http.MethodPost, "/networks/prune", s.pruneNetworks},
	)
	for _, ref := range []string{"/networks/{name}", "/networks/{host}/{name}"} {
		s.register(r,
			route{http.MethodGet, ref, s.inspectNetworkRouted},
			route{http.MethodDelete, ref, s.removeNetworkRouted},
			route{http.MethodPost, ref + "/connect", s.connectNetworkRouted},
			route{http.MethodPost, ref + "/disconnect", s.disconnectNetworkRouted},
		)
	}
}
