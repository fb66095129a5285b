package proxy

import "github.com/gorilla/mux"

// registerNetworks adds the networks routes (Front door II).
func (s *Server) registerNetworks(r *mux.Router) {}
