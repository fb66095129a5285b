package proxy

import "github.com/gorilla/mux"

// registerEvents adds the events routes (Front door II).
func (s *Server) registerEvents(r *mux.Router) {}
