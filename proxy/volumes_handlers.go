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
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
)

// volumeCreateRequest is what create reads of the engine's
// VolumeCreateBody; the body is forwarded with every other field intact.
type volumeCreateRequest struct {
	Name   string
	Driver string
	Labels map[string]string
}

// createVolume makes the volume on the host the request names (HOST/NAME
// or the label io.clocker.host=HOST), else on the host of its compose
// project, else where the strategy puts it. A name that exists already is
// answered by the host that has it, as an engine answers: the existing
// volume, 201.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req volumeCreateRequest
	body, err := s.readObjectRequest(r, &req)
	if err != nil {
		return err
	}
	want, name, err := s.requestedHost(req.Name, req.Labels)
	if err != nil {
		return err
	}
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	if name != "" {
		defer nameLocks.lock("volume/" + name)()
	}
	c, err := s.takeCensus(r, hs, "/volumes", name, decodeVolumeList, nil)
	if err != nil {
		return err
	}
	var h *hosts.Host
	switch {
	case want != nil && slices.Contains(c.holders, want), want == nil && len(c.holders) > 0:
		h = c.holders[0]
		if want != nil {
			h = want
		}
	case len(c.holders) > 0:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("volume %s already exists on host %s", name, hostList(c.holders)))
	default:
		h, err = s.placer.PlaceObject(r.Context(), hs, placement.Object{Kind: scheduler.KindVolume,
			Host: want, Project: req.Labels[composeProjectLabel], Objects: c.counts})
		if err != nil {
			return err
		}
	}
	if err := createBodyFor(r, body, h, name, req.Name, req.Labels); err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: "/volumes/create", modify: labelAnswer(h.Name)})
}

// createBodyFor makes a volume or network create body the host's: the
// label io.clocker.host added, the name without its HOST/ prefix, every
// other field as the client sent it.
func createBodyFor(r *http.Request, body []byte, h *hosts.Host, name, asked string, askedLabels map[string]string) error {
	labels := maps.Clone(askedLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[HostLabel] = h.Name
	set := map[string]json.RawMessage{"Labels": engineapi.MarshalLabels(labels)}
	if name != asked {
		set["Name"], _ = json.Marshal(name)
	}
	out, err := engineapi.SetFields(body, set)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	setBody(r, out)
	return nil
}

// labelAnswer gives the object an engine answered with its host's label.
func labelAnswer(host string) func(*http.Response) error {
	return func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if labelled, err := engineapi.WithHostLabel(body, host); err == nil {
			body = append(labelled, '\n')
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
	hs, warnings, err := s.selectedHosts(sel, "volumes")
	if err != nil {
		return err
	}
	var parts []engineapi.HostObjects
	answered := len(hs) == 0
	for _, a := range s.onHosts(r, hs, http.MethodGet, "/volumes", engineapi.WithFilters(r.URL.Query(), filters), nil) {
		if a.err == nil && a.status >= 400 && a.status < 500 {
			return relayError(a.status, a.body) // bad filters: every host says so
		}
		var l volumeList
		if a.err == nil && a.status == http.StatusOK {
			a.err = json.Unmarshal(a.body, &l)
		} else if a.err == nil {
			a.err = relayError(a.status, a.body)
		}
		if a.err != nil {
			warnings = append(warnings, fmt.Sprintf("host %s: %v: its volumes are not included", a.host.Name, a.err))
			continue
		}
		answered = true
		parts = append(parts, engineapi.HostObjects{Host: a.host.Name, Objects: l.Volumes})
		warnings = append(warnings, l.Warnings...)
	}
	if !answered {
		return errdefs.New(errdefs.ErrUnavailable, "no host of the fleet answered: "+strings.Join(warnings, "; "))
	}
	vols, err := engineapi.MergeVolumes(parts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volumeList{Volumes: vols, Warnings: engineapi.CompactWarnings(warnings)})
}

// findVolume finds the volume a request names, by NAME or HOST/NAME. With
// unique, a name that two hosts have is refused: the caller is about to
// change it.
func (s *Server) findVolume(r *http.Request, ref string, unique bool) (objectHit, error) {
	h, name := s.qualified(ref)
	var hs []*hosts.Host
	if h != nil {
		if !h.Healthy() {
			return objectHit{}, h.Unavailable()
		}
		hs = []*hosts.Host{h}
	} else {
		var err error
		if hs, err = s.healthyHosts(); err != nil {
			return objectHit{}, err
		}
	}
	hits, err := s.findObject(r, hs, "/volumes/"+url.PathEscape(name), nil)
	if err != nil {
		return objectHit{}, err
	}
	if unique && len(hits) > 1 {
		holders := make([]*hosts.Host, len(hits))
		for i, hit := range hits {
			holders[i] = hit.host
		}
		return objectHit{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
			"volume %s is ambiguous: hosts %s each have one; name one as HOST/%s (e.g. %s/%s)",
			name, hostList(holders), name, holders[0].Name, name))
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
	raw, err := engineapi.WithHostLabel(hit.raw, hit.host.Name)
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
	return s.forward(w, r, hit.host, forwardOptions{path: "/volumes/" + hit.head.Name})
}

// volumePruneReport is the engine's answer to POST /volumes/prune.
type volumePruneReport struct {
	VolumesDeleted []string
	SpaceReclaimed uint64
}

// pruneVolumes prunes on every healthy host (those io.clocker.host picks)
// and sums the reports.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	filters, sel := engineapi.SplitHostFilters(r.URL.Query().Get("filters"), true)
	hs, _, err := s.selectedHosts(sel, "volumes")
	if err != nil {
		return err
	}
	total := volumePruneReport{VolumesDeleted: []string{}}
	answers := s.onHosts(r, hs, http.MethodPost, "/volumes/prune", engineapi.WithFilters(r.URL.Query(), filters), nil)
	if err := pruneFailure(answers); err != nil {
		return err
	}
	for _, a := range answers {
		var rep volumePruneReport
		if err := json.Unmarshal(a.body, &rep); err != nil {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad prune report: %v", a.host.Name, err))
		}
		total.VolumesDeleted = append(total.VolumesDeleted, rep.VolumesDeleted...)
		total.SpaceReclaimed += rep.SpaceReclaimed
	}
	return writeJSON(w, http.StatusOK, total)
}

// pruneFailure is the error of a fanned-out prune: a refusal of the request
// (bad filters: every engine refuses before it removes anything) as the
// engine put it, else the hosts that failed.
func pruneFailure(answers []hostAnswer) error {
	var failed []string
	for _, a := range answers {
		switch {
		case a.err != nil:
			failed = append(failed, a.err.Error())
		case a.status >= 400 && a.status < 500:
			return relayError(a.status, a.body)
		case a.status != http.StatusOK:
			failed = append(failed, fmt.Sprintf("host %s: %v", a.host.Name, relayError(a.status, a.body)))
		}
	}
	if len(failed) > 0 {
		return errdefs.New(errdefs.ErrUnavailable, "prune failed on part of the fleet (the other hosts pruned): "+strings.Join(failed, "; "))
	}
	return nil
}
