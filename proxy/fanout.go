package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// hostRequest sends one request to a host under the request's API version
// (raised to what the host accepts). path has no version prefix; query may
// be nil.
func (s *Server) hostRequest(ctx context.Context, r *http.Request, h *hosts.Host, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	u := *h.Endpoint.Base
	u.Path = "/v" + upstreamVersion(r, h) + path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"Content-Type", "X-Registry-Auth", "X-Registry-Config"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.RoundTrip(req)
	if err != nil {
		return nil, s.upstreamFailed(req.Context(), h, err)
	}
	return resp, nil
}

// hostJSON sends a request to a host and returns the body of a 2xx answer;
// an error answer becomes our error with the engine's message.
func (s *Server) hostJSON(ctx context.Context, r *http.Request, h *hosts.Host, method, path string, query url.Values, body io.Reader) ([]byte, error) {
	resp, err := s.hostRequest(ctx, r, h, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	if resp.StatusCode >= 300 {
		return nil, relayError(resp.StatusCode, data)
	}
	return data, nil
}
