package proxy

import (
	"context"
	"net/http"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn/ingress"
)

// The ingress of published ports is sdn/ingress's Table (s.Ingress, nil
// when off); the handlers here only ask it.

// ingressCreate runs the ingress's create step on a create body once the
// host is chosen: the body comes back with every published binding
// explicit, and release hands the ports to the container once the cache
// shows it (or frees them if the create failed).
//
// A shim until the create handler runs the admission chain with
// ingress.CreateStep.
func (s *Server) ingressCreate(ctx context.Context, h *hosts.Host, name string, body []byte) ([]byte, func(), error) {
	if s.Ingress == nil {
		return body, func() {}, nil
	}
	c, err := admission.NewCreate(name, nil, body)
	if err != nil {
		return nil, nil, err
	}
	c.Host = h
	step := ingress.NewCreateStep(s.Ingress)
	if err := step.Validate(c); err != nil {
		return nil, nil, err
	}
	b, err := step.Bind(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if b.Done == nil {
		return body, func() {}, nil // nothing published through the ingress
	}
	out, err := c.Body()
	if err != nil {
		b.Undo()
		return nil, nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	return out, b.Done, nil
}

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
// published host port another container holds; otherwise it is
// changeContainer.
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if s.Ingress != nil {
		_, c, err := s.resolve(r)
		if err != nil {
			return err
		}
		if err := s.Ingress.CheckStart(&c); err != nil {
			return err
		}
	}
	return s.changeContainer(w, r)
}
