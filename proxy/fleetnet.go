package proxy

// The network routes' fleet-network side, over HTTP: the *Routed
// handlers send a request about a fleet network to the controller
// (sdn/fleetnet, s.Nets) and everything else to the per-host handlers
// (networks_handlers.go). The controller owns membership, the engines'
// copies, the agents and their DNS; these handlers read requests and
// write answers.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/fleetnet"
)

// fleetNetwork returns the fleet network ref names (ID, name or ID
// prefix), unless ref names a host (HOST/NAME) or fleet networks are off.
func (s *Server) fleetNetwork(ref string) (sdn.Network, bool) {
	if s.Nets == nil {
		return sdn.Network{}, false
	}
	return s.Nets.Network(ref)
}

// --- create ------------------------------------------------------------------

// createNetworkRouted sends a create to the fleet or to one host.
func (s *Server) createNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	if s.Nets == nil {
		return s.createNetwork(w, r)
	}
	var req fleetnet.NetworkRequest
	body, err := s.readObjectRequest(r, &req)
	if err != nil {
		return err
	}
	if s.Nets.IsFleet(req) {
		defer placement.LockName(scheduler.KindNetwork, req.Name)()
		n, err := s.Nets.Create(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, map[string]string{"Id": n.ID, "Warning": ""})
	}
	if _, ok := s.fleetNetwork(req.Name); ok {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", req.Name))
	}
	if _, ok := req.Options[sdn.OptionScope]; ok {
		// Clocker's option, not the engine's.
		opts := maps.Clone(req.Options)
		delete(opts, sdn.OptionScope)
		raw, _ := json.Marshal(opts)
		if body, err = engineapi.SetFields(body, map[string]json.RawMessage{"Options": raw}); err != nil {
			return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
		}
	}
	setBody(r, body)
	return s.createNetwork(w, r)
}

// --- list, inspect, remove ---------------------------------------------------

// fleetListEntries are the fleet networks for GET /networks, filtered as
// an engine filters.
func (s *Server) fleetListEntries(rawFilters string) ([]json.RawMessage, error) {
	if s.Nets == nil {
		return nil, nil
	}
	var out []json.RawMessage
	for _, o := range s.Nets.List(rawFilters) {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// isFleetCopy tells whether a network an engine listed is its copy of a
// fleet network (listed once, as the fleet network).
func (s *Server) isFleetCopy(h engineapi.ObjectHead) bool {
	return s.Nets != nil && s.Nets.IsCopy(h.Labels)
}

func (s *Server) inspectNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	n, ok := s.fleetNetwork(objectRef(r))
	if !ok {
		return s.inspectNetwork(w, r)
	}
	obj, err := s.Nets.Inspect(r.Context(), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}

// removeNetworkRouted removes a fleet network from every host, refused
// while any host's copy has endpoints.
func (s *Server) removeNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	n, ok := s.fleetNetwork(objectRef(r))
	if !ok {
		return s.removeNetwork(w, r)
	}
	if err := s.Nets.Remove(r.Context(), n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- prune -------------------------------------------------------------------

// keepFleetCopies makes an engine prune keep the engines' copies of fleet
// networks (see fleetnet.Controller.EnginePruneFilters).
func (s *Server) keepFleetCopies(filters string) string {
	if s.Nets == nil {
		return filters
	}
	return s.Nets.EnginePruneFilters(filters)
}

// pruneFleetNetworks removes the fleet networks no host is a member of
// and returns their names.
func (s *Server) pruneFleetNetworks(filters string) []string {
	if s.Nets == nil {
		return nil
	}
	return s.Nets.Prune(filters)
}

// --- connect, disconnect -----------------------------------------------------

func (s *Server) connectNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	return s.joinNetworkRouted(w, r, "connect")
}

func (s *Server) disconnectNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	return s.joinNetworkRouted(w, r, "disconnect")
}

// joinNetworkRouted connects a container of any host to a fleet network
// (making its host a member first) or disconnects it.
func (s *Server) joinNetworkRouted(w http.ResponseWriter, r *http.Request, action string) error {
	n, ok := s.fleetNetwork(objectRef(r))
	if !ok {
		return s.joinNetwork(w, r, action)
	}
	body, req, err := s.readConnectRequest(r)
	if err != nil {
		return err
	}
	ch, c, err := s.resolveContainer(r, req.Container)
	if err != nil {
		return err
	}
	if action == "connect" {
		ips, err := req.addresses()
		if err != nil {
			return err
		}
		if err := s.Nets.Connect(r.Context(), n, ch, ips); err != nil {
			return err
		}
	}
	id, _ := json.Marshal(c.ID())
	out, err := engineapi.SetFields(body, map[string]json.RawMessage{"Container": id})
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	setBody(r, out)
	defer s.Nets.Changed()
	return s.forward(w, r, ch, forwardOptions{path: "/networks/" + url.PathEscape(n.Name) + "/" + action, modify: s.syncAfter(ch, c.ID())})
}

// networkConnectRequest is what Clocker reads of a network connect or
// disconnect body; the body is forwarded with every other field intact.
type networkConnectRequest struct {
	Container string
	// Force is disconnect's: a container that is gone may be disconnected.
	Force bool
	// IPv4Address and IPv6Address are connect's
	// EndpointConfig.IPAMConfig's, as the client wrote them.
	IPv4Address, IPv6Address string
}

// readConnectRequest reads a connect or disconnect body: the one parser
// of both, for per-host and fleet networks. The container is required.
func (s *Server) readConnectRequest(r *http.Request) ([]byte, networkConnectRequest, error) {
	var req networkConnectRequest
	var in struct {
		Container      string
		Force          bool
		EndpointConfig json.RawMessage
	}
	body, err := s.readObjectRequest(r, &in)
	if err != nil {
		return nil, req, err
	}
	if in.Container == "" {
		return nil, req, errdefs.New(errdefs.ErrInvalid, `invalid name or ID supplied: ""`)
	}
	req.Container, req.Force = in.Container, in.Force
	// The endpoint's other fields are the engine's to judge.
	var ep struct {
		IPAMConfig *struct{ IPv4Address, IPv6Address string }
	}
	if json.Unmarshal(in.EndpointConfig, &ep) == nil && ep.IPAMConfig != nil {
		req.IPv4Address, req.IPv6Address = ep.IPAMConfig.IPv4Address, ep.IPAMConfig.IPv6Address
	}
	return body, req, nil
}

// addresses are the addresses a connect asks for (invalid: none).
func (req networkConnectRequest) addresses() (fleetnet.Addrs, error) {
	var out fleetnet.Addrs
	for _, a := range []struct {
		text, family string
		to           *netip.Addr
	}{{req.IPv4Address, "IPv4", &out.V4}, {req.IPv6Address, "IPv6", &out.V6}} {
		if a.text == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.text)
		if err != nil {
			return out, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid %s address: %s", a.family, a.text))
		}
		*a.to = ip
	}
	return out, nil
}
