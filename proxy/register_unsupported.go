package proxy

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/internal/errdefs"
)

// errNotSwarmManager is the engine's own answer to swarm-mode calls on a
// node outside a swarm; clients know it.
var errNotSwarmManager = errdefs.New(errdefs.ErrUnavailable,
	"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")

// unsupportedPrefixes are the resources Clocker does not serve yet; each
// gets a deliberate error instead of a hang or a misleading 404.
var unsupportedPrefixes = []string{
	"/images", "/build", "/commit", "/volumes", "/networks", "/events",
	"/system", "/auth", "/session", "/grpc", "/distribution",
}

var swarmPrefixes = []string{"/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs"}

func (s *Server) registerUnsupported(r *mux.Router) {
	for _, p := range unsupportedPrefixes {
		s.registerPrefix(r, p, func(w http.ResponseWriter, r *http.Request) error {
			return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("%s %s is not supported by Clocker yet", r.Method, stripVersion(r.URL.Path)))
		})
	}
	for _, p := range swarmPrefixes {
		s.registerPrefix(r, p, func(http.ResponseWriter, *http.Request) error { return errNotSwarmManager })
	}
	s.registerPrefix(r, "/plugins", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.New(errdefs.ErrNotImplemented, "plugins are not supported by Clocker: manage them on each host")
	})
}

func (s *Server) registerPrefix(r *mux.Router, prefix string, h handlerFunc) {
	handler := s.metrics.instrument(prefix+"/*", s.withAPIVersion(adapt(s.Log, h)))
	r.PathPrefix("/v{version:[0-9]+(?:\\.[0-9]+)*}" + prefix).Handler(handler)
	r.PathPrefix(prefix).Handler(handler)
}
