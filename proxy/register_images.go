package proxy

import "github.com/gorilla/mux"

// registerImages adds the images routes (Front door II).
func (s *Server) registerImages(r *mux.Router) {}
