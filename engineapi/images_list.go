package engineapi

// The fleet's GET /images/json: every engine's list merged into one row per
// image, and the before/since filters the engines cannot apply (their
// reference may live on some hosts only) applied to the merged rows.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
)

// Placeholders an engine lists for an image without tags or digests.
const (
	NoneTag    = "<none>:<none>"
	NoneDigest = "<none>@<none>"
)

// HostImages is one host's answer to GET /images/json.
type HostImages struct {
	Host string
	Rows []json.RawMessage
}

// ImageRow is one merged row of the fleet's image list: the engine's own
// fields, with the ones that differ between hosts merged.
type ImageRow struct {
	// ID is the image's ID, Created its list time (whole seconds).
	ID      string
	Created int64
	// Hosts are the hosts that listed the image, in the lists' order.
	Hosts []string
	// Precise is inspect's Created, filled by the caller only when the
	// list time cannot settle a before/since bound (TimeBound.Undecided).
	Precise time.Time

	fields   map[string]json.RawMessage
	tags     []string
	digests  []string
	contains int64 // summed Containers; -1 while no host counted
}

// MergeImageLists merges the hosts' lists into one row per image ID: tags
// and digests unioned (the <none> placeholders kept only when nothing else
// is left), Containers summed over the hosts that counted (-1 when none
// did), every other field from the first host that listed the image. Rows
// come newest first, as an engine orders them; rows of the same second by
// ID, so that the order is stable.
func MergeImageLists(lists []HostImages) ([]*ImageRow, error) {
	byID := map[string]*ImageRow{}
	var rows []*ImageRow
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
				row = &ImageRow{fields: fields, ID: in.ID, Created: in.Created, contains: -1}
				byID[in.ID] = row
				rows = append(rows, row)
			}
			row.tags = unionTags(row.tags, in.RepoTags)
			row.digests = unionTags(row.digests, in.RepoDigests)
			if containers >= 0 {
				row.contains = max(row.contains, 0) + containers
			}
			row.Hosts = append(row.Hosts, l.Host)
		}
	}
	for _, row := range rows {
		if err := row.seal(); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Created != rows[j].Created {
			return rows[i].Created > rows[j].Created
		}
		return rows[i].ID < rows[j].ID
	})
	return rows, nil
}

// seal writes the merged values back into the row's fields.
func (row *ImageRow) seal() error {
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
	if err := set("RepoTags", row.tags, NoneTag); err != nil {
		return err
	}
	if err := set("RepoDigests", row.digests, NoneDigest); err != nil {
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

// EncodeImageRows writes rows as the engine's JSON array.
func EncodeImageRows(rows []*ImageRow) ([]byte, error) {
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

// ParseImageFilters decodes the filters parameter of GET /images/json; a
// malformed one is the client's error, in the engine's words.
func ParseImageFilters(s string) (Filters, error) {
	f, err := ParseFilters(s)
	if err != nil {
		var v any
		if jerr := json.Unmarshal([]byte(s), &v); jerr != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, jerr.Error())
		}
		return nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	return f, nil
}

// TimeBound is a before/since filter resolved to the references' creation
// times; a zero time is no bound.
type TimeBound struct {
	Before, Since time.Time
}

// IsZero tells whether there is no bound at all.
func (b TimeBound) IsZero() bool {
	return b.Before.IsZero() && b.Since.IsZero()
}

// Narrow adds the bound of one before (key "before") or since reference
// created at t: of several values the strictest wins.
func (b *TimeBound) Narrow(key string, t time.Time) {
	switch {
	case key == "before" && (b.Before.IsZero() || t.Before(b.Before)):
		b.Before = t
	case key == "since" && t.After(b.Since):
		b.Since = t
	}
}

// Keep tells whether an image created at t passes the bounds, as the
// engine compares: strictly before Before, strictly after Since.
func (b TimeBound) Keep(t time.Time) bool {
	if !b.Before.IsZero() && !t.Before(b.Before) {
		return false
	}
	if !b.Since.IsZero() && !t.After(b.Since) {
		return false
	}
	return true
}

// Undecided tells whether a row's list time (whole seconds) cannot settle
// the bounds: it falls in the same second as a bound, and the row's
// precise time must be read from inspect.
func (b TimeBound) Undecided(sec int64) bool {
	return (!b.Before.IsZero() && b.Before.Unix() == sec) || (!b.Since.IsZero() && b.Since.Unix() == sec)
}

// FilterRowsByTime keeps the rows whose time passes the bounds: Precise
// when it is set, else the list time.
func FilterRowsByTime(rows []*ImageRow, b TimeBound) []*ImageRow {
	out := rows[:0:0]
	for _, row := range rows {
		t := row.Precise
		if t.IsZero() {
			t = time.Unix(row.Created, 0)
		}
		if b.Keep(t) {
			out = append(out, row)
		}
	}
	return out
}

// InspectCreated reads Created from an image inspect answer.
func InspectCreated(body []byte) (time.Time, error) {
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
