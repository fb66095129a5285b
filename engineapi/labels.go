package engineapi

// Clocker's bookkeeping labels (labels.IsBookkeeping) live on the engines'
// objects, where placement, rescheduling and the filters read them; users
// read their own labels only, as one engine would show them. The host is
// shown as a Node object instead, as classic Swarm showed it.

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/clocker/clocker/internal/labels"
)

// ShowsBookkeeping tells whether a list's filters (the query value, in
// either of its forms) select on a bookkeeping label: such a list shows
// those labels, so that `--filter label=io.clocker.host --format
// '{{.Label "io.clocker.host"}}'` tells each object's host.
func ShowsBookkeeping(rawFilters string) bool {
	if rawFilters == "" {
		return false
	}
	f, err := ParseFilters(rawFilters)
	if err != nil {
		return false
	}
	for _, key := range []string{"label", "label!"} {
		for v := range f[key] {
			k, _, _ := bytes.Cut([]byte(v), []byte("="))
			if labels.IsBookkeeping(string(k)) {
				return true
			}
		}
	}
	return false
}

var bookkeepingPrefix = []byte(`"io.clocker.`)

// HideBookkeeping returns obj, a JSON object as an engine writes it, with
// the bookkeeping labels left out of the labels object at path (e.g.
// "Labels", or "Config", "Labels"); obj itself, byte for byte, when it has
// none of them.
func HideBookkeeping(obj []byte, path ...string) []byte {
	if !bytes.Contains(obj, bookkeepingPrefix) {
		return obj
	}
	start, end, ok := valueSpan(obj, path)
	if !ok || obj[start] != '{' {
		return obj // absent or null
	}
	var l map[string]string
	if json.Unmarshal(obj[start:end], &l) != nil {
		return obj
	}
	removed := false
	for k := range l {
		if labels.IsBookkeeping(k) {
			delete(l, k)
			removed = true
		}
	}
	if !removed {
		return obj
	}
	enc := MarshalLabels(l)
	return replaceSpan(obj, start, end, enc)
}

// ShownObject is an engine's volume or network as Clocker shows it: its
// bookkeeping labels left out and node (classic Swarm's description of the
// host that holds it) added as Node; with keep (a list filtered on those
// labels), the labels stay and io.clocker.host names the host even on an
// object made behind Clocker's back.
func ShownObject(obj json.RawMessage, host string, node json.RawMessage, keep bool) (json.RawMessage, error) {
	if t := bytes.TrimSpace(obj); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var err error
	if keep {
		obj, err = WithHostLabel(obj, host)
	} else {
		obj = HideBookkeeping(obj, "Labels")
	}
	if err != nil || node == nil {
		return obj, err
	}
	return SetFields(obj, map[string]json.RawMessage{"Node": node})
}

// valueSpan finds the value at a path of keys in a JSON object: its first
// and past-the-end offsets. It reads only the keys on the way.
func valueSpan(b []byte, path []string) (int, int, bool) {
	i := skipSpace(b, 0)
	for depth, key := range path {
		if i >= len(b) || b[i] != '{' {
			return 0, 0, false
		}
		i++
		for {
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return 0, 0, false // '}' (not found) or malformed
			}
			ke := stringEnd(b, i)
			if ke < 0 {
				return 0, 0, false
			}
			match := ke-i == len(key)+2 && string(b[i+1:ke-1]) == key
			i = skipSpace(b, ke)
			if i >= len(b) || b[i] != ':' {
				return 0, 0, false
			}
			i = skipSpace(b, i+1)
			ve := valueEnd(b, i)
			if ve < 0 {
				return 0, 0, false
			}
			if match {
				if depth == len(path)-1 {
					return i, ve, true
				}
				break // descend into this value
			}
			i = skipSpace(b, ve)
			if i >= len(b) || b[i] != ',' {
				return 0, 0, false
			}
			i++
		}
	}
	return 0, 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// stringEnd is the offset past the closing quote of the string at i, or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd is the offset past the JSON value at i, or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(b[j])) {
		j++
	}
	return j
}
