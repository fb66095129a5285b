package engineapi

import (
	"bytes"
	"encoding/json"
)

// ShowNetworkIDs returns a container's inspect or list entry obj with the
// NetworkID of each network in NetworkSettings.Networks that idOf knows
// (by the network's name) set to idOf's answer; obj itself, byte for
// byte, when none changes. A fleet network is one engine network per
// host, each with its own ID; clients (compose's recreate check among
// them) compare a container's NetworkID with the network's ID as the
// network list shows it, which is the fleet network's.
func ShowNetworkIDs(obj []byte, idOf func(name string) (string, bool)) []byte {
	if !bytes.Contains(obj, []byte(`"NetworkID"`)) {
		return obj
	}
	start, end, ok := valueSpan(obj, []string{"NetworkSettings", "Networks"})
	if !ok || obj[start] != '{' {
		return obj
	}
	var nets map[string]struct{ NetworkID string }
	if json.Unmarshal(obj[start:end], &nets) != nil {
		return obj
	}
	out := obj
	for name, ep := range nets {
		id, ok := idOf(name)
		if !ok || id == ep.NetworkID {
			continue
		}
		s, e, ok := valueSpan(out, []string{"NetworkSettings", "Networks", name, "NetworkID"})
		if !ok {
			continue
		}
		enc, _ := json.Marshal(id) // a string: cannot fail
		next := make([]byte, 0, len(out)-(e-s)+len(enc))
		next = append(next, out[:s]...)
		next = append(next, enc...)
		out = append(next, out[e:]...)
	}
	return out
}
