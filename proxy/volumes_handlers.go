package proxy

// Volumes. A volume is made at once on one host (placement.PlaceObject
// picks it), not kept pending until a container needs it: the engines stay the only truth about
// volumes (nothing to lose when Clocker restarts, nothing in the store that
// is not ours to change), `docker volume inspect` shows a real mountpoint
// and driver, and containers follow the volume through create's pinning.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/scheduler"
)

// createVolume makes the volume where placement puts it (createObject).
// A name that exists already is answered by the host that has it, as an
// engine answers: the existing volume, 201.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	return s.createObject(w, r, scheduler.KindVolume)
}

// shownAnswer shows the object an engine answered with its host
// (engineapi.ShownObject).
func shownAnswer(h *hosts.Host) func(*http.Response) error {
	return func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode < 300 {
			if shown, err := engineapi.ShownObject(body, h.Name, nodeJSON(h), false); err == nil {
				body = append(shown, '\n')
			}
		}
		replaceBody(resp, body)
		return nil
	}
}

// volumeList is the engine's answer to GET /volumes.
type volumeList struct {
	Volumes  []json.RawMessage
	Warnings []string
}

// listVolumes merges every healthy host's volumes. Filters go to the
// engines, but for io.clocker.host, which picks the hosts asked.
func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), false)
	hs, warnings, err := s.Fleet.Selected(sel.Allows, "volumes")
	if err != nil {
		return err
	}
	answers := s.ask(r).Each(r.Context(), hs, http.MethodGet, "/volumes", engineapi.WithFilters(r.URL.Query(), filters), nil)
	parts, notes, err := engineapi.ListedObjects(answers, nodeJSON, engineapi.DecodeVolumeList, func(h *hosts.Host, err error) string {
		return fmt.Sprintf("host %s: %v: its volumes are not included", h.Name, err)
	})
	if err != nil {
		return err
	}
	warnings = append(warnings, notes...)
	answered := len(hs) == 0 || len(parts) > 0
	if !answered {
		return errdefs.New(errdefs.ErrUnavailable, "no host of the fleet answered: "+strings.Join(warnings, "; "))
	}
	vols, err := engineapi.MergeVolumes(parts, engineapi.ShowsBookkeeping(r.URL.Query().Get("filters")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volumeList{Volumes: vols, Warnings: engineapi.CompactWarnings(warnings)})
}

// findVolume finds the volume a request names, by NAME or HOST/NAME. With
// unique, a name that two hosts have is refused: the caller is about to
// change it.
func (s *Server) findVolume(r *http.Request, ref string, unique bool) (engineapi.ObjectHit, error) {
	hs, name, err := s.Fleet.Scope(ref)
	if err != nil {
		return engineapi.ObjectHit{}, err
	}
	path := "/volumes/" + url.PathEscape(name)
	hits, err := engineapi.FindObject(s.ask(r).Each(r.Context(), hs, http.MethodGet, path, nil, nil), path)
	if err != nil {
		return engineapi.ObjectHit{}, err
	}
	if unique && len(hits) > 1 {
		return engineapi.ObjectHit{}, engineapi.AmbiguousVolume(name, hits)
	}
	return hits[0], nil
}

// inspectVolume answers from the host that has the volume; when two hosts
// have the name, from the first in the fleet's order, the host that create
// pins containers using the name to.
func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	hit, err := s.findVolume(r, objectRef(r), false)
	if err != nil {
		return err
	}
	raw, err := engineapi.ShownObject(hit.Raw, hit.Host.Name, nodeJSON(hit.Host), false)
	if err != nil {
		return err
	}
	return writeRawJSON(w, http.StatusOK, raw)
}

// removeVolume removes the volume on the host that has it; the engine's
// answer (409 in use) is passed on as it is. A volume no host has is left
// to a host to answer, so that force and the not-found wording are the
// engine's.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	ref := objectRef(r)
	hit, err := s.findVolume(r, ref, true)
	if errdefs.Status(err) == http.StatusNotFound {
		h, name := s.qualified(ref)
		if h == nil {
			hs, herr := s.healthyHosts()
			if herr != nil {
				return herr
			}
			h = hs[0]
		}
		return s.forward(w, r, h, forwardOptions{path: "/volumes/" + name})
	}
	if err != nil {
		return err
	}
	return s.forward(w, r, hit.Host, forwardOptions{path: "/volumes/" + hit.Head.Name})
}

// pruneVolumes prunes on every healthy host (those io.clocker.host picks)
// and sums the reports.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), true)
	hs, _, err := s.Fleet.Selected(sel.Allows, "volumes")
	if err != nil {
		return err
	}
	answers := s.ask(r).Each(r.Context(), hs, http.MethodPost, "/volumes/prune", engineapi.WithFilters(r.URL.Query(), filters), nil)
	if err := engineapi.PruneFailure(answers); err != nil {
		return err
	}
	total, err := engineapi.SumVolumePrunes(engineapi.AnswerBodies(answers))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, total)
}
