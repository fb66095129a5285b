package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/clocker/clocker/hosts"
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

// ask is how handlers reach hosts on r's behalf (hosts.Asker): hostRequest.
func (s *Server) ask(r *http.Request) hosts.Asker {
	return func(ctx context.Context, h *hosts.Host, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
		return s.hostRequest(ctx, r, h, method, path, query, body)
	}
}

// isStatus accepts only the answer status want.
func isStatus(want int) func(int) bool { return func(s int) bool { return s == want } }
