package proxy

import (
	"net/http"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
)

// Placement is the placement package's (the scheduler over the fleet, the
// reservations); the proxy serves its dry run.

// WarmPlacement builds every host's placement snapshot now (see
// placement.Placer.Warm).
func (s *Server) WarmPlacement() { s.placer.Warm() }

// placementDryRun answers POST /v1/fleet/placement: the body is a
// container-create body; the answer ranks the hosts with their scores and
// says why each other host was turned down. Nothing is created.
func (s *Server) placementDryRun(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	c, err := admission.NewCreate(r.URL.Query().Get("name"), r.URL.Query(), body)
	if err != nil {
		return err
	}
	// What the create pipeline would ask placement, taking nothing.
	if err := s.creates.Plan(r.Context(), c); err != nil {
		return err
	}
	d, err := s.placer.Explain(r.Context(), &c.Request)
	out := struct {
		*scheduler.Decision
		// Host is where the container would go ("" when no host fits).
		Host string `json:"Host"`
		// Status and Error are what the create would answer when no host
		// fits.
		Status int    `json:"Status,omitempty"`
		Error  string `json:"Error,omitempty"`
	}{Decision: d}
	if out.Hosts == nil {
		out.Hosts = []scheduler.Candidate{}
	}
	if out.Rejected == nil {
		out.Rejected = []scheduler.Rejection{}
	}
	if err != nil {
		perr := placement.CreateError(err, c.Spec.Image)
		out.Status, out.Error = statusOf(perr), perr.Error()
	} else {
		out.Host = d.Hosts[0].Host
	}
	return writeJSON(w, http.StatusOK, out)
}

// PlacementOf returns the decision that placed a container created
// through this server recently (by full ID), for the console.
func (s *Server) PlacementOf(id string) (placement.Record, bool) { return s.placer.DecisionOf(id) }
