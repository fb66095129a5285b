// Package limits bounds what one request may make the front door hold:
// JSON bodies (size and nesting depth, read once and kept for the layers
// after), the paths of archive requests, and concurrent hijacked streams
// per identity. Transport limits (header size and timeouts) are the
// http.Server's, set where it is made.
package limits

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/clocker/clocker/frontdoor/reply"
)

// Body bounds request bodies that are decoded whole: JSON ones, and the
// creates whatever their content type (a client could leave it out to
// slip past the rules that read them). Streams (build contexts, archives,
// image loads) pass unread.
type Body struct {
	// Max is the largest body in bytes (413 beyond).
	Max int64
	// MaxDepth is the deepest nesting of JSON arrays and objects (400
	// beyond): a decoder's recursion must not be the client's to choose.
	MaxDepth int
}

type bodyKey struct{}

// Buffered returns the body Body read for r (false: the body was not
// read, it is a stream or there is none).
func Buffered(r *http.Request) ([]byte, bool) {
	b, ok := r.Context().Value(bodyKey{}).([]byte)
	return b, ok
}

// Middleware reads bounded bodies once and hands them on.
func (b Body) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || !Decoded(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > b.Max {
			reply.Error(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d (--max-body)", r.ContentLength, b.Max))
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, b.Max+1))
		if err != nil {
			reply.Error(w, r, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		if int64(len(raw)) > b.Max {
			reply.Error(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes (--max-body)", b.Max))
			return
		}
		if d := Depth(raw); b.MaxDepth > 0 && d > b.MaxDepth && looksJSON(raw) {
			reply.Error(w, r, http.StatusBadRequest, fmt.Sprintf("request body nests %d levels deep, more than the limit of %d", d, b.MaxDepth))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		r.ContentLength = int64(len(raw))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, raw)))
	})
}

// Decoded reports whether r's body is one read whole: JSON, or a create
// (containers, exec, networks, volumes) without a content type.
func Decoded(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		p := r.URL.Path
		return r.Method == http.MethodPost && (strings.HasSuffix(p, "/create") || strings.HasSuffix(p, "/exec") || strings.HasSuffix(p, "/start"))
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// looksJSON: Brooklyn takes YAML under a JSON content type; only a body
// that starts as JSON is held to the depth limit.
func looksJSON(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// Depth is the deepest nesting of arrays and objects in a JSON text
// (brackets inside strings do not count). It does not validate: the
// decoder after it does.
func Depth(raw []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
