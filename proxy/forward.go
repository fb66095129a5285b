package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// errPageNotFound is the engine's answer for an unknown route.
var errPageNotFound = errdefs.New(errdefs.ErrNotFound, "page not found")

// forwardOptions tune one forwarded request.
type forwardOptions struct {
	// path is the engine path without version (e.g. /containers/ID/start).
	path string
	// modify may rewrite a successful response before the client sees it.
	modify func(*http.Response) error
}

// forward sends the request to host h under path and copies the answer
// back, streaming (FlushInterval -1 flushes headers at once and every write
// after).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, h *hosts.Host, opt forwardOptions) error {
	if !h.Healthy() && h.LastError() != nil {
		return h.Unavailable()
	}
	target := "/v" + upstreamVersion(r, h) + opt.path
	fleetV := s.Fleet.APIVersion(fallbackAPIVersion)
	rp := &httputil.ReverseProxy{
		Transport:     h,
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			base := h.Endpoint.Base
			pr.Out.URL.Scheme = base.Scheme
			pr.Out.URL.Host = base.Host
			pr.Out.URL.Path = target
			pr.Out.URL.RawPath = ""
			pr.Out.Host = base.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			setEngineHeaders(resp.Header, fleetV, s.serverHeader())
			if opt.modify != nil && resp.StatusCode < 400 {
				return opt.modify(resp)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			if errdefs.Status(err) != http.StatusInternalServerError {
				writeError(w, err) // from opt.modify, already in our vocabulary
				return
			}
			writeError(w, s.upstreamFailed(r.Context(), h, err))
		},
	}
	// The engine's answer carries these headers; ours must not double them.
	for _, k := range engineHeaders {
		w.Header().Del(k)
	}
	rp.ServeHTTP(w, r)
	return nil
}

// upstreamFailed counts a call to host h that failed at the transport
// (the host's RoundTrip has told its health watcher) and returns the
// client's 503.
func (s *Server) upstreamFailed(ctx context.Context, h *hosts.Host, err error) error {
	s.metrics.upstream.WithLabelValues(h.Name).Inc()
	return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s (%s): %v", h.Name, h.Endpoint.URL, err))
}

// replaceBody swaps a response body for b, fixing the length headers.
func replaceBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("Transfer-Encoding")
	resp.TransferEncoding = nil
}

// readJSONBody reads a JSON request body, bounded by MaxBody, and checks
// that it parses. An empty body is returned as nil.
func (s *Server) readJSONBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.MaxBody+1))
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "reading request body: "+err.Error())
	}
	if int64(len(body)) > s.MaxBody {
		return nil, errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("request body is larger than %d bytes (see clocker serve --max-body)", s.MaxBody))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	return body, nil
}

// bufferJSONBody replaces r.Body with its checked, bounded copy so that a
// bad body is refused before anything reaches a host.
func (s *Server) bufferJSONBody(r *http.Request) error {
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if len(body) > 0 {
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		r.Header.Del("Content-Length")
	}
	return nil
}
