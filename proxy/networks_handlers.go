package proxy

// Per-host networks (fleet networks, which span hosts, are sdn/fleetnet's;
// the *Routed handlers of fleetnet.go send everything else here). A per-host
// network lives on the host create put it on; containers that join it are placed there
// (create pins them) and `network connect` refuses a container of another
// host. The built-in networks bridge, host and none exist on every host:
// they are listed once, as a single engine lists them, with the first
// healthy host's object, and a call that names one reaches the host it is
// about (connect: the container's host).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
)

// networkCreateRequest is what create reads of the engine's
// NetworkCreateRequest; the body is forwarded with every other field intact.
type networkCreateRequest struct {
	Name   string
	Labels map[string]string
}

// createNetwork makes the network on the host the request names (HOST/NAME
// or the label io.clocker.host=HOST), else on the host of its compose
// project, else where the strategy puts it. A name any host has already is
// refused with the engine's 409, which compose takes for "exists".
func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req networkCreateRequest
	body, err := s.readObjectRequest(r, &req)
	if err != nil {
		return err
	}
	want, name, err := s.requestedHost(req.Name, req.Labels)
	if err != nil {
		return err
	}
	if name == "" {
		return errdefs.New(errdefs.ErrInvalid, "invalid name: ")
	}
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	if engineapi.IsBuiltinNetwork(name) {
		// The engine's own refusal (403, predefined network); nothing is made.
		setBody(r, body)
		return s.forward(w, r, hs[0], forwardOptions{path: "/networks/create"})
	}
	defer nameLocks.lock("network/" + name)()
	c, err := s.takeCensus(r, hs, "/networks", name, decodeNetworkList, func(h engineapi.ObjectHead) bool { return engineapi.IsBuiltinNetwork(h.Name) })
	if err != nil {
		return err
	}
	if len(c.holders) > 0 {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", name))
	}
	h, err := s.placer.PlaceObject(r.Context(), hs, placement.Object{Kind: scheduler.KindNetwork,
		Host: want, Project: req.Labels[composeProjectLabel], Objects: c.counts})
	if err != nil {
		return err
	}
	if err := createBodyFor(r, body, h, name, req.Name, req.Labels); err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: "/networks/create"})
}

// listNetworks merges every healthy host's networks; filters go to the
// engines, but for io.clocker.host, which picks the hosts asked.
func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), false)
	hs, _, err := s.selectedHosts(sel, "networks")
	if err != nil {
		return err
	}
	var (
		parts  []engineapi.HostObjects
		failed []string
	)
	for _, a := range s.onHosts(r, hs, http.MethodGet, "/networks", engineapi.WithFilters(r.URL.Query(), filters), nil) {
		if a.err == nil && a.status >= 400 && a.status < 500 {
			return relayError(a.status, a.body) // bad filters: every host says so
		}
		var l []json.RawMessage
		if a.err == nil && a.status == http.StatusOK {
			a.err = json.Unmarshal(a.body, &l)
		} else if a.err == nil {
			a.err = relayError(a.status, a.body)
		}
		if a.err != nil {
			// The list has no place for warnings: log it.
			s.Log.Warn("network list: host left out", "host", a.host.Name, "err", a.err)
			failed = append(failed, fmt.Sprintf("host %s: %v", a.host.Name, a.err))
			continue
		}
		parts = append(parts, engineapi.HostObjects{Host: a.host.Name, Objects: l})
	}
	if len(hs) > 0 && len(parts) == 0 {
		return errdefs.New(errdefs.ErrUnavailable, "no host of the fleet answered: "+strings.Join(failed, "; "))
	}
	nets, err := engineapi.MergeNetworks(parts, sel.Active, s.isFleetCopy)
	if err != nil {
		return err
	}
	if !sel.Active {
		fleetNets, err := s.fleetListEntries(filters)
		if err != nil {
			return err
		}
		nets = append(fleetNets, nets...)
	}
	return writeJSON(w, http.StatusOK, nets)
}

// findNetwork finds the networks a reference (full ID, name, ID prefix,
// each optionally as HOST/REF) names on the healthy hosts, keeping the
// best kind of match as an engine does: full ID, then name, then prefix.
func (s *Server) findNetwork(r *http.Request, ref string, q url.Values) ([]objectHit, error) {
	h, bare := s.qualified(ref)
	var hs []*hosts.Host
	if h != nil {
		if !h.Healthy() {
			return nil, h.Unavailable()
		}
		hs = []*hosts.Host{h}
	} else {
		var err error
		if hs, err = s.healthyHosts(); err != nil {
			return nil, err
		}
	}
	hits, err := s.findObject(r, hs, "/networks/"+url.PathEscape(bare), q)
	if err != nil {
		return nil, err
	}
	return bestNetworkHits(bare, hits), nil
}

// bestNetworkHits keeps the hits of the best kind of match.
func bestNetworkHits(ref string, hits []objectHit) []objectHit {
	rank := func(h objectHit) int {
		switch {
		case h.head.ID == ref:
			return 0
		case h.head.Name == ref:
			return 1
		default:
			return 2
		}
	}
	best := 3
	for _, h := range hits {
		best = min(best, rank(h))
	}
	var out []objectHit
	for _, h := range hits {
		if rank(h) == best {
			out = append(out, h)
		}
	}
	return out
}

// ambiguousNetwork is the error for a reference that networks of several
// hosts answer to.
func ambiguousNetwork(ref string, hits []objectHit) error {
	hs := make([]*hosts.Host, len(hits))
	for i, h := range hits {
		hs[i] = h.host
	}
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
		"network %s is ambiguous (%d matches found on hosts %s): name one as HOST/%s (e.g. %s/%s)",
		ref, len(hits), hostList(hs), ref, hs[0].Name, ref))
}

// isBuiltinRef tells whether ref names a built-in network without naming
// its host.
func (s *Server) isBuiltinRef(ref string) bool {
	h, name := s.qualified(ref)
	return h == nil && engineapi.IsBuiltinNetwork(name)
}

// inspectNetwork answers from the host that has the network (a built-in:
// the first healthy host; a name two hosts have: the first in the fleet's
// order, where create pins containers that use it).
func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	ref := objectRef(r)
	if s.isBuiltinRef(ref) {
		hs, err := s.healthyHosts()
		if err != nil {
			return err
		}
		return s.forward(w, r, hs[0], forwardOptions{path: "/networks/" + ref})
	}
	hits, err := s.findNetwork(r, ref, r.URL.Query())
	if err != nil {
		return err
	}
	hit := hits[0]
	raw := hit.raw
	if !engineapi.IsBuiltinNetwork(hit.head.Name) {
		if raw, err = engineapi.WithHostLabel(hit.raw, hit.host.Name); err != nil {
			return err
		}
	}
	return writeRawJSON(w, http.StatusOK, raw)
}

// removeNetwork removes the network on the host that has it; the engine's
// answers (403 built-in, 403 in use) are passed on as they are.
func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	ref := objectRef(r)
	if s.isBuiltinRef(ref) {
		hs, err := s.healthyHosts()
		if err != nil {
			return err
		}
		return s.forward(w, r, hs[0], forwardOptions{path: "/networks/" + ref})
	}
	hits, err := s.findNetwork(r, ref, nil)
	if err != nil {
		return err
	}
	if len(hits) > 1 {
		_, bare := s.qualified(ref)
		return ambiguousNetwork(bare, hits)
	}
	return s.forward(w, r, hits[0].host, forwardOptions{path: "/networks/" + hits[0].head.ID})
}

// joinNetwork connects a container to a network or disconnects it, on the
// host of both. A container and a network of different hosts cannot meet
// (a per-host network): that is refused, naming both hosts.
func (s *Server) joinNetwork(w http.ResponseWriter, r *http.Request, action string) error {
	body, req, err := s.readConnectRequest(r)
	if err != nil {
		return err
	}
	ref := objectRef(r)
	ch, c, err := s.Fleet.Resolve(r.Context(), req.Container)
	if err != nil {
		// A forced disconnect may clean up after a container that is gone.
		if !(action == "disconnect" && req.Force && errors.Is(err, errdefs.ErrNotFound)) {
			return err
		}
		ch = nil
	}
	var (
		target  *hosts.Host
		netPath string
	)
	if s.isBuiltinRef(ref) {
		target, netPath = ch, "/networks/"+ref+"/"+action
		if target == nil {
			hs, err := s.healthyHosts()
			if err != nil {
				return err
			}
			target = hs[0]
		}
	} else {
		hits, err := s.findNetwork(r, ref, nil)
		if err != nil {
			return err
		}
		_, bare := s.qualified(ref)
		var hit *objectHit
		for i := range hits {
			if ch == nil && len(hits) == 1 || ch != nil && hits[i].host == ch {
				hit = &hits[i]
				break
			}
		}
		switch {
		case hit == nil && ch == nil:
			return ambiguousNetwork(bare, hits)
		case hit == nil:
			hs := make([]*hosts.Host, len(hits))
			for i, h := range hits {
				hs[i] = h.host
			}
			verb := "join"
			if action == "disconnect" {
				verb = "be connected to"
			}
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
				"container %s is on host %s but network %s is on host %s: a container can only %s a per-host network of its own host (fleet networks span hosts)",
				req.Container, ch.Name, bare, hostList(hs), verb))
		}
		target, netPath = hit.host, "/networks/"+hit.head.ID+"/"+action
	}
	opt := forwardOptions{path: netPath}
	if ch != nil {
		// The engine must not resolve the reference again by itself.
		id, _ := json.Marshal(c.ID())
		out, err := engineapi.SetFields(body, map[string]json.RawMessage{"Container": id})
		if err != nil {
			return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
		}
		setBody(r, out)
		opt.modify = refreshAfter(ch, c.ID())
	} else {
		setBody(r, body)
	}
	return s.forward(w, r, target, opt)
}

// networkPruneReport is the engine's answer to POST /networks/prune.
type networkPruneReport struct {
	NetworksDeleted []string
}

// pruneNetworks prunes on every healthy host (those io.clocker.host picks)
// and merges the reports; built-in networks are never pruned.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), true)
	hs, _, err := s.selectedHosts(sel, "networks")
	if err != nil {
		return err
	}
	answers := s.onHosts(r, hs, http.MethodPost, "/networks/prune", engineapi.WithFilters(r.URL.Query(), s.keepFleetCopies(filters)), nil)
	if err := pruneFailure(answers); err != nil {
		return err
	}
	var total networkPruneReport
	for _, a := range answers {
		var rep networkPruneReport
		if err := json.Unmarshal(a.body, &rep); err != nil {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad prune report: %v", a.host.Name, err))
		}
		total.NetworksDeleted = append(total.NetworksDeleted, rep.NetworksDeleted...)
	}
	if !sel.Active {
		total.NetworksDeleted = append(total.NetworksDeleted, s.pruneFleetNetworks(filters)...)
	}
	return writeJSON(w, http.StatusOK, total)
}
