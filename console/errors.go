package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// httpError is an error with the status the console answers it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// adapt turns a handler that returns an error into one that writes it as
// {"message": …} with its status: the front door's errors keep theirs.
func (c *Console) adapt(f func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := f(w, r)
		if err == nil {
			return
		}
		status := http.StatusInternalServerError
		var he *httpError
		switch {
		case errors.As(err, &he):
			status = he.status
		case errdefs.IsNotFound(err):
			status = http.StatusNotFound
		case errdefs.IsInvalidArgument(err):
			status = http.StatusBadRequest
		case errdefs.IsConflict(err):
			status = http.StatusConflict
		case errdefs.IsUnavailable(err):
			status = http.StatusServiceUnavailable
		}
		if status >= 500 {
			c.o.Log.Warn("console", "path", r.URL.Path, "err", err)
		}
		writeJSON(w, status, map[string]string{"message": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
