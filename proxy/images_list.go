package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fanout"
)

// listImages answers GET /images/json: every healthy host's list with the
// client's all, digests and filters, merged. before and since name an image
// that may live on some hosts only: Clocker resolves them once and filters
// the merged list itself, as the engine would.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f, err := engineapi.ParseImageFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	var bound engineapi.TimeBound
	if f.Contains("before") || f.Contains("since") {
		if bound, err = s.resolveTimeBounds(r, hs, f); err != nil {
			return err
		}
		delete(f, "before")
		delete(f, "since")
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		q.Set("filters", string(b))
	}
	lists, err := s.collectImageLists(r, hs, q)
	if err != nil {
		return err
	}
	rows, err := engineapi.MergeImageLists(lists)
	if err != nil {
		return err
	}
	if !bound.IsZero() {
		rows, err = s.applyTimeBounds(r, rows, bound)
		if err != nil {
			return err
		}
	}
	body, err := engineapi.EncodeImageRows(rows)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(body)
	return err
}

// collectImageLists asks every host for its list at once. An engine's error
// answer (a bad filter) is the client's answer; a host that fails to answer
// at all is left out while another answered.
func (s *Server) collectImageLists(r *http.Request, hs []*hosts.Host, q url.Values) ([]engineapi.HostImages, error) {
	answers := s.ask(r).Each(r.Context(), hs, http.MethodGet, "/images/json", q, nil)
	return engineapi.ImageLists(answers, func(h *hosts.Host, err error) {
		s.Log.Warn("image list: host left out", "host", h.Name, "err", err)
	})
}

// resolveTimeBounds finds the images before/since name (on any host) and
// their precise creation times. Of several values the strictest wins.
func (s *Server) resolveTimeBounds(r *http.Request, hs []*hosts.Host, f engineapi.Filters) (engineapi.TimeBound, error) {
	var b engineapi.TimeBound
	for _, key := range []string{"before", "since"} {
		for _, ref := range f.Values(key) {
			found, err := s.locateImage(r.Context(), r, hs, ref)
			if err != nil {
				return b, err
			}
			t, err := engineapi.InspectCreated(found[0].Body)
			if err != nil {
				return b, err
			}
			b.Narrow(key, t)
		}
	}
	return b, nil
}

// applyTimeBounds filters merged rows by creation time; rows created in the
// same second as a bound are inspected for their precise time.
func (s *Server) applyTimeBounds(r *http.Request, rows []*engineapi.ImageRow, b engineapi.TimeBound) ([]*engineapi.ImageRow, error) {
	var undecided []*engineapi.ImageRow
	for _, row := range rows {
		if !b.Undecided(row.Created) {
			row.Precise = time.Unix(row.Created, 0)
			continue
		}
		undecided = append(undecided, row)
	}
	inspected := fanout.Each(undecided, func(row *engineapi.ImageRow) (struct{}, error) {
		h, ok := s.Fleet.Host(row.Hosts[0])
		if !ok {
			return struct{}{}, nil
		}
		body, err := s.ask(r).JSON(r.Context(), h, http.MethodGet, "/images/"+row.ID+"/json", nil, nil)
		if err == nil {
			row.Precise, err = engineapi.InspectCreated(body)
		}
		return struct{}{}, err
	})
	if err := fanout.FirstError(inspected); err != nil {
		return nil, err
	}
	return engineapi.FilterRowsByTime(rows, b), nil
}
