package proxy

import (
	"context"
	"fmt"
	"net/http"
	"regexp"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// MinAPIVersion is the oldest API version Clocker serves.
const MinAPIVersion = "1.17"

// fallbackAPIVersion is advertised before any engine has answered.
const fallbackAPIVersion = "1.41"

type ctxKey int

const apiVersionKey ctxKey = iota

// apiVersion is the version a request asked for (the fleet's when none).
func apiVersion(r *http.Request) string {
	v, _ := r.Context().Value(apiVersionKey).(string)
	return v
}

// withAPIVersion checks the path's version against what the fleet serves
// and records it for the handlers.
func (s *Server) withAPIVersion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fleetV := s.Fleet.APIVersion(fallbackAPIVersion)
		v := mux.Vars(r)["version"]
		switch {
		case v == "":
			v = fleetV
		case hosts.CompareVersions(v, fleetV) > 0:
			writeError(w, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
				"client version %s is too new. Maximum supported API version is %s", v, fleetV)))
			return
		case hosts.CompareVersions(v, MinAPIVersion) < 0:
			writeError(w, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
				"client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion)))
			return
		}
		setEngineHeaders(w.Header(), fleetV, s.serverHeader())
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiVersionKey, v)))
	})
}

// engineHeaders are the headers every engine response carries.
var engineHeaders = []string{"Api-Version", "Server", "Docker-Experimental", "Ostype"}

func setEngineHeaders(h http.Header, apiVersion, server string) {
	h.Set("Api-Version", apiVersion)
	h.Set("Server", server)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
}

// upstreamVersion is the version a request is forwarded with: the client's,
// raised to the oldest the host accepts.
func upstreamVersion(r *http.Request, h *hosts.Host) string {
	v := apiVersion(r)
	if min := h.Facts().MinAPI; min != "" && hosts.CompareVersions(v, min) < 0 {
		return min
	}
	return v
}

// versionPrefix matches the /vX.Y prefix of a path.
var versionPrefix = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)*/`)

// stripVersion returns the request path without its /vX.Y prefix.
func stripVersion(path string) string {
	if loc := versionPrefix.FindStringIndex(path); loc != nil {
		return path[loc[1]-1:]
	}
	return path
}
