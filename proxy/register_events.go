package proxy

import (
	"net/http"

	"github.com/gorilla/mux"
)

// registerEvents adds the events routes (Front door II): the fleet's merged
// event stream and its merged disk usage.
func (s *Server) registerEvents(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/events", s.eventsHandler},
		route{http.MethodGet, "/system/df", s.systemDFHandler},
	)
}
