package proxy

import (
	"net/http"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
)

// systemDFHandler answers GET /system/df for the fleet: every healthy
// host's answer, merged by engineapi.MergeDiskUsage.
func (s *Server) systemDFHandler(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	answers := fanout.Each(hs, func(h *hosts.Host) ([]byte, error) {
		return s.ask(r).JSON(r.Context(), h, http.MethodGet, "/system/df", r.URL.Query(), nil)
	})
	parts := make([][]byte, len(hs))
	// A refusal of the query first (the same on every host), then the
	// first host that failed: a partial answer would understate the fleet.
	var first error
	for i, a := range answers {
		parts[i] = a.Value
		switch err := a.Err; {
		case err == nil:
		case errdefs.Status(err) < 500:
			return err
		case first == nil:
			first = err
			if !strings.HasPrefix(err.Error(), "host ") {
				first = errdefs.New(err, "host "+hs[i].Name+": "+err.Error())
			}
		}
	}
	if first != nil {
		return first
	}
	merged, err := engineapi.MergeDiskUsage(parts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(merged, '\n'))
	return err
}
