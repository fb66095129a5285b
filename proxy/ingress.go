package proxy

import (
	"net/http"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/sdn/ingress"
)

// The ingress of published ports is sdn/ingress's Table (s.Ingress, nil
// when off); the handlers here only ask it.

// ingressInspect shows where a container's published ports are reached in
// an inspect body (the ingress address, else its host's).
func (s *Server) ingressInspect(h *hosts.Host, body []byte) []byte {
	return s.Ingress.ShowInspect(h, body)
}

// ingressList does for a `docker ps` entry what ingressInspect does for
// inspect.
func (s *Server) ingressList(host string, raw []byte) []byte {
	if !ingress.HasPublished(raw) {
		return raw
	}
	h, ok := s.Fleet.Host(host)
	if !ok {
		return raw
	}
	return s.Ingress.ShowList(h, raw)
}

// startContainer refuses, as an engine does, to start a container whose
// published host port another container holds; otherwise it forwards the
// start (or restart) and answers once the cache and the hosts' fleet DNS
// know the container (syncAfter).
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	if s.Ingress != nil {
		if err := s.Ingress.CheckStart(&c); err != nil {
			return err
		}
	}
	if err := s.bufferJSONBody(r); err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: s.syncAfter(h, c.ID())})
}
