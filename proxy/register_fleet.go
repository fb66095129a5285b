package proxy

import (
	"net/http"

	"github.com/clocker/clocker/internal/leader"
	"github.com/gorilla/mux"
)

// fleetPrefix is Clocker's own API, beside Docker's. Its version is
// Clocker's (v1), not Docker's, so its routes are registered before the
// /v{version}/ patterns and without the API-version check.
const fleetPrefix = "/v1/fleet"

func (s *Server) registerFleet(r *mux.Router) {
	for _, rt := range []route{
		{http.MethodPost, "/placement", s.placementDryRun},
		{http.MethodGet, "/hosts", s.listFleetHosts},
		{http.MethodPost, "/hosts", s.addFleetHost},
		{http.MethodDelete, "/hosts/{name}", s.removeFleetHost},
		{http.MethodPost, "/hosts/{name}/drain", s.drainFleetHost},
		{http.MethodPost, "/hosts/{name}/labels", s.labelFleetHost},
		{http.MethodGet, "/managers", s.listManagers},
	} {
		r.Handle(fleetPrefix+rt.path, s.metrics.instrument(fleetPrefix+rt.path, adapt(s.Log, rt.handler))).Methods(rt.method)
	}
}

// listManagers is GET /v1/fleet/managers: every manager of the fleet, its
// address, and which leads. With etcd unreachable, the last list read.
func (s *Server) listManagers(w http.ResponseWriter, r *http.Request) error {
	if s.Managers == nil {
		return writeJSON(w, http.StatusOK, []leader.Manager{{Address: "", Leader: true, Self: true}})
	}
	ms, err := s.Managers.Managers(r.Context())
	if err != nil && len(ms) == 0 {
		return err
	}
	return writeJSON(w, http.StatusOK, ms)
}
