package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// Placeholders an engine lists for an image without tags or digests.
const (
	noneTag    = "<none>:<none>"
	noneDigest = "<none>@<none>"
)

// hostImages is one host's answer to GET /images/json.
type hostImages struct {
	Host string
	Rows []json.RawMessage
}

// imageRow is one merged row of the fleet's image list: the engine's own
// fields, with the ones that differ between hosts merged.
type imageRow struct {
	fields   map[string]json.RawMessage
	id       string
	created  int64
	tags     []string
	digests  []string
	contains int64 // summed Containers; -1 while no host counted
	hosts    []string
	precise  time.Time // inspect's Created, filled only when needed
}

// mergeImageLists merges the hosts' lists into one row per image ID: tags
// and digests unioned (the <none> placeholders kept only when nothing else
// is left), Containers summed over the hosts that counted (-1 when none
// did), every other field from the first host that listed the image. Rows
// come newest first, as an engine orders them; rows of the same second by
// ID, so that the order is stable.
func mergeImageLists(lists []hostImages) ([]*imageRow, error) {
	byID := map[string]*imageRow{}
	var rows []*imageRow
	for _, l := range lists {
		for _, raw := range l.Rows {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				return nil, fmt.Errorf("host %s: image list: %w", l.Host, err)
			}
			var in struct {
				ID          string `json:"Id"`
				Created     int64
				RepoTags    []string
				RepoDigests []string
				Containers  *int64
			}
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, fmt.Errorf("host %s: image list: %w", l.Host, err)
			}
			containers := int64(-1)
			if in.Containers != nil {
				containers = *in.Containers
			}
			row, ok := byID[in.ID]
			if !ok {
				row = &imageRow{fields: fields, id: in.ID, created: in.Created, contains: -1}
				byID[in.ID] = row
				rows = append(rows, row)
			}
			row.tags = unionTags(row.tags, in.RepoTags)
			row.digests = unionTags(row.digests, in.RepoDigests)
			if containers >= 0 {
				row.contains = max(row.contains, 0) + containers
			}
			row.hosts = append(row.hosts, l.Host)
		}
	}
	for _, row := range rows {
		if err := row.seal(); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].created != rows[j].created {
			return rows[i].created > rows[j].created
		}
		return rows[i].id < rows[j].id
	})
	return rows, nil
}

// seal writes the merged values back into the row's fields.
func (row *imageRow) seal() error {
	set := func(key string, vals []string, placeholder string) error {
		vals = dropPlaceholder(vals, placeholder)
		if len(vals) == 0 {
			return nil // as the first host answered (null or [])
		}
		b, err := json.Marshal(vals)
		if err != nil {
			return err
		}
		row.fields[key] = b
		return nil
	}
	if err := set("RepoTags", row.tags, noneTag); err != nil {
		return err
	}
	if err := set("RepoDigests", row.digests, noneDigest); err != nil {
		return err
	}
	if _, ok := row.fields["Containers"]; ok {
		row.fields["Containers"] = json.RawMessage(fmt.Sprint(row.contains))
	}
	return nil
}

// unionTags appends to a the values of b it lacks, keeping first-seen order.
func unionTags(a, b []string) []string {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

// dropPlaceholder removes the <none> placeholder when real values exist.
func dropPlaceholder(vals []string, placeholder string) []string {
	if len(vals) > 1 && slices.Contains(vals, placeholder) {
		return slices.DeleteFunc(slices.Clone(vals), func(v string) bool { return v == placeholder })
	}
	return vals
}

// encodeImageRows writes rows as the engine's JSON array.
func encodeImageRows(rows []*imageRow) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, row := range rows {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := json.Marshal(row.fields)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteString("]\n")
	return buf.Bytes(), nil
}

// timeBound is a before/since filter resolved to the reference's creation.
type timeBound struct {
	before, since time.Time
}

// keep tells whether an image created at t passes the bounds, as the
// engine compares: strictly before `before`, strictly after `since`.
func (b timeBound) keep(t time.Time) bool {
	if !b.before.IsZero() && !t.Before(b.before) {
		return false
	}
	if !b.since.IsZero() && !t.After(b.since) {
		return false
	}
	return true
}

// undecided tells whether a row's list time (whole seconds) cannot settle
// the bounds: it falls in the same second as a bound.
func (b timeBound) undecided(sec int64) bool {
	return (!b.before.IsZero() && b.before.Unix() == sec) || (!b.since.IsZero() && b.since.Unix() == sec)
}

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
	f, err := parseImageFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	var bound timeBound
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
	rows, err := mergeImageLists(lists)
	if err != nil {
		return err
	}
	if !bound.before.IsZero() || !bound.since.IsZero() {
		rows, err = s.applyTimeBounds(r, rows, bound)
		if err != nil {
			return err
		}
	}
	body, err := encodeImageRows(rows)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(body)
	return err
}

// parseImageFilters decodes the filters parameter; a malformed one is the
// client's error.
func parseImageFilters(s string) (filterArgs, error) {
	f, err := parseFilterArgs(s)
	if err != nil {
		var v any
		if jerr := json.Unmarshal([]byte(s), &v); jerr != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, jerr.Error())
		}
		return nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	return f, nil
}

// collectImageLists asks every host for its list at once. An engine's error
// answer (a bad filter) is the client's answer; a host that fails to answer
// at all is left out while another answered.
func (s *Server) collectImageLists(r *http.Request, hs []*hosts.Host, q url.Values) ([]hostImages, error) {
	type answer struct {
		rows []json.RawMessage
		err  error
	}
	answers := make([]answer, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := s.hostJSON(r.Context(), r, h, http.MethodGet, "/images/json", q, nil)
			if err == nil {
				err = json.Unmarshal(body, &answers[i].rows)
				if err != nil {
					err = errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: image list: %v", h.Name, err))
				}
			}
			answers[i].err = err
		}()
	}
	wg.Wait()
	var (
		out      []hostImages
		hostDown error
	)
	for i, a := range answers {
		if a.err != nil {
			if errors.Is(a.err, errdefs.ErrUnavailable) {
				s.Log.Warn("image list: host left out", "host", hs[i].Name, "err", a.err)
				hostDown = a.err
				continue
			}
			return nil, a.err
		}
		out = append(out, hostImages{Host: hs[i].Name, Rows: a.rows})
	}
	if len(out) == 0 && hostDown != nil {
		return nil, hostDown
	}
	return out, nil
}

// resolveTimeBounds finds the images before/since name (on any host) and
// their precise creation times. Of several values the strictest wins.
func (s *Server) resolveTimeBounds(r *http.Request, hs []*hosts.Host, f filterArgs) (timeBound, error) {
	var b timeBound
	for _, key := range []string{"before", "since"} {
		for _, ref := range f.Values(key) {
			found, err := s.locateImage(r.Context(), r, hs, ref)
			if err != nil {
				return b, err
			}
			t, err := inspectCreated(found[0].body)
			if err != nil {
				return b, err
			}
			switch {
			case key == "before" && (b.before.IsZero() || t.Before(b.before)):
				b.before = t
			case key == "since" && t.After(b.since):
				b.since = t
			}
		}
	}
	return b, nil
}

// applyTimeBounds filters merged rows by creation time; rows created in the
// same second as a bound are inspected for their precise time.
func (s *Server) applyTimeBounds(r *http.Request, rows []*imageRow, b timeBound) ([]*imageRow, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, row := range rows {
		if !b.undecided(row.created) {
			row.precise = time.Unix(row.created, 0)
			continue
		}
		h, ok := s.Fleet.Host(row.hosts[0])
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := s.hostJSON(r.Context(), r, h, http.MethodGet, "/images/"+row.id+"/json", nil, nil)
			if err == nil {
				row.precise, err = inspectCreated(body)
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return filterRowsByTime(rows, b), nil
}

// filterRowsByTime keeps the rows whose precise time passes the bounds.
func filterRowsByTime(rows []*imageRow, b timeBound) []*imageRow {
	out := rows[:0:0]
	for _, row := range rows {
		t := row.precise
		if t.IsZero() {
			t = time.Unix(row.created, 0)
		}
		if b.keep(t) {
			out = append(out, row)
		}
	}
	return out
}

// inspectCreated reads Created from an image inspect answer.
func inspectCreated(body []byte) (time.Time, error) {
	var in struct{ Created string }
	if err := json.Unmarshal(body, &in); err != nil {
		return time.Time{}, fmt.Errorf("image inspect: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, in.Created)
	if err != nil {
		return time.Time{}, fmt.Errorf("image inspect: Created %q: %w", in.Created, err)
	}
	return t, nil
}
