package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/fleetnet"
)

// listFleetHosts answers GET /v1/fleet/hosts.
func (s *Server) listFleetHosts(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, s.FleetHosts())
}

// FleetHosts is every host as the fleet API lists it, the machines being
// provisioned included (pending).
func (s *Server) FleetHosts() []hosts.Status {
	out := []hosts.Status{}
	for _, h := range s.Fleet.Hosts() {
		out = append(out, h.Status())
	}
	if s.Machines != nil {
		for _, m := range s.Machines.Pending() { // being made: not in the fleet yet
			if _, in := s.Fleet.Host(m.Name); !in {
				out = append(out, hosts.PendingStatus(m.Name, m.Record.URL, m.Provisioner))
			}
		}
	}
	return out
}

// addFleetHost answers POST /v1/fleet/hosts (provision.AddHost).
func (s *Server) addFleetHost(w http.ResponseWriter, r *http.Request) error {
	var body provision.AddRequest
	if err := s.decodeJSONBody(r, &body); err != nil {
		return err
	}
	h, err := provision.AddHost(r.Context(), s.Fleet, s.Machines, body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, h.Status())
}

// removeFleetHost answers DELETE /v1/fleet/hosts/{name}
// (provision.RemoveHost); Clocker's agent leaves with the host.
func (s *Server) removeFleetHost(w http.ResponseWriter, r *http.Request) error {
	if err := provision.RemoveHost(r.Context(), s.Fleet, s.Machines, mux.Vars(r)["name"], s.removeAgent); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// drainFleetHost answers POST /v1/fleet/hosts/{name}/drain; ?drain=false
// lifts it.
func (s *Server) drainFleetHost(w http.ResponseWriter, r *http.Request) error {
	drain := true
	if v := r.URL.Query().Get("drain"); v != "" {
		drain = engineapi.QueryBool(r.URL.Query(), "drain")
	}
	name := mux.Vars(r)["name"]
	if err := s.Fleet.SetDraining(name, drain); err != nil {
		return err
	}
	h, _ := s.Fleet.Host(name)
	return writeJSON(w, http.StatusOK, h.Status())
}

// labelFleetHost answers POST /v1/fleet/hosts/{name}/labels
// {"Labels": {"k": "v", "gone": ""}}: set, or remove with an empty value.
func (s *Server) labelFleetHost(w http.ResponseWriter, r *http.Request) error {
	var body struct{ Labels map[string]string }
	if err := s.decodeJSONBody(r, &body); err != nil {
		return err
	}
	if body.Labels == nil {
		return errdefs.New(errdefs.ErrInvalid, `Labels is required (e.g. {"Labels": {"storage": "ssd"}})`)
	}
	name := mux.Vars(r)["name"]
	if err := s.Fleet.SetLabels(name, body.Labels); err != nil {
		return err
	}
	h, _ := s.Fleet.Host(name)
	return writeJSON(w, http.StatusOK, h.Status())
}

// decodeJSONBody reads a JSON body into v, with Docker's 400 for bad JSON.
func (s *Server) decodeJSONBody(r *http.Request, v any) error {
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	if body == nil {
		return errdefs.New(errdefs.ErrInvalid, "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // a misspelt field must not be ignored
	if err := dec.Decode(v); err != nil {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid JSON: %v", err))
	}
	return nil
}

// removeAgent removes Clocker's agent from a host that left the fleet
// (best effort: the host may not answer).
func (s *Server) removeAgent(ctx context.Context, h *hosts.Host) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := fleetnet.RemoveAgent(ctx, h); err != nil {
		s.Log.Warn("remove the agent of a removed host", "host", h.Name, "err", err)
	}
}

// withoutAgents leaves the agent containers out of a list, unless the
// client asks for them by their label.
func withoutAgents(all []hosts.Container, q url.Values) []hosts.Container {
	if strings.Contains(q.Get("filters"), sdn.LabelAgent) {
		return all
	}
	return hosts.UserContainers(all)
}
