// Package reply writes the front door's own refusals in the wording of the
// API that was asked: Brooklyn's ApiError under /v1/ (with
// X_brooklyn_unauthorized_message on a 401, which Brooklyn clients echo),
// Docker's {"message": …} everywhere else.
package reply

import (
	"encoding/json"
	"net/http"
	"strings"
)

// IsBrooklyn reports whether path belongs to the Brooklyn-compatible and
// fleet API (/v1/…), not to Docker's versioned routes (/v1.41/…).
func IsBrooklyn(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/")
}

// brooklynError is Brooklyn's ApiError.
type brooklynError struct {
	Message string `json:"message"`
	Details string `json:"details"`
	Error   int    `json:"error"`
}

type dockerError struct {
	Message string `json:"message"`
}

// Error writes a refusal with status code and message msg.
func Error(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	var body any = dockerError{Message: msg}
	if IsBrooklyn(r.URL.Path) {
		body = brooklynError{Message: msg, Error: code}
		if code == http.StatusUnauthorized {
			h.Set("X_brooklyn_unauthorized_message", msg)
		}
	}
	if code == http.StatusUnauthorized && IsBrooklyn(r.URL.Path) {
		h.Set("WWW-Authenticate", `Basic realm="clocker"`)
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
