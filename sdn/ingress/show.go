package ingress

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"

	"github.com/clocker/clocker/hosts"
)

// localHosts caches publishesLocally by host, for Shown without ingress.
var localHosts sync.Map

// Shown is the address that replaces 0.0.0.0 and :: in the published
// ports of h's containers: the ingress address, or with ingress off (a
// nil Table) the host's own address ("": keep the engine's answer, for a
// host that publishes in the manager's network namespace).
func (t *Table) Shown(h *hosts.Host) string {
	if t != nil {
		return t.shown
	}
	local, ok := localHosts.Load(h)
	if !ok {
		local, _ = localHosts.LoadOrStore(h, publishesLocally(h))
	}
	if local.(bool) {
		return ""
	}
	return h.Endpoint.IP()
}

// shownBinding is one host binding as inspect shows it (HostIp may be a
// host name: the address shown is not always an IP).
type shownBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// ShowInspect shows where the published ports of a container on h are
// reached, in an inspect body's NetworkSettings.Ports (see Shown), leaving
// every other byte as it is.
func (t *Table) ShowInspect(h *hosts.Host, body []byte) []byte {
	shown := t.Shown(h)
	if shown == "" || !bytes.Contains(body, []byte(`"HostIp"`)) {
		return body
	}
	start, end, ok := jsonValueAt(body, "NetworkSettings", "Ports")
	if !ok {
		return body
	}
	var ports map[string][]shownBinding
	if json.Unmarshal(body[start:end], &ports) != nil || ports == nil {
		return body
	}
	for p, bs := range ports {
		ports[p] = showBindings(bs, shown)
	}
	raw, err := json.Marshal(ports)
	if err != nil {
		return body
	}
	return splice(body, start, end, raw)
}

// showBindings rewrites wildcard host addresses to shown, once per port
// (the engine lists 0.0.0.0 and :: apart).
func showBindings(bs []shownBinding, shown string) []shownBinding {
	if bs == nil {
		return nil
	}
	out := make([]shownBinding, 0, len(bs))
	for _, b := range bs {
		if wildcardIP(b.HostIP) {
			b.HostIP = shown
		}
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// listPort is one entry of Ports in GET /containers/json, in the engine's
// field order.
type listPort struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// HasPublished tells whether a `docker ps` entry lists a published port:
// only those need ShowList.
func HasPublished(raw []byte) bool { return bytes.Contains(raw, []byte(`"PublicPort"`)) }

// ShowList does for the `docker ps` entry of a container on h what
// ShowInspect does for inspect.
func (t *Table) ShowList(h *hosts.Host, raw []byte) []byte {
	if !HasPublished(raw) {
		return raw
	}
	shown := t.Shown(h)
	if shown == "" {
		return raw
	}
	start, end, ok := jsonValueAt(raw, "Ports")
	if !ok {
		return raw
	}
	var ports []listPort
	if json.Unmarshal(raw[start:end], &ports) != nil {
		return raw
	}
	out := make([]listPort, 0, len(ports))
	for _, p := range ports {
		if p.PublicPort != 0 && wildcardIP(p.IP) {
			p.IP = shown
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return raw
	}
	return splice(raw, start, end, b)
}

func splice(body []byte, start, end int, value []byte) []byte {
	out := make([]byte, 0, len(body)-(end-start)+len(value))
	out = append(out, body[:start]...)
	out = append(out, value...)
	return append(out, body[end:]...)
}

// jsonValueAt finds the bytes of the value at a path of object keys.
func jsonValueAt(body []byte, path ...string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	for depth, want := range path {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return 0, 0, false
		}
		for {
			tok, err := dec.Token()
			if err != nil {
				return 0, 0, false
			}
			key, isKey := tok.(string)
			if !isKey {
				return 0, 0, false // the object ended without the key
			}
			if key == want {
				break
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, 0, false
			}
		}
		if depth == len(path)-1 {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return 0, 0, false
			}
			end = int(dec.InputOffset())
			return end - len(v), end, true
		}
	}
	return 0, 0, false
}
