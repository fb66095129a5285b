package authz

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/clocker/clocker/frontdoor/identity"
	"github.com/clocker/clocker/frontdoor/limits"
	"github.com/clocker/clocker/frontdoor/reply"
)

// Authorizer runs the rules, then the plugins in order (every one must
// allow, as in dockerd).
type Authorizer struct {
	Rules   Rules
	Plugins []*Plugin
	Log     *slog.Logger
	// MaxBody bounds a body the rules read themselves, when no earlier
	// layer has (the in-process client's requests).
	MaxBody int64
}

// Middleware refuses what the rules or a plugin deny.
func (a *Authorizer) Middleware(next http.Handler) http.Handler {
	if a.Rules.Empty() && len(a.Plugins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := a.body(r)
		if err != nil {
			reply.Error(w, r, http.StatusBadRequest, err.Error())
			return
		}
		if reason := a.Rules.Check(r.Method, r.URL.Path, body); reason != "" {
			a.Log.Info("refused by rule", "method", r.Method, "path", r.URL.Path, "reason", reason)
			reply.Error(w, r, http.StatusForbidden, reason)
			return
		}
		if len(a.Plugins) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		req, err := newRequest(r, body)
		if err != nil {
			reply.Error(w, r, http.StatusForbidden, err.Error())
			return
		}
		if !a.ask(w, r, req, (*Plugin).AuthZReq) {
			return
		}
		rm := &responseModifier{w: w, header: http.Header{}}
		next.ServeHTTP(rm, r)
		if rm.passthrough {
			// A stream or a hijack: already on its way; nothing to stop.
			return
		}
		req.ResponseStatusCode = rm.status()
		req.ResponseHeaders = flatHeaders(rm.header)
		if sendBody(r.URL.Path, rm.header) {
			req.ResponseBody = rm.buf.Bytes()
		}
		if !a.ask(w, r, req, (*Plugin).AuthZRes) {
			return
		}
		rm.flushAll()
	})
}

// ask puts req to every plugin with call (AuthZReq or AuthZRes); on the
// first refusal or failure it writes the answer and reports false.
// dockerd fails closed when a plugin cannot answer: 500.
func (a *Authorizer) ask(w http.ResponseWriter, r *http.Request, req *Request, call func(*Plugin, context.Context, *Request) (*Response, error)) bool {
	for _, p := range a.Plugins {
		res, err := call(p, r.Context(), req)
		if err != nil {
			reply.Error(w, r, http.StatusInternalServerError, fmt.Sprintf("plugin %s failed with error: %s", p.Name, err))
			return false
		}
		if !res.Allow {
			reply.Error(w, r, http.StatusForbidden, fmt.Sprintf("authorization denied by plugin %s: %s", p.Name, res.Msg))
			return false
		}
	}
	return true
}

// body is the request body when something here reads it.
func (a *Authorizer) body(r *http.Request) ([]byte, error) {
	if b, ok := limits.Buffered(r); ok {
		return b, nil
	}
	if !a.Rules.ReadsBody(r.Method, r.URL.Path) && (len(a.Plugins) == 0 || !sendBody(r.URL.Path, r.Header)) {
		return nil, nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	max := a.MaxBody
	if max <= 0 {
		max = 10 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("request body is larger than %d bytes", max)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return raw, nil
}

func newRequest(r *http.Request, body []byte) (*Request, error) {
	req := &Request{
		RequestMethod:  r.Method,
		RequestURI:     r.URL.RequestURI(),
		RequestHeaders: flatHeaders(r.Header),
	}
	if id, ok := identity.FromContext(r.Context()); ok {
		req.User, req.UserAuthNMethod = id.Name, string(id.Method)
	}
	if sendBody(r.URL.Path, r.Header) {
		if len(body) > MaxPluginBody {
			return nil, fmt.Errorf("request body too large for authorization plugin: size exceeds %d bytes", MaxPluginBody)
		}
		req.RequestBody = body
	}
	if r.TLS != nil {
		for _, c := range r.TLS.PeerCertificates {
			req.RequestPeerCertificates = append(req.RequestPeerCertificates, PeerCertificate(c.Raw))
		}
	}
	return req, nil
}

var authRoute = regexp.MustCompile(`^(/v[0-9.]+)?/auth`)

// sendBody is dockerd's rule: only JSON bodies, never those of /auth
// (they hold registry passwords).
func sendBody(path string, h http.Header) bool {
	if authRoute.MatchString(path) {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// flatHeaders is dockerd's: one value per name, credentials left out.
func flatHeaders(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "X-Registry-Config") || strings.EqualFold(k, "X-Registry-Auth") {
			continue
		}
		for _, v := range vs {
			m[k] = v
		}
	}
	return m
}

// responseModifier holds an answer until the plugins have seen it. A
// flush (a stream), a hijack or a body past MaxPluginBody sends what it
// holds and passes the rest straight through: dockerd cannot take a
// stream back either.
type responseModifier struct {
	w           http.ResponseWriter
	header      http.Header
	code        int
	buf         bytes.Buffer
	passthrough bool
}

func (m *responseModifier) Header() http.Header {
	if m.passthrough {
		return m.w.Header()
	}
	return m.header
}

func (m *responseModifier) WriteHeader(code int) {
	if m.passthrough {
		m.w.WriteHeader(code)
		return
	}
	if m.code == 0 {
		m.code = code
	}
}

func (m *responseModifier) Write(p []byte) (int, error) {
	if m.passthrough {
		return m.w.Write(p)
	}
	if m.buf.Len()+len(p) > MaxPluginBody {
		m.flushAll()
		return m.w.Write(p)
	}
	return m.buf.Write(p)
}

func (m *responseModifier) status() int {
	if m.code == 0 {
		return http.StatusOK
	}
	return m.code
}

// flushAll sends what is held and passes the rest through.
func (m *responseModifier) flushAll() {
	if m.passthrough {
		return
	}
	m.passthrough = true
	h := m.w.Header()
	for k, v := range m.header {
		h[k] = v
	}
	m.w.WriteHeader(m.status())
	if m.buf.Len() > 0 {
		_, _ = m.w.Write(m.buf.Bytes())
		m.buf.Reset()
	}
}

// Flush starts a stream.
func (m *responseModifier) Flush() {
	m.flushAll()
	_ = http.NewResponseController(m.w).Flush()
}

// Hijack hands the connection over; the hijacker writes its own head.
func (m *responseModifier) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	m.passthrough = true
	return http.NewResponseController(m.w).Hijack()
}

// Unwrap lets http.ResponseController reach deadlines below.
func (m *responseModifier) Unwrap() http.ResponseWriter { return m.w }
