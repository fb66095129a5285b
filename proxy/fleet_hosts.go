package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/fleetnet"
)

// fleetHost is one host in GET /v1/fleet/hosts, with Docker-style names.
type fleetHost struct {
	Name        string
	Address     string
	Provisioner string
	// State is pending (not answered yet), healthy, unhealthy or draining.
	State          string
	Containers     int
	NCPU           int
	ReservedCPUs   float64
	MemTotal       int64
	ReservedMemory int64
	// Labels are the engine's labels with Clocker's own over them.
	Labels map[string]string
	// EngineLabels and ClockerLabels are the two sources apart.
	EngineLabels  map[string]string
	ClockerLabels map[string]string
	ServerVersion string `json:",omitempty"`
	Error         string `json:",omitempty"`
	Added         time.Time
}

// hostState names a host's state for the fleet API.
func hostState(h *hosts.Host) string {
	switch {
	case h.Draining():
		return "draining"
	case h.Healthy():
		return "healthy"
	case h.LastError() == nil:
		return "pending"
	default:
		return "unhealthy"
	}
}

// reservations sums what a host's containers reserve with --cpus and -m.
func reservations(cs []hosts.Container) (nanoCPUs, memory int64) {
	for _, c := range cs {
		nanoCPUs += c.NanoCPUs
		memory += c.Memory
	}
	return nanoCPUs, memory
}

func fleetHostOf(h *hosts.Host) fleetHost {
	f := h.Facts()
	cs := withoutAgents(h.Containers(), nil) // as `docker ps` counts them
	cpus, mem := reservations(cs)
	engine := placement.EngineLabels(f)
	labels := maps.Clone(engine)
	maps.Copy(labels, h.Labels())
	out := fleetHost{
		Name: h.Name, Address: h.URL, Provisioner: h.Provisioner, State: hostState(h),
		Containers: len(cs), NCPU: f.NCPU, ReservedCPUs: float64(cpus) / 1e9,
		MemTotal: f.MemTotal, ReservedMemory: mem,
		Labels: labels, EngineLabels: engine, ClockerLabels: h.Labels(),
		ServerVersion: f.Version, Added: h.Added,
	}
	if out.ClockerLabels == nil {
		out.ClockerLabels = map[string]string{}
	}
	if err := h.LastError(); err != nil && !h.Healthy() {
		out.Error = err.Error()
	}
	return out
}

// listFleetHosts answers GET /v1/fleet/hosts.
func (s *Server) listFleetHosts(w http.ResponseWriter, r *http.Request) error {
	out := []fleetHost{}
	for _, h := range s.Fleet.Hosts() {
		out = append(out, fleetHostOf(h))
	}
	if s.Machines != nil {
		for _, m := range s.Machines.Pending() { // being made: not in the fleet yet
			if _, in := s.Fleet.Host(m.Name); !in {
				out = append(out, fleetHost{Name: m.Name, Address: m.Record.URL, Provisioner: m.Provisioner, State: "pending",
					Labels: map[string]string{}, EngineLabels: map[string]string{}, ClockerLabels: map[string]string{}})
			}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// addFleetHost answers POST /v1/fleet/hosts: {"Name": "h4", "URL":
// "tcp://…"} joins an engine that must answer first (and is stored);
// {"Provisioner": "local"} or {"Provisioner": "ssh", "Target":
// "root@10.0.0.5"} makes a host with a provisioner.
func (s *Server) addFleetHost(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name string
		URL  string
		// TLS names the CA, client certificate and key files (on Clocker's
		// machine) for an engine started with --tlsverify.
		TLS         hosts.EngineTLS
		Provisioner string
		Target      string
		Labels      map[string]string
	}
	if err := s.decodeJSONBody(r, &body); err != nil {
		return err
	}
	var h *hosts.Host
	var err error
	switch {
	case body.Provisioner != "" && body.Provisioner != "static":
		if body.URL != "" {
			return errdefs.New(errdefs.ErrInvalid, "give URL (an engine to join) or Provisioner (a host to make), not both")
		}
		if s.Machines == nil {
			return errdefs.New(errdefs.ErrInvalid, "no provisioner is configured on this server")
		}
		// Making a machine may install Docker over SSH: minutes, not seconds.
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
		defer cancel()
		h, err = s.Machines.Provision(ctx, body.Provisioner, provision.Request{Name: body.Name, Target: body.Target, Labels: body.Labels})
	case body.URL == "":
		return errdefs.New(errdefs.ErrInvalid, `URL or Provisioner is required (e.g. {"URL": "tcp://10.0.0.4:2375"} or {"Provisioner": "local"})`)
	case body.Target != "" || len(body.Labels) > 0:
		return errdefs.New(errdefs.ErrInvalid, "Target and Labels are for a Provisioner; label a joined host with POST /v1/fleet/hosts/NAME/labels")
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		h, err = s.Fleet.Join(ctx, hosts.Record{Name: body.Name, URL: body.URL, TLS: body.TLS})
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	// Let the new host's cache fill, so that it takes containers at once.
	for h.LastError() == nil && !h.Healthy() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	return writeJSON(w, http.StatusCreated, fleetHostOf(h))
}

// removeFleetHost answers DELETE /v1/fleet/hosts/{name}.
func (s *Server) removeFleetHost(w http.ResponseWriter, r *http.Request) error {
	name := mux.Vars(r)["name"]
	h, ok := s.Fleet.Host(name)
	if s.Machines != nil {
		// A host a provisioner made is destroyed with it.
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		_, made := s.Machines.Machine(name)
		if err := s.Machines.Remove(ctx, name); err != nil {
			return err
		}
		if ok && !made {
			s.removeAgent(ctx, h) // Clocker's own: it leaves with the host
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err := s.Fleet.Remove(name, func(c *hosts.Container) bool { return !IsAgent(c) }); err != nil {
		return err
	}
	if ok {
		s.removeAgent(r.Context(), h) // Clocker's own: it leaves with the host
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
	return writeJSON(w, http.StatusOK, fleetHostOf(h))
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
	return writeJSON(w, http.StatusOK, fleetHostOf(h))
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

// IsAgent tells Clocker's own agent containers from the user's: they take
// no slot, keep no host busy and are not listed.
func IsAgent(c *hosts.Container) bool { return c.Summary.Labels[sdn.LabelAgent] != "" }

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
	out := make([]hosts.Container, 0, len(all))
	for i := range all {
		if !IsAgent(&all[i]) {
			out = append(out, all[i])
		}
	}
	return out
}
