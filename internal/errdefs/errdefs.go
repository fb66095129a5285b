// Package errdefs is Clocker's small error vocabulary. Packages wrap one of
// these sentinels with context (fmt.Errorf("container %q: %w", id,
// errdefs.ErrNotFound)); the proxy maps them to Docker's status codes in one
// place, and callers match them with errors.Is, never by string.
package errdefs

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

var (
	// ErrNotFound: the object does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed or its values are wrong (400).
	ErrInvalid = errors.New("invalid argument")
	// ErrConflict: the request clashes with existing state (409).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the object exists but refuses the operation, such as
	// a network removed while containers are on it (403).
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: a host needed for the request does not answer (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrNoHostFits: no host of the fleet can take the container (503, as
	// classic swarm answered).
	ErrNoHostFits = errors.New("no host fits")
	// ErrTooLarge: the request body is over the configured limit (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrNotImplemented: a route Clocker deliberately does not serve (501).
	ErrNotImplemented = errors.New("not implemented")
	// ErrNotModified: the container is already in the requested state (304).
	ErrNotModified = errors.New("not modified")
)

// Message is an error whose text is exactly what the client must read,
// without the sentinel's wording appended (Docker's clients match on text
// such as "No such container: x").
type Message struct {
	Text string
	Kind error
}

func (m *Message) Error() string { return m.Text }

// Unwrap lets errors.Is see the kind.
func (m *Message) Unwrap() error { return m.Kind }

// New returns an error of the given kind whose message is text, verbatim.
func New(kind error, text string) error { return &Message{Text: text, Kind: kind} }

// NoSuchContainer is Docker's own not-found error for a container reference.
func NoSuchContainer(ref string) error { return New(ErrNotFound, "No such container: "+ref) }

// NoSuchImage is Docker's own not-found error for an image reference; the CLI
// and docker-py pull on seeing it.
func NoSuchImage(ref string) error { return New(ErrNotFound, "No such image: "+ref) }

// Status maps an error to the HTTP status Docker would answer with.
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNoHostFits):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrEngine is an engine's own internal error, passed on as a 500.
var ErrEngine = errors.New("engine error")

// FromEngine turns an engine's error answer into ours, keeping its message
// (the body's "message", else the body as text) and its status.
func FromEngine(status int, body []byte) error {
	var e struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	kind := ErrUnavailable
	switch status {
	case http.StatusNotFound:
		kind = ErrNotFound
	case http.StatusBadRequest:
		kind = ErrInvalid
	case http.StatusConflict:
		kind = ErrConflict
	case http.StatusNotModified:
		kind = ErrNotModified
	case http.StatusInternalServerError:
		kind = ErrEngine
	}
	return New(kind, msg)
}
