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
	"github.com/clocker/clocker/scheduler"
)

// createNetwork makes the network where placement puts it (createObject).
// A name any host has already is refused with the engine's 409, which
// compose takes for "exists".
func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	return s.createObject(w, r, scheduler.KindNetwork)
}

// listNetworks merges every healthy host's networks; filters go to the
// engines, but for io.clocker.host, which picks the hosts asked.
func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), false)
	hs, _, err := s.Fleet.Selected(sel.Allows, "networks")
	if err != nil {
		return err
	}
	answers := s.ask(r).Each(r.Context(), hs, http.MethodGet, "/networks", engineapi.WithFilters(r.URL.Query(), filters), nil)
	parts, failed, err := engineapi.ListedObjects(answers, nodeJSON, engineapi.DecodeNetworkList, func(h *hosts.Host, err error) string {
		// The list has no place for warnings: log it.
		s.Log.Warn("network list: host left out", "host", h.Name, "err", err)
		return fmt.Sprintf("host %s: %v", h.Name, err)
	})
	if err != nil {
		return err
	}
	if len(hs) > 0 && len(parts) == 0 {
		return errdefs.New(errdefs.ErrUnavailable, "no host of the fleet answered: "+strings.Join(failed, "; "))
	}
	nets, err := engineapi.MergeNetworks(parts, sel.Active, engineapi.ShowsBookkeeping(r.URL.Query().Get("filters")), s.isFleetCopy)
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
	if nets == nil {
		nets = []json.RawMessage{} // an engine's empty list is [], never null
	}
	return writeJSON(w, http.StatusOK, nets)
}

// findNetwork finds the networks a reference (full ID, name, ID prefix,
// each optionally as HOST/REF) names on the healthy hosts, keeping the
// best kind of match as an engine does: full ID, then name, then prefix.
func (s *Server) findNetwork(r *http.Request, ref string, q url.Values) ([]engineapi.ObjectHit, error) {
	hs, bare, err := s.Fleet.Scope(ref)
	if err != nil {
		return nil, err
	}
	path := "/networks/" + url.PathEscape(bare)
	hits, err := engineapi.FindObject(s.ask(r).Each(r.Context(), hs, http.MethodGet, path, q, nil), path)
	if err != nil {
		return nil, err
	}
	return engineapi.BestNetworkHits(bare, hits), nil
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
	raw := hit.Raw
	if !engineapi.IsBuiltinNetwork(hit.Head.Name) {
		if raw, err = engineapi.ShownObject(hit.Raw, hit.Host.Name, nodeJSON(hit.Host), false); err != nil {
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
		return engineapi.AmbiguousNetwork(bare, hits)
	}
	return s.forward(w, r, hits[0].Host, forwardOptions{path: "/networks/" + hits[0].Head.ID})
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
	ch, c, err := s.resolveContainer(r, req.Container)
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
		var hit *engineapi.ObjectHit
		for i := range hits {
			if ch == nil && len(hits) == 1 || ch != nil && hits[i].Host == ch {
				hit = &hits[i]
				break
			}
		}
		switch {
		case hit == nil && ch == nil:
			return engineapi.AmbiguousNetwork(bare, hits)
		case hit == nil:
			hs := make([]*hosts.Host, len(hits))
			for i, h := range hits {
				hs[i] = h.Host
			}
			verb := "join"
			if action == "disconnect" {
				verb = "be connected to"
			}
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
				"container %s is on host %s but network %s is on host %s: a container can only %s a per-host network of its own host (fleet networks span hosts)",
				req.Container, ch.Name, bare, engineapi.HostList(hs), verb))
		}
		target, netPath = hit.Host, "/networks/"+hit.Head.ID+"/"+action
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

// pruneNetworks prunes on every healthy host (those io.clocker.host picks)
// and merges the reports; built-in networks are never pruned.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), true)
	hs, _, err := s.Fleet.Selected(sel.Allows, "networks")
	if err != nil {
		return err
	}
	answers := s.ask(r).Each(r.Context(), hs, http.MethodPost, "/networks/prune", engineapi.WithFilters(r.URL.Query(), s.keepFleetCopies(filters)), nil)
	if err := engineapi.PruneFailure(answers); err != nil {
		return err
	}
	total, err := engineapi.SumNetworkPrunes(engineapi.AnswerBodies(answers))
	if err != nil {
		return err
	}
	if !sel.Active {
		total.NetworksDeleted = append(total.NetworksDeleted, s.pruneFleetNetworks(filters)...)
	}
	return writeJSON(w, http.StatusOK, total)
}
