package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/tenant"
	"github.com/clocker/clocker/placement"
)

// createContainer admits the create through the pipeline (see
// createSteps for its order) and forwards it to the host it placed. The
// cache knows the container before the client does.
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" {
		// The engine checks the name before it reads the body.
		if err := placement.ValidateName(name); err != nil {
			return err
		}
	}
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	c, err := admission.NewCreate(name, r.URL.Query(), body)
	if err != nil {
		return err
	}
	if t, ok := tenant.FromContext(r.Context()); ok {
		c.Tenant = &t
	}
	err = s.creates.Run(r.Context(), c, func(ctx context.Context, c *admission.Create, body []byte) (bool, error) {
		return s.forwardCreate(ctx, w, r, c, body)
	})
	if admission.NotCreated(err) {
		return nil // the engine's answer is written
	}
	return err
}

// forwardCreate sends the admitted create to its host and relays the
// engine's answer; a created container is in the host's cache first.
func (s *Server) forwardCreate(ctx context.Context, w http.ResponseWriter, r *http.Request, c *admission.Create, body []byte) (bool, error) {
	h := c.Host
	u := *h.Endpoint.Base
	u.Path = "/v" + upstreamVersion(r, h) + "/containers/create"
	q := maps.Clone(c.Query)
	if q == nil {
		q = url.Values{}
	}
	q.Set("name", c.Name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.RoundTrip(req)
	if err != nil {
		return false, s.upstreamFailed(ctx, h, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	created := resp.StatusCode == http.StatusCreated
	if created {
		var id struct {
			ID string `json:"Id"`
		}
		if json.Unmarshal(out, &id) == nil && id.ID != "" {
			c.ID = id.ID
			if err := c.Created(ctx); err != nil {
				s.removeUnfinished(ctx, c)
				return false, err
			}
			if err := h.Refresh(ctx, id.ID); err != nil {
				s.Log.Warn("cache refresh after create", "host", h.Name, "id", id.ID, "err", err)
			}
		}
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, err = w.Write(out)
	return created, err
}

// removeUnfinished removes a container the engine made but a Created hook
// could not finish: a refused create leaves nothing.
func (s *Server) removeUnfinished(ctx context.Context, c *admission.Create) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := c.Host.Client().ContainerRemove(rctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		s.Log.Warn("removing an unfinished create", "host", c.Host.Name, "id", c.ID, "err", err)
	}
	c.Host.Forget(c.ID)
}
