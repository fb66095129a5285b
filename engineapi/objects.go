package engineapi

// Volumes and networks: what the fleet reads of the engines' objects, how
// it labels each with the host that holds it, and how it merges the
// hosts' lists. Until fleet networks, each object lives on one host.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// ObjectHead is what Clocker reads of an engine's volume or network.
type ObjectHead struct {
	Name   string
	ID     string `json:"Id"`
	Labels map[string]string
}

// HostObjects are the objects one host listed, as the engine wrote them,
// and the host as Node shows it.
type HostObjects struct {
	Host    string
	Node    json.RawMessage
	Objects []json.RawMessage
}

// IsBuiltinNetwork tells whether name is one of the networks every engine
// has of its own: bridge, host and none.
func IsBuiltinNetwork(name string) bool {
	switch name {
	case "bridge", "host", "none":
		return true
	}
	return false
}

// SetFields sets top-level fields of a JSON object, keeping every other
// field, its bytes and the order of the fields; new fields go last, in
// key order.
func SetFields(obj []byte, set map[string]json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	type field struct {
		key string
		val json.RawMessage
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		fields = append(fields, field{key, val})
	}
	done := map[string]bool{}
	for i := range fields {
		if v, ok := set[fields[i].key]; ok {
			fields[i].val = v
			done[fields[i].key] = true
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fields = append(fields, field{k, set[k]})
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(f.val)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// MarshalLabels encodes labels without HTML escaping, as they were given.
func MarshalLabels(labels map[string]string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(labels)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// ObjectCreateBody makes a volume or network create body host's: the
// label io.clocker.host added to the labels the client asked for, the
// name without its HOST/ prefix (when it differs from the name asked),
// every other field as the client sent it.
func ObjectCreateBody(body []byte, host, name, asked string, askedLabels map[string]string) ([]byte, error) {
	l := maps.Clone(askedLabels)
	if l == nil {
		l = map[string]string{}
	}
	l[labels.Host] = host
	set := map[string]json.RawMessage{"Labels": MarshalLabels(l)}
	if name != asked {
		set["Name"], _ = json.Marshal(name)
	}
	out, err := SetFields(body, set)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	return out, nil
}

// WithHostLabel returns an engine's volume or network with the label
// io.clocker.host naming the host that holds it: the engine's own object
// otherwise, byte for byte. Objects made behind Clocker's back lack the
// label; Clocker's own carry it already.
func WithHostLabel(obj json.RawMessage, host string) (json.RawMessage, error) {
	var head ObjectHead
	if err := json.Unmarshal(obj, &head); err != nil {
		return nil, err
	}
	if v, ok := head.Labels[labels.Host]; ok && v == host {
		return obj, nil
	}
	l := head.Labels
	if l == nil {
		l = map[string]string{}
	}
	l[labels.Host] = host
	return SetFields(obj, map[string]json.RawMessage{"Labels": MarshalLabels(l)})
}

// MergeVolumes lists the volumes of every host, each shown with its host
// (ShownObject), by name; a name on two hosts is listed twice, in fleet
// order.
func MergeVolumes(parts []HostObjects, keep bool) ([]json.RawMessage, error) {
	var items []namedObject
	for _, p := range parts {
		for _, o := range p.Objects {
			raw, err := ShownObject(o, p.Host, p.Node, keep)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad volume in list: %v", p.Host, err))
			}
			var head ObjectHead
			_ = json.Unmarshal(raw, &head)
			items = append(items, namedObject{head.Name, raw})
		}
	}
	return byName(items), nil
}

// MergeNetworks lists the networks of every host by name. A built-in
// network is listed once, with the first host's object, and not at all when
// the list is chosen by io.clocker.host (byHost: no host holds it alone);
// every other network is shown with its host (ShownObject), and a name on
// two hosts is listed twice, in fleet order. Networks skip tells are left
// out.
func MergeNetworks(parts []HostObjects, byHost, keep bool, skip func(ObjectHead) bool) ([]json.RawMessage, error) {
	var items []namedObject
	seen := map[string]bool{}
	for _, p := range parts {
		for _, o := range p.Objects {
			var head ObjectHead
			if err := json.Unmarshal(o, &head); err != nil {
				return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad network in list: %v", p.Host, err))
			}
			if skip != nil && skip(head) {
				continue // a host's copy of a fleet network: listed once, as that
			}
			if IsBuiltinNetwork(head.Name) {
				if byHost || seen[head.Name] {
					continue
				}
				seen[head.Name] = true
				items = append(items, namedObject{head.Name, o})
				continue
			}
			raw, err := ShownObject(o, p.Host, p.Node, keep)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad network in list: %v", p.Host, err))
			}
			items = append(items, namedObject{head.Name, raw})
		}
	}
	return byName(items), nil
}

// namedObject is an object of a list with the name it is sorted by.
type namedObject struct {
	name string
	raw  json.RawMessage
}

// byName is the objects sorted by name (stable: a name on two hosts stays
// in fleet order), never nil.
func byName(items []namedObject) []json.RawMessage {
	slices.SortStableFunc(items, func(a, b namedObject) int { return strings.Compare(a.name, b.name) })
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = it.raw
	}
	return out
}

// CompactWarnings drops repeated warnings; nil when there are none, as the
// engine answers.
func CompactWarnings(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// --- the io.clocker.host filter ---------------------------------------------

// HostSelection is what io.clocker.host label filters ask of a list or a
// prune. Every object Clocker shows carries that label, but only those made
// through Clocker carry it on their engine: the condition is answered by
// asking only the hosts it selects, not by the engines.
type HostSelection struct {
	Active bool            // some io.clocker.host condition was given
	only   map[string]bool // label=io.clocker.host=H: the hosts allowed (nil: any)
	not    map[string]bool // prune's label!=io.clocker.host=H: hosts left alone
	none   bool            // prune's label!=io.clocker.host: no object qualifies
}

// Allows tells whether the objects of host may be part of the answer.
func (sel HostSelection) Allows(host string) bool {
	if sel.none || sel.not[host] {
		return false
	}
	return sel.only == nil || sel.only[host]
}

// SplitHostFilters takes the io.clocker.host conditions out of a filters
// query value and returns the filters for the engines. Filters that do not
// parse are returned as they are: the engines refuse them in their words.
// withNegation handles label!= (prune filters only), when the host is its
// only condition: mixed with others, it is left to the engines.
func SplitHostFilters(raw string, withNegation bool) (string, HostSelection) {
	var sel HostSelection
	if raw == "" {
		return raw, sel
	}
	f, err := ParseFilters(raw)
	if err != nil {
		return raw, sel
	}
	changed := false
	for v := range f["label"] {
		key, val, hasVal := strings.Cut(v, "=")
		if key != labels.Host {
			continue
		}
		sel.Active, changed = true, true
		delete(f["label"], v)
		if !hasVal {
			continue // every object has it
		}
		if sel.only == nil {
			sel.only = map[string]bool{val: true}
		} else if !sel.only[val] {
			sel.only = map[string]bool{} // two different hosts: nothing
		}
	}
	if withNegation && len(f["label!"]) > 0 {
		onlyHost := true
		for v := range f["label!"] {
			if key, _, _ := strings.Cut(v, "="); key != labels.Host {
				onlyHost = false
			}
		}
		if onlyHost {
			// Prune leaves an object alone when it matches every label!
			// condition.
			var hostVals []string
			for v := range f["label!"] {
				if _, val, hasVal := strings.Cut(v, "="); hasVal {
					hostVals = append(hostVals, val)
				}
			}
			slices.Sort(hostVals)
			hostVals = slices.Compact(hostVals)
			switch len(hostVals) {
			case 0:
				sel.none = true
			case 1:
				sel.not = map[string]bool{hostVals[0]: true}
			default:
				// An object is on one host only: it never matches all.
			}
			sel.Active, changed = true, true
			delete(f, "label!")
		}
	}
	if !changed {
		return raw, sel
	}
	if l, ok := f["label"]; ok && len(l) == 0 {
		delete(f, "label")
	}
	if len(f) == 0 {
		return "", sel
	}
	out, err := json.Marshal(f)
	if err != nil {
		return raw, HostSelection{}
	}
	return string(out), sel
}

// WithFilters returns a copy of q with the filters parameter replaced
// (removed when filters is "").
func WithFilters(q url.Values, filters string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	if filters == "" {
		out.Del("filters")
	} else {
		out.Set("filters", filters)
	}
	return out
}
