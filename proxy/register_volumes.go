package proxy

import "github.com/gorilla/mux"

// registerVolumes adds the volumes routes (Front door II).
func (s *Server) registerVolumes(r *mux.Router) {}
