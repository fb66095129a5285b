package engineapi

import (
	"encoding/json"
)

// MapStrings returns obj, a JSON object as an engine writes it, with the
// string (or each string of the array) at path passed through f; every
// other byte is kept. obj itself when the value is absent, not a string
// or array of strings, or f changes nothing. Tenants' names are shown
// this way ("Name", "Names").
func MapStrings(obj []byte, f func(string) string, path ...string) []byte {
	start, end, ok := valueSpan(obj, path)
	if !ok {
		return obj
	}
	var enc []byte
	switch obj[start] {
	case '"':
		var s string
		if json.Unmarshal(obj[start:end], &s) != nil {
			return obj
		}
		m := f(s)
		if m == s {
			return obj
		}
		enc, _ = json.Marshal(m) // a string: cannot fail
	case '[':
		var ss []string
		if json.Unmarshal(obj[start:end], &ss) != nil {
			return obj
		}
		changed := false
		for i, s := range ss {
			if m := f(s); m != s {
				ss[i], changed = m, true
			}
		}
		if !changed {
			return obj
		}
		enc, _ = json.Marshal(ss)
	default:
		return obj
	}
	return replaceSpan(obj, start, end, enc)
}

// MapKeys returns obj with the keys of the object at path passed through
// f (e.g. a container's NetworkSettings.Networks, keyed by network
// name); the object is re-encoded in key order, as the engine writes a
// map. obj itself when the value is absent, not an object, or f changes
// no key.
func MapKeys(obj []byte, f func(string) string, path ...string) []byte {
	start, end, ok := valueSpan(obj, path)
	if !ok || obj[start] != '{' {
		return obj
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(obj[start:end], &m) != nil {
		return obj
	}
	out := make(map[string]json.RawMessage, len(m))
	changed := false
	for k, v := range m {
		nk := f(k)
		changed = changed || nk != k
		out[nk] = v
	}
	if !changed {
		return obj
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return obj
	}
	return replaceSpan(obj, start, end, enc)
}

// replaceSpan returns obj with obj[start:end] replaced by enc, in a new
// slice.
func replaceSpan(obj []byte, start, end int, enc []byte) []byte {
	out := make([]byte, 0, len(obj)-(end-start)+len(enc))
	out = append(out, obj[:start]...)
	out = append(out, enc...)
	return append(out, obj[end:]...)
}
