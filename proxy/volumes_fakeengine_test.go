package proxy

// A small in-memory engine for the volume and network handlers: what the
// fleet needs to follow it (/info, /version, /events, containers) and the
// volume and network routes with the wording of Debian's dockerd 20.10.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/scheduler"
)

type objVolume struct {
	Name, Driver string
	Labels       map[string]string
}

type objNetwork struct {
	ID, Name, Driver string
	Labels           map[string]string
	Members          map[string]bool // container IDs
}

type objContainer struct {
	ID, Name string
	Labels   map[string]string
	Volumes  []string
}

// objEngine is one fake engine.
type objEngine struct {
	name string
	srv  *httptest.Server
	down chan struct{}
	once sync.Once

	mu         sync.Mutex
	volumes    map[string]*objVolume
	networks   map[string]*objNetwork // by ID
	containers map[string]*objContainer
	calls      []string // METHOD PATH?QUERY of every request but the fleet's own
	bodies     []string // bodies of the mutating requests, in order
	seq        int
}

func objHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func newObjEngine(t *testing.T, name string) *objEngine {
	t.Helper()
	f := &objEngine{name: name, down: make(chan struct{}), volumes: map[string]*objVolume{},
		networks: map[string]*objNetwork{}, containers: map[string]*objContainer{}}
	for _, n := range []string{"bridge", "host", "none"} {
		drv := map[string]string{"bridge": "bridge", "host": "host", "none": "null"}[n]
		id := objHash(name + "/" + n)
		f.networks[id] = &objNetwork{ID: id, Name: n, Driver: drv, Labels: map[string]string{}, Members: map[string]bool{}}
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.stop)
	return f
}

func (f *objEngine) stop() {
	f.once.Do(func() {
		close(f.down)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
}

func (f *objEngine) url() string { return "tcp://" + f.srv.Listener.Addr().String() }

// mutations are the calls that could change something.
func (f *objEngine) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "GET ") {
			out = append(out, c)
		}
	}
	return out
}

func (f *objEngine) callsTo(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *objEngine) addVolume(name string, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[name] = &objVolume{Name: name, Driver: "local", Labels: labels}
}

func (f *objEngine) hasVolume(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.volumes[name] != nil
}

func (f *objEngine) volumeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.volumes)
}

func (f *objEngine) addNetwork(name string, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := objHash(fmt.Sprintf("%s/net/%s/%d", f.name, name, f.seq))
	f.networks[id] = &objNetwork{ID: id, Name: name, Driver: "bridge", Labels: labels, Members: map[string]bool{}}
	return id
}

func (f *objEngine) networkByName(name string) *objNetwork {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.networks {
		if n.Name == name {
			cp := *n
			cp.Members = map[string]bool{}
			for k, v := range n.Members {
				cp.Members[k] = v
			}
			return &cp
		}
	}
	return nil
}

func (f *objEngine) addContainer(name string, labels map[string]string, volumes ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := objHash(f.name + "/c/" + name)
	f.containers[id] = &objContainer{ID: id, Name: name, Labels: labels, Volumes: volumes}
	for _, v := range volumes {
		if f.volumes[v] == nil {
			f.volumes[v] = &objVolume{Name: v, Driver: "local"}
		}
	}
	return id
}

type objErr struct {
	status int
	msg    string
}

func (e *objErr) Error() string { return e.msg }

func objErrf(status int, format string, args ...any) error {
	return &objErr{status, fmt.Sprintf(format, args...)}
}

var objVersionPrefix = regexp.MustCompile(`^/v[0-9.]+(/.*)$`)

func (f *objEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if m := objVersionPrefix.FindStringSubmatch(p); m != nil {
		p = m[1]
	}
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Server", "Docker/20.10.24 (linux)")
	fleetOwn := p == "/info" || p == "/version" || p == "/events" || p == "/_ping" || strings.HasPrefix(p, "/containers/")
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	if !fleetOwn {
		f.mu.Lock()
		call := r.Method + " " + p
		if r.URL.RawQuery != "" {
			call += "?" + r.URL.RawQuery
		}
		f.calls = append(f.calls, call)
		if r.Method != http.MethodGet {
			f.bodies = append(f.bodies, string(body))
		}
		f.mu.Unlock()
	}
	if err := f.route(w, r, p, body); err != nil {
		status := http.StatusInternalServerError
		if e, ok := err.(*objErr); ok {
			status = e.status
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
	}
}

func objJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// objFilters reads a filters query value (either JSON form).
func objFilters(raw string) (map[string][]string, error) {
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &m); err == nil {
		for k, vs := range m {
			for v := range vs {
				out[k] = append(out[k], v)
			}
			if out[k] == nil {
				out[k] = []string{}
			}
		}
		return out, nil
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return nil, objErrf(400, "invalid filter")
	}
	return out, nil
}

func checkObjFilters(f map[string][]string, accepted ...string) error {
	for k := range f {
		if !slices.Contains(accepted, k) {
			return objErrf(400, "Invalid filter '%s'", k)
		}
	}
	return nil
}

func objLabelsMatch(conds []string, labels map[string]string) bool {
	for _, c := range conds {
		k, v, hasV := strings.Cut(c, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

func objNameMatch(conds []string, name string) bool {
	if len(conds) == 0 {
		return true
	}
	for _, c := range conds {
		if strings.Contains(name, c) {
			return true
		}
	}
	return false
}

func checkObjJSON(r *http.Request, body []byte, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			return objErrf(400, "Content-Type specified (%s) must be 'application/json'", ct)
		}
	}
	if len(body) == 0 {
		return objErrf(400, "got EOF while reading request body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return objErrf(400, "%v", err)
	}
	return nil
}

var objVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (f *objEngine) volumeJSON(v *objVolume) map[string]any {
	var labels any = v.Labels
	if v.Labels == nil {
		labels = nil
	}
	return map[string]any{"CreatedAt": "2025-01-02T03:04:05Z", "Driver": v.Driver, "Labels": labels,
		"Mountpoint": "/var/lib/docker/volumes/" + v.Name + "/_data", "Name": v.Name, "Options": nil, "Scope": "local"}
}

func (f *objEngine) networkJSON(n *objNetwork) map[string]any {
	members := map[string]any{}
	for id := range n.Members {
		members[id] = map[string]string{"Name": f.containers[id].Name}
	}
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return map[string]any{"Name": n.Name, "Id": n.ID, "Created": "2025-01-02T03:04:05Z", "Scope": "local",
		"Driver": n.Driver, "Containers": members, "Options": map[string]string{}, "Labels": labels}
}

// findNetworkLocked resolves a network reference as the engine does.
func (f *objEngine) findNetworkLocked(ref string) (*objNetwork, error) {
	if n := f.networks[ref]; n != nil {
		return n, nil
	}
	var byName, byPrefix []*objNetwork
	for _, n := range f.networks {
		if n.Name == ref {
			byName = append(byName, n)
		}
		if strings.HasPrefix(n.ID, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return nil, objErrf(400, "network %s is ambiguous (%d matches found based on name)", ref, len(byName))
	case len(byPrefix) == 1:
		return byPrefix[0], nil
	case len(byPrefix) > 1:
		return nil, objErrf(400, "network %s is ambiguous (%d matches found based on ID prefix)", ref, len(byPrefix))
	}
	return nil, objErrf(404, "network %s not found", ref)
}

func (f *objEngine) findContainerLocked(ref string) (*objContainer, error) {
	for _, c := range f.containers {
		if c.ID == ref || c.Name == ref || strings.HasPrefix(c.ID, ref) {
			return c, nil
		}
	}
	return nil, objErrf(404, "No such container: %s", ref)
}

func (f *objEngine) route(w http.ResponseWriter, r *http.Request, p string, body []byte) error {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	m := r.Method
	q := r.URL.Query()
	f.mu.Lock()
	locked := true
	defer func() {
		if locked {
			f.mu.Unlock()
		}
	}()
	switch {
	case p == "/_ping":
		_, _ = io.WriteString(w, "OK")
		return nil
	case p == "/info":
		return objJSON(w, 200, map[string]any{"Name": f.name, "NCPU": 2, "MemTotal": 2 << 30, "Labels": []string{}})
	case p == "/version":
		return objJSON(w, 200, map[string]any{"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12"})
	case p == "/events":
		f.mu.Unlock()
		locked = false
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-f.down:
		}
		return nil
	case p == "/containers/json":
		fl, err := objFilters(q.Get("filters"))
		if err != nil {
			return err
		}
		list := []map[string]any{}
		for _, c := range f.containers {
			if ids := fl["id"]; len(ids) > 0 && !slices.Contains(ids, c.ID) {
				continue
			}
			labels := c.Labels
			if labels == nil {
				labels = map[string]string{}
			}
			list = append(list, map[string]any{"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": "busybox",
				"State": "running", "Status": "Up", "Labels": labels, "Created": 1700000000})
		}
		return objJSON(w, 200, list)
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "json":
		c, err := f.findContainerLocked(seg[1])
		if err != nil {
			return err
		}
		return objJSON(w, 200, map[string]any{"Id": c.ID, "Name": "/" + c.Name, "Created": time.Unix(1700000000, 0), "HostConfig": map[string]any{}})

	// --- volumes ---
	case p == "/volumes/create" && m == http.MethodPost:
		var req struct {
			Name, Driver string
			Labels       map[string]string
		}
		if err := checkObjJSON(r, body, &req); err != nil {
			return err
		}
		if req.Name == "" {
			f.seq++
			req.Name = objHash(fmt.Sprintf("%s/anon/%d", f.name, f.seq))
		}
		if !objVolumeName.MatchString(req.Name) {
			return objErrf(400, `create %s: %q includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, req.Name, req.Name)
		}
		v := f.volumes[req.Name]
		if v == nil {
			if req.Driver == "" {
				req.Driver = "local"
			}
			v = &objVolume{Name: req.Name, Driver: req.Driver, Labels: req.Labels}
			f.volumes[req.Name] = v
		}
		return objJSON(w, 201, f.volumeJSON(v))
	case p == "/volumes/prune" && m == http.MethodPost:
		fl, err := objFilters(q.Get("filters"))
		if err != nil {
			return err
		}
		if err := checkObjFilters(fl, "label", "label!"); err != nil {
			return err
		}
		deleted := []string{}
		for name, v := range f.volumes {
			if f.volumeUsersLocked(name) != nil || !objLabelsMatch(fl["label"], v.Labels) {
				continue
			}
			if neg := fl["label!"]; len(neg) > 0 && objLabelsMatch(neg, v.Labels) {
				continue
			}
			delete(f.volumes, name)
			deleted = append(deleted, name)
		}
		slices.Sort(deleted)
		return objJSON(w, 200, map[string]any{"VolumesDeleted": deleted, "SpaceReclaimed": 10 * len(deleted)})
	case p == "/volumes" && m == http.MethodGet:
		fl, err := objFilters(q.Get("filters"))
		if err != nil {
			return err
		}
		if err := checkObjFilters(fl, "name", "label", "driver", "dangling"); err != nil {
			return err
		}
		list := []map[string]any{}
		for _, v := range f.volumes {
			if objNameMatch(fl["name"], v.Name) && objLabelsMatch(fl["label"], v.Labels) {
				list = append(list, f.volumeJSON(v))
			}
		}
		slices.SortFunc(list, func(a, b map[string]any) int { return strings.Compare(a["Name"].(string), b["Name"].(string)) })
		return objJSON(w, 200, map[string]any{"Volumes": list, "Warnings": nil})
	case len(seg) == 2 && seg[0] == "volumes" && m == http.MethodGet:
		v := f.volumes[seg[1]]
		if v == nil {
			return objErrf(404, "get %s: no such volume", seg[1])
		}
		return objJSON(w, 200, f.volumeJSON(v))
	case len(seg) == 2 && seg[0] == "volumes" && m == http.MethodDelete:
		v := f.volumes[seg[1]]
		if v == nil {
			if q.Get("force") == "1" || q.Get("force") == "true" {
				w.WriteHeader(204)
				return nil
			}
			return objErrf(404, "get %s: no such volume", seg[1])
		}
		if users := f.volumeUsersLocked(v.Name); users != nil {
			return objErrf(409, "remove %s: volume is in use - [%s]", v.Name, strings.Join(users, ", "))
		}
		delete(f.volumes, v.Name)
		w.WriteHeader(204)
		return nil

	// --- networks ---
	case p == "/networks/create" && m == http.MethodPost:
		var req struct {
			Name, Driver   string
			CheckDuplicate bool
			Labels         map[string]string
		}
		if err := checkObjJSON(r, body, &req); err != nil {
			return err
		}
		if req.Name == "bridge" || req.Name == "host" || req.Name == "none" {
			return objErrf(403, "operation is not permitted on predefined %s network ", req.Name)
		}
		for _, n := range f.networks {
			if n.Name == req.Name && req.CheckDuplicate {
				return objErrf(409, "network with name %s already exists", req.Name)
			}
		}
		f.seq++
		id := objHash(fmt.Sprintf("%s/net/%s/%d", f.name, req.Name, f.seq))
		f.networks[id] = &objNetwork{ID: id, Name: req.Name, Driver: "bridge", Labels: req.Labels, Members: map[string]bool{}}
		return objJSON(w, 201, map[string]string{"Id": id, "Warning": ""})
	case p == "/networks/prune" && m == http.MethodPost:
		fl, err := objFilters(q.Get("filters"))
		if err != nil {
			return err
		}
		if err := checkObjFilters(fl, "label", "label!", "until"); err != nil {
			return err
		}
		var deleted []string
		for id, n := range f.networks {
			if builtinNetworks[n.Name] || len(n.Members) > 0 || !objLabelsMatch(fl["label"], n.Labels) {
				continue
			}
			if neg := fl["label!"]; len(neg) > 0 && objLabelsMatch(neg, n.Labels) {
				continue
			}
			delete(f.networks, id)
			deleted = append(deleted, n.Name)
		}
		slices.Sort(deleted)
		return objJSON(w, 200, map[string]any{"NetworksDeleted": deleted})
	case p == "/networks" && m == http.MethodGet:
		fl, err := objFilters(q.Get("filters"))
		if err != nil {
			return err
		}
		if err := checkObjFilters(fl, "name", "label", "driver", "id", "type", "scope", "dangling"); err != nil {
			return err
		}
		list := []map[string]any{}
		for _, n := range f.networks {
			if !objNameMatch(fl["name"], n.Name) || !objLabelsMatch(fl["label"], n.Labels) {
				continue
			}
			if ids := fl["id"]; len(ids) > 0 && !slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(n.ID, id) }) {
				continue
			}
			j := f.networkJSON(n)
			j["Containers"] = map[string]any{}
			list = append(list, j)
		}
		// Engines list in no particular order.
		slices.SortFunc(list, func(a, b map[string]any) int { return strings.Compare(b["Id"].(string), a["Id"].(string)) })
		return objJSON(w, 200, list)
	case len(seg) == 2 && seg[0] == "networks" && m == http.MethodGet:
		n, err := f.findNetworkLocked(seg[1])
		if err != nil {
			return err
		}
		return objJSON(w, 200, f.networkJSON(n))
	case len(seg) == 2 && seg[0] == "networks" && m == http.MethodDelete:
		n, err := f.findNetworkLocked(seg[1])
		if err != nil {
			return err
		}
		if builtinNetworks[n.Name] {
			return objErrf(403, "%s is a pre-defined network and cannot be removed", n.Name)
		}
		if len(n.Members) > 0 {
			return objErrf(403, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
		}
		delete(f.networks, n.ID)
		w.WriteHeader(204)
		return nil
	case len(seg) == 3 && seg[0] == "networks" && (seg[2] == "connect" || seg[2] == "disconnect") && m == http.MethodPost:
		var req struct {
			Container string
			Force     bool
		}
		if err := checkObjJSON(r, body, &req); err != nil {
			return err
		}
		c, err := f.findContainerLocked(req.Container)
		if err != nil && !(seg[2] == "disconnect" && req.Force) {
			return err
		}
		n, nerr := f.findNetworkLocked(seg[1])
		if nerr != nil {
			return nerr
		}
		if c == nil {
			return objErrf(404, "endpoint %s not found", req.Container)
		}
		if seg[2] == "connect" {
			if n.Members[c.ID] {
				return objErrf(403, "endpoint with name %s already exists in network %s", c.Name, n.Name)
			}
			n.Members[c.ID] = true
		} else {
			if !n.Members[c.ID] {
				return objErrf(500, "container %s is not connected to network %s", c.ID, n.Name)
			}
			delete(n.Members, c.ID)
		}
		w.WriteHeader(200)
		return nil
	}
	return objErrf(404, "page not found")
}

func (f *objEngine) volumeUsersLocked(name string) []string {
	var users []string
	for _, c := range f.containers {
		if slices.Contains(c.Volumes, name) {
			users = append(users, c.ID)
		}
	}
	return users
}

// --- the environment -----------------------------------------------------------

// vnEnv is a fleet of objEngines behind a Server.
type vnEnv struct {
	t     *testing.T
	fakes map[string]*objEngine
	order []string
	fleet *hosts.Fleet
	srv   *Server
	ts    *httptest.Server
}

func newVNEnv(t *testing.T, names ...string) *vnEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &vnEnv{t: t, fakes: map[string]*objEngine{}, order: names}
	for _, n := range names {
		e.fakes[n] = newObjEngine(t, n)
	}
	reg := prometheus.NewRegistry()
	e.fleet = hosts.NewFleet(nil, log, hosts.NewMetrics(reg))
	e.fleet.HealthInterval = 50 * time.Millisecond
	t.Cleanup(e.fleet.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range names {
		if _, err := e.fleet.Add(ctx, hosts.Record{Name: n, URL: e.fakes[n].url()}, false); err != nil {
			t.Fatalf("add %s: %v", n, err)
		}
	}
	if err := e.fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		t.Fatal(err)
	}
	e.srv = NewServer(e.fleet, strategy, log, 1<<20, reg)
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

// addContainer puts a container on a fake and into the fleet's cache.
func (e *vnEnv) addContainer(host, name string, labels map[string]string, volumes ...string) string {
	e.t.Helper()
	id := e.fakes[host].addContainer(name, labels, volumes...)
	h, _ := e.fleet.Host(host)
	if err := h.Refresh(context.Background(), id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// mutations are the changing calls every fake got, by host.
func (e *vnEnv) mutations() map[string][]string {
	out := map[string][]string{}
	for n, f := range e.fakes {
		if m := f.mutations(); len(m) > 0 {
			out[n] = m
		}
	}
	return out
}

type vnResponse struct {
	status int
	header http.Header
	body   string
}

func (r vnResponse) message() string {
	var m struct{ Message string }
	_ = json.Unmarshal([]byte(r.body), &m)
	return m.Message
}

func (e *vnEnv) do(method, path, contentType, body string) vnResponse {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return vnResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// doJSON sends v as a JSON body.
func (e *vnEnv) doJSON(method, path string, v any) vnResponse {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(method, path, "application/json", string(b))
}
