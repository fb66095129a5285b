package proxy

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/scheduler"
)

// handlerFunc is a handler that returns its error instead of writing it;
// errorAdapter writes it once, in Docker's form.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// errorBody is Docker's error body.
type errorBody struct {
	Message string `json:"message"`
}

// writeError answers err as Docker would: its status and {"message": …}.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Message: err.Error()})
}

func statusOf(err error) int {
	var nf *scheduler.NoHostFitsError
	if errors.As(err, &nf) {
		switch {
		case nf.NoHealthy:
			return http.StatusServiceUnavailable // the fleet is down, not full
		case nf.ImageMissing:
			return http.StatusNotFound // the CLI pulls, then creates again
		default:
			return http.StatusConflict // never 404: the CLI would pull in vain
		}
	}
	return errdefs.Status(err)
}

// adapt turns a handlerFunc into an http.Handler that writes its error.
func adapt(log *slog.Logger, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			if errdefs.Status(err) >= 500 {
				log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, tenantError(r, err))
		}
	})
}
