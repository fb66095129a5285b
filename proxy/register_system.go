package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
)

func (s *Server) registerSystem(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/_ping", s.ping},
		route{http.MethodHead, "/_ping", s.ping},
		route{http.MethodGet, "/version", s.version},
		route{http.MethodGet, "/info", s.info},
	)
}

// ping answers as an engine does; the CLI and the Go client negotiate
// their version from its Api-Version header.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

// healthyHosts returns the hosts that answer, or the unavailable error when
// none does.
func (s *Server) healthyHosts() ([]*hosts.Host, error) { return s.Fleet.Healthy() }

// version takes a healthy engine's answer and makes it the fleet's
// (engineapi.FleetVersion).
func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	raw, status, err := hs[0].GetJSON(r.Context(), "/version", nil)
	if err != nil || status != http.StatusOK {
		return hs[0].Unavailable()
	}
	others := make([]string, 0, len(hs)-1)
	for _, h := range hs[1:] {
		others = append(others, h.Facts().Version)
	}
	platform := fmt.Sprintf("Clocker %s (a fleet of %d engines)", Version, len(s.Fleet.Hosts()))
	v, err := engineapi.FleetVersion(raw, others, s.Fleet.APIVersion(fallbackAPIVersion), MinAPIVersion, platform)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// info sums the fleet (engineapi.MergeInfo) over a healthy engine's
// answer.
func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	all := s.Fleet.Hosts()
	ihs := make([]engineapi.InfoHost, len(all))
	for i, h := range all {
		ihs[i] = engineapi.InfoHostOf(h)
	}
	tenantInfo(r, ihs)
	v, err := engineapi.MergeInfo(hs[0].Facts().Info, engineapi.InfoFleet{
		Name: clockerName(), OperatingSystem: fmt.Sprintf("Clocker %s (%d hosts)", Version, len(all)),
		Strategy: s.Strategy.Name, Filters: filterNames(s), Images: s.distinctImages(r, hs),
		Role: s.role(), Primary: s.primary(),
	}, ihs)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// distinctImages counts the images of hosts hs as the merged list of
// every image shows them (one row an image, however many hosts hold it);
// nil when no host answered.
func (s *Server) distinctImages(r *http.Request, hs []*hosts.Host) *int {
	lists, err := s.collectImageLists(r, hs, url.Values{"all": {"1"}})
	if err != nil || len(lists) == 0 {
		return nil
	}
	rows, err := engineapi.MergeImageLists(lists)
	if err != nil {
		return nil
	}
	ids := map[string]bool{}
	for _, row := range rows {
		ids[row.ID] = true
	}
	n := len(ids)
	return &n
}

// role is this manager's, as classic Swarm's replication showed it:
// primary (it leads, or is the only one) or replica.
func (s *Server) role() string {
	if s.Managers == nil || s.Managers.IsLeader() || !s.Managers.Replicated() {
		return "primary"
	}
	return "replica"
}

// primary is the leading manager's address when there are several.
func (s *Server) primary() string {
	if s.Managers == nil || !s.Managers.Replicated() {
		return ""
	}
	if m, ok := s.Managers.Leader(); ok {
		return m.Address
	}
	return "(none elected)"
}

func filterNames(s *Server) string {
	names := make([]string, len(s.Strategy.Filters))
	for i, f := range s.Strategy.Filters {
		names[i] = f.Name()
	}
	return strings.Join(names, ", ")
}

func clockerName() string {
	name, err := os.Hostname()
	if err != nil {
		return "clocker"
	}
	return name
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
