package fakeengine

// Named volumes and networks, with the routes, filters and wording of
// dockerd 20.10: create, list, inspect, remove, prune; network connect
// and disconnect. A container uses the named volumes of its HostConfig
// (Binds "name:/path", Mounts of type volume), made when missing, as an
// engine does.

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

type volume struct {
	name, driver string
	labels       map[string]string // nil when none
	options      map[string]string
}

type netw struct {
	id, name, driver string
	labels           map[string]string
	members          map[string]bool // container IDs
	builtin          bool
	subnets          []netip.Prefix // from the create's IPAM configs
}

// Volume is what a test may read of a volume.
type Volume struct {
	Name, Driver string
	Labels       map[string]string
}

// Network is what a test may read of a network.
type Network struct {
	ID, Name, Driver string
	Labels           map[string]string
	Containers       []string // IDs of the connected containers, sorted
}

var builtinDrivers = map[string]string{"bridge": "bridge", "host": "host", "none": "null"}

func (e *Engine) initNetworksLocked() {
	for _, n := range []string{"bridge", "host", "none"} {
		id := hexID(e.opts.Name + "/net/" + n)
		e.networks[id] = &netw{id: id, name: n, driver: builtinDrivers[n], labels: map[string]string{},
			members: map[string]bool{}, builtin: true}
	}
}

// AddVolume makes a local volume (labels may be nil); one already there
// is left as it is.
func (e *Engine) AddVolume(name string, labels map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addVolumeLocked(name, "local", labels)
}

func (e *Engine) addVolumeLocked(name, driver string, labels map[string]string) *volume {
	if v := e.volumes[name]; v != nil {
		return v
	}
	v := &volume{name: name, driver: driver, labels: labels}
	e.volumes[name] = v
	e.publishObjectLocked("volume", "create", name, map[string]string{"driver": driver})
	return v
}

// Volumes lists the engine's volumes, by name.
func (e *Engine) Volumes() []Volume {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Volume, 0, len(e.volumes))
	for _, v := range e.volumes {
		out = append(out, Volume{Name: v.name, Driver: v.driver, Labels: copyLabels(v.labels)})
	}
	sortSlice(out, func(a, b Volume) bool { return a.Name < b.Name })
	return out
}

// AddNetwork makes a bridge network (labels may be nil) and returns its
// ID; names need not be unique, as on an engine.
func (e *Engine) AddNetwork(name string, labels map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addNetworkLocked(name, "bridge", labels).id
}

// AddNetworkSubnet makes a bridge network with subnet, as a create with
// that IPAM config would.
func (e *Engine) AddNetworkSubnet(name, subnet string, labels map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.addNetworkLocked(name, "bridge", labels)
	n.subnets = []netip.Prefix{netip.MustParsePrefix(subnet)}
	return n.id
}

func (e *Engine) addNetworkLocked(name, driver string, labels map[string]string) *netw {
	e.seq++
	id := hexID(e.opts.Name + "/net/" + name + "/" + strconv.FormatUint(e.seq, 10))
	if labels == nil {
		labels = map[string]string{}
	}
	n := &netw{id: id, name: name, driver: driver, labels: labels, members: map[string]bool{}}
	e.networks[id] = n
	e.publishObjectLocked("network", "create", id, map[string]string{"name": name, "type": driver})
	return n
}

// Networks lists the engine's networks, by name then ID.
func (e *Engine) Networks() []Network {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Network, 0, len(e.networks))
	for _, n := range e.networks {
		m := Network{ID: n.id, Name: n.name, Driver: n.driver, Labels: copyLabels(n.labels)}
		for id := range n.members {
			m.Containers = append(m.Containers, id)
		}
		sortSlice(m.Containers, func(a, b string) bool { return a < b })
		out = append(out, m)
	}
	sortSlice(out, func(a, b Network) bool { return a.Name < b.Name || a.Name == b.Name && a.ID < b.ID })
	return out
}

func copyLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// containerVolumes are the named volumes a HostConfig uses.
func containerVolumes(hostConfig json.RawMessage) []string {
	if hostConfig == nil {
		return nil
	}
	var hc struct {
		Binds  []string
		Mounts []struct{ Type, Source string }
	}
	_ = json.Unmarshal(hostConfig, &hc)
	var out []string
	for _, b := range hc.Binds {
		src, _, ok := strings.Cut(b, ":")
		if ok && src != "" && !strings.HasPrefix(src, "/") {
			out = append(out, src)
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == "volume" && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	return out
}

func (e *Engine) volumeUsersLocked(name string) []string {
	var users []string
	for _, c := range e.containers {
		for _, v := range c.volumes {
			if v == name {
				users = append(users, c.id)
				break
			}
		}
	}
	sortSlice(users, func(a, b string) bool { return a < b })
	return users
}

// decodeJSONBody reads a request body as dockerd does: JSON only, not
// empty.
func decodeJSONBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			return errf(400, "Content-Type specified (%s) must be 'application/json'", ct)
		}
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) == 0 {
		return errf(400, "got EOF while reading request body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errf(400, "%v", err)
	}
	return nil
}

// checkFilters refuses a filter key the route does not know.
func checkFilters(f map[string][]string, accepted ...string) error {
	for k := range f {
		if !contains(accepted, k) {
			return errf(400, "Invalid filter '%s'", k)
		}
	}
	return nil
}

func nameMatch(conds []string, name string) bool {
	return len(conds) == 0 || anyOf(conds, func(c string) bool { return strings.Contains(name, c) })
}

func boolFilter(vals []string) (want, set bool) {
	if len(vals) == 0 {
		return false, false
	}
	b, err := strconv.ParseBool(vals[0])
	return b && err == nil, true
}

var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (e *Engine) volumeJSON(v *volume) map[string]any {
	var labels any = v.labels
	if v.labels == nil {
		labels = nil
	}
	var options any
	if v.options != nil {
		options = v.options
	}
	return map[string]any{"CreatedAt": "2025-01-02T03:04:05Z", "Driver": v.driver, "Labels": labels,
		"Mountpoint": "/var/lib/docker/volumes/" + v.name + "/_data", "Name": v.name, "Options": options, "Scope": "local"}
}

func (e *Engine) networkJSON(n *netw, members bool) map[string]any {
	cs := map[string]any{}
	if members {
		for id := range n.members {
			name := ""
			if c := e.containers[id]; c != nil {
				name = c.name
			}
			cs[id] = map[string]string{"Name": name}
		}
	}
	cfgs := []map[string]string{}
	for _, p := range n.subnets {
		cfgs = append(cfgs, map[string]string{"Subnet": p.String()})
	}
	scope := "local"
	return map[string]any{"Name": n.name, "Id": n.id, "Created": "2025-01-02T03:04:05Z", "Scope": scope,
		"Driver": n.driver, "Containers": cs, "Options": map[string]string{}, "Labels": n.labels,
		"IPAM": map[string]any{"Driver": "default", "Options": nil, "Config": cfgs}}
}

// findNetworkLocked resolves a network reference as dockerd does: full
// ID, then a unique name, then a unique ID prefix.
func (e *Engine) findNetworkLocked(ref string) (*netw, error) {
	if n := e.networks[ref]; n != nil {
		return n, nil
	}
	var byName, byPrefix []*netw
	for _, n := range e.networks {
		if n.name == ref {
			byName = append(byName, n)
		}
		if ref != "" && strings.HasPrefix(n.id, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return nil, errf(400, "network %s is ambiguous (%d matches found based on name)", ref, len(byName))
	case len(byPrefix) == 1:
		return byPrefix[0], nil
	case len(byPrefix) > 1:
		return nil, errf(400, "network %s is ambiguous (%d matches found based on ID prefix)", ref, len(byPrefix))
	}
	return nil, errf(404, "network %s not found", ref)
}

// routeVolNet answers the volume and network routes; ok false when p is
// none of them.
func (e *Engine) routeVolNet(w http.ResponseWriter, r *http.Request, p string, seg []string) (bool, error) {
	m := r.Method
	get, post, del := m == http.MethodGet, m == http.MethodPost, m == http.MethodDelete
	switch {
	case p == "/volumes" && get:
		return true, e.listVolumes(w, r)
	case p == "/volumes/create" && post:
		return true, e.createVolume(w, r)
	case p == "/volumes/prune" && post:
		return true, e.pruneVolumes(w, r)
	case len(seg) == 2 && seg[0] == "volumes" && get:
		e.mu.Lock()
		v := e.volumes[seg[1]]
		var a map[string]any
		if v != nil {
			a = e.volumeJSON(v)
		}
		e.mu.Unlock()
		if v == nil {
			return true, errf(404, "get %s: no such volume", seg[1])
		}
		writeJSON(w, 200, a)
		return true, nil
	case len(seg) == 2 && seg[0] == "volumes" && del:
		return true, e.removeVolume(w, r, seg[1])
	case p == "/networks" && get:
		return true, e.listNetworks(w, r)
	case p == "/networks/create" && post:
		return true, e.createNetwork(w, r)
	case p == "/networks/prune" && post:
		return true, e.pruneNetworks(w, r)
	case len(seg) == 2 && seg[0] == "networks" && get:
		e.mu.Lock()
		defer e.mu.Unlock()
		n, err := e.findNetworkLocked(seg[1])
		if err != nil {
			return true, err
		}
		writeJSON(w, 200, e.networkJSON(n, true))
		return true, nil
	case len(seg) == 2 && seg[0] == "networks" && del:
		return true, e.removeNetwork(w, seg[1])
	case len(seg) == 3 && seg[0] == "networks" && (seg[2] == "connect" || seg[2] == "disconnect") && post:
		return true, e.connect(w, r, seg[1], seg[2] == "connect")
	}
	return false, nil
}

func (e *Engine) listVolumes(w http.ResponseWriter, r *http.Request) error {
	fl, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := checkFilters(fl, "name", "label", "driver", "dangling"); err != nil {
		return err
	}
	dangling, byDangling := boolFilter(fl["dangling"])
	e.mu.Lock()
	list := []map[string]any{}
	for _, v := range e.volumes {
		if !nameMatch(fl["name"], v.name) || !labelsMatch(v.labels, fl["label"]) {
			continue
		}
		if d := fl["driver"]; len(d) > 0 && !contains(d, v.driver) {
			continue
		}
		if byDangling && (len(e.volumeUsersLocked(v.name)) == 0) != dangling {
			continue
		}
		list = append(list, e.volumeJSON(v))
	}
	e.mu.Unlock()
	sortSlice(list, func(a, b map[string]any) bool { return a["Name"].(string) < b["Name"].(string) })
	writeJSON(w, 200, map[string]any{"Volumes": list, "Warnings": nil})
	return nil
}

func (e *Engine) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name, Driver string
		DriverOpts   map[string]string
		Labels       map[string]string
	}
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if req.Name == "" {
		e.seq++
		req.Name = hexID(e.opts.Name + "/anon/" + strconv.FormatUint(e.seq, 10))
	}
	if !validVolumeName.MatchString(req.Name) {
		return errf(400, `create %s: %q includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, req.Name, req.Name)
	}
	if req.Driver == "" {
		req.Driver = "local"
	}
	v := e.addVolumeLocked(req.Name, req.Driver, req.Labels)
	if v.options == nil && len(req.DriverOpts) > 0 {
		v.options = req.DriverOpts
	}
	writeJSON(w, http.StatusCreated, e.volumeJSON(v))
	return nil
}

func (e *Engine) removeVolume(w http.ResponseWriter, r *http.Request, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.volumes[name]
	if v == nil {
		if flag(r.URL.Query(), "force") {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return errf(404, "get %s: no such volume", name)
	}
	if users := e.volumeUsersLocked(name); users != nil {
		return errf(409, "remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	delete(e.volumes, name)
	e.publishObjectLocked("volume", "destroy", name, map[string]string{"driver": v.driver})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (e *Engine) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	fl, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := checkFilters(fl, "label", "label!"); err != nil {
		return err
	}
	e.mu.Lock()
	deleted := []string{}
	for name, v := range e.volumes {
		if e.volumeUsersLocked(name) != nil || !labelsMatch(v.labels, fl["label"]) {
			continue
		}
		if neg := fl["label!"]; len(neg) > 0 && labelsMatch(v.labels, neg) {
			continue
		}
		delete(e.volumes, name)
		e.publishObjectLocked("volume", "destroy", name, map[string]string{"driver": v.driver})
		deleted = append(deleted, name)
	}
	e.mu.Unlock()
	sortSlice(deleted, func(a, b string) bool { return a < b })
	writeJSON(w, 200, map[string]any{"VolumesDeleted": deleted, "SpaceReclaimed": 10 * len(deleted)})
	return nil
}

func (e *Engine) listNetworks(w http.ResponseWriter, r *http.Request) error {
	fl, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := checkFilters(fl, "name", "label", "driver", "id", "type", "scope", "dangling"); err != nil {
		return err
	}
	dangling, byDangling := boolFilter(fl["dangling"])
	e.mu.Lock()
	list := []map[string]any{}
	for _, n := range e.networks {
		if !nameMatch(fl["name"], n.name) || !labelsMatch(n.labels, fl["label"]) {
			continue
		}
		if ids := fl["id"]; len(ids) > 0 && !anyOf(ids, func(id string) bool { return strings.HasPrefix(n.id, id) }) {
			continue
		}
		if d := fl["driver"]; len(d) > 0 && !contains(d, n.driver) {
			continue
		}
		if t := fl["type"]; len(t) > 0 && !(n.builtin && contains(t, "builtin") || !n.builtin && contains(t, "custom")) {
			continue
		}
		if s := fl["scope"]; len(s) > 0 && !contains(s, "local") {
			continue
		}
		if byDangling && (len(n.members) == 0 && !n.builtin) != dangling {
			continue
		}
		list = append(list, e.networkJSON(n, false))
	}
	e.mu.Unlock()
	// Engines list in no particular order: not by name.
	sortSlice(list, func(a, b map[string]any) bool { return a["Id"].(string) > b["Id"].(string) })
	writeJSON(w, 200, list)
	return nil
}

func (e *Engine) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name, Driver   string
		CheckDuplicate bool
		Labels         map[string]string
		IPAM           struct{ Config []struct{ Subnet string } }
	}
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := builtinDrivers[req.Name]; ok {
		return errf(403, "operation is not permitted on predefined %s network ", req.Name)
	}
	if req.Name == "" {
		return errf(400, "network name must not be empty")
	}
	for _, n := range e.networks {
		if n.name == req.Name && req.CheckDuplicate {
			return errf(409, "network with name %s already exists", req.Name)
		}
	}
	var subnets []netip.Prefix
	for _, cfg := range req.IPAM.Config {
		p, err := netip.ParsePrefix(cfg.Subnet)
		if err != nil {
			return errf(400, "invalid subnet %s: %v", cfg.Subnet, err)
		}
		for _, n := range e.networks {
			for _, q := range n.subnets {
				if q.Overlaps(p) {
					// libnetwork's ipamapi.ErrPoolOverlap, a forbidden error.
					return errf(403, "invalid pool request: Pool overlaps with other one on this address space")
				}
			}
		}
		subnets = append(subnets, p.Masked())
	}
	if req.Driver == "" {
		req.Driver = "bridge"
	}
	n := e.addNetworkLocked(req.Name, req.Driver, req.Labels)
	n.subnets = subnets
	writeJSON(w, http.StatusCreated, map[string]string{"Id": n.id, "Warning": ""})
	return nil
}

func (e *Engine) removeNetwork(w http.ResponseWriter, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.findNetworkLocked(ref)
	if err != nil {
		return err
	}
	if n.builtin {
		return errf(403, "%s is a pre-defined network and cannot be removed", n.name)
	}
	if len(n.members) > 0 {
		return errf(403, "error while removing network: network %s id %s has active endpoints", n.name, n.id)
	}
	delete(e.networks, n.id)
	e.publishObjectLocked("network", "destroy", n.id, map[string]string{"name": n.name, "type": n.driver})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (e *Engine) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	fl, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := checkFilters(fl, "label", "label!", "until"); err != nil {
		return err
	}
	e.mu.Lock()
	var deleted []string
	for id, n := range e.networks {
		if n.builtin || len(n.members) > 0 || !labelsMatch(n.labels, fl["label"]) {
			continue
		}
		if neg := fl["label!"]; len(neg) > 0 && labelsMatch(n.labels, neg) {
			continue
		}
		delete(e.networks, id)
		e.publishObjectLocked("network", "destroy", n.id, map[string]string{"name": n.name, "type": n.driver})
		deleted = append(deleted, n.name)
	}
	e.mu.Unlock()
	sortSlice(deleted, func(a, b string) bool { return a < b })
	writeJSON(w, 200, map[string]any{"NetworksDeleted": deleted})
	return nil
}

func (e *Engine) connect(w http.ResponseWriter, r *http.Request, ref string, connect bool) error {
	var req struct {
		Container string
		Force     bool
	}
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(req.Container)
	if err != nil && (connect || !req.Force) {
		return err
	}
	n, err := e.findNetworkLocked(ref)
	if err != nil {
		return err
	}
	if c == nil {
		return errf(404, "endpoint %s not found", req.Container)
	}
	if connect {
		if n.members[c.id] {
			return errf(403, "endpoint with name %s already exists in network %s", c.name, n.name)
		}
		n.members[c.id] = true
		e.publishObjectLocked("network", "connect", n.id, map[string]string{"container": c.id, "name": n.name, "type": n.driver})
	} else {
		if !n.members[c.id] {
			return errf(500, "container %s is not connected to network %s", c.id, n.name)
		}
		delete(n.members, c.id)
		e.publishObjectLocked("network", "disconnect", n.id, map[string]string{"container": c.id, "name": n.name, "type": n.driver})
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
