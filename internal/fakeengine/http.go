package fakeengine

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// splitVersion takes "/v1.41/containers/json" apart into "1.41" and
// "/containers/json"; an unversioned path comes back as it is.
func splitVersion(p string) (version, rest string) {
	if len(p) < 3 || p[0] != '/' || p[1] != 'v' || p[2] < '0' || p[2] > '9' {
		return "", p
	}
	i := 2
	for i < len(p) && (p[i] >= '0' && p[i] <= '9' || p[i] == '.') {
		i++
	}
	if i < len(p) && p[i] != '/' {
		return "", p
	}
	return p[2:i], p[i:]
}

// CompareVersions compares API versions such as "1.41" and "1.9"
// numerically.
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		xi, _ := strconv.Atoi(x)
		yi, _ := strconv.Atoi(y)
		if xi != yi {
			if xi < yi {
				return -1
			}
			return 1
		}
	}
	return 0
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var fe *Error
	if errors.As(err, &fe) {
		status = fe.Status
	}
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, map[string]string{"message": err.Error()})
}

// ServeHTTP answers the Engine API (through the Interceptor, if any).
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hook := e.hook.Load(); hook != nil {
		(*hook)(w, r, http.HandlerFunc(e.serve))
		return
	}
	e.serve(w, r)
}

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	ver, p := splitVersion(r.URL.Path)
	h := w.Header()
	h.Set("Api-Version", e.opts.MaxAPI)
	h.Set("Server", "Docker/"+e.opts.Version+" (linux)")
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")
	e.mu.Lock()
	if e.countReqs {
		e.requests[r.Method+" "+p]++
	}
	record := e.recordCall
	e.mu.Unlock()
	if record {
		call := Call{Method: r.Method, Path: p, Version: ver, Query: r.URL.Query(), RawQuery: r.URL.RawQuery}
		if r.Body != nil && r.ContentLength > 0 && r.ContentLength <= 1<<20 {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			call.Body = string(body)
		}
		e.mu.Lock()
		e.calls = append(e.calls, call)
		e.mu.Unlock()
	}
	if ver != "" && CompareVersions(ver, e.opts.MaxAPI) > 0 {
		writeError(w, errf(400, "client version %s is too new. Maximum supported API version is %s", ver, e.opts.MaxAPI))
		return
	}
	if ver != "" && CompareVersions(ver, e.opts.MinAPI) < 0 {
		writeError(w, errf(400, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", ver, e.opts.MinAPI))
		return
	}
	if err := e.route(w, r, p); err != nil {
		writeError(w, err)
	}
}

func (e *Engine) route(w http.ResponseWriter, r *http.Request, p string) error {
	m := r.Method
	get, post, del := m == http.MethodGet, m == http.MethodPost, m == http.MethodDelete
	switch p {
	case "/_ping":
		if !get && m != http.MethodHead {
			break
		}
		w.Header().Set("Swarm", "inactive")
		w.Header().Set("Builder-Version", "1")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		if m == http.MethodHead {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return nil
		}
		_, _ = io.WriteString(w, "OK")
		return nil
	case "/info":
		if get {
			return e.info(w)
		}
	case "/version":
		if get {
			writeJSON(w, 200, versionAnswer{Version: e.opts.Version, APIVersion: e.opts.MaxAPI,
				MinAPIVersion: e.opts.MinAPI, Os: "linux", Arch: "amd64", KernelVersion: "6.1.0-fake",
				GoVersion: "go1.26", Platform: map[string]string{"Name": "Docker Engine - Fake"}})
			return nil
		}
	case "/events":
		if get {
			return e.events(w, r)
		}
	case "/containers/json":
		if get {
			return e.list(w, r)
		}
	case "/containers/create":
		if post {
			return e.create(w, r)
		}
	case "/images/json":
		if get {
			return e.listImages(w)
		}
	case "/system/df":
		if get {
			return e.diskUsage(w)
		}
	case "/images/create":
		if post {
			return e.pull(w, r)
		}
	case "/images/load":
		if post {
			return e.load(w, r)
		}
	case "/commit":
		if post {
			return e.commit(w, r)
		}
	case "/build":
		if post {
			return e.build(w, r)
		}
	}
	seg := strings.Split(strings.Trim(p, "/"), "/")
	if ok, err := e.routeVolNet(w, r, p, seg); ok {
		return err
	}
	switch {
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "json" && get:
		return e.inspect(w, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "wait" && post:
		return e.wait(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "logs" && get:
		return e.logs(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "attach" && post:
		return e.attach(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "exec" && post:
		return e.createExec(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "resize" && post:
		e.mu.Lock()
		_, err := e.resolveLocked(seg[1])
		e.mu.Unlock()
		if err == nil {
			err = checkSize(r)
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "json" && get:
		return e.inspectExec(w, seg[1])
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "start" && post:
		return e.startExec(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "resize" && post:
		return e.resizeExec(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && post &&
		(seg[2] == "start" || seg[2] == "stop" || seg[2] == "kill" || seg[2] == "restart"):
		if err := e.change(seg[1], seg[2]); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case len(seg) == 2 && seg[0] == "containers" && del:
		q := r.URL.Query()
		if err := e.Remove(seg[1], q.Get("force") == "1" || q.Get("force") == "true"); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case len(seg) >= 3 && seg[0] == "images" && seg[len(seg)-1] == "json" && get:
		return e.inspectImage(w, strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json"))
	case len(seg) >= 3 && seg[0] == "images" && seg[len(seg)-1] == "tag" && post:
		return e.tagImage(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/tag"))
	case len(seg) >= 2 && seg[0] == "images" && del:
		return e.removeImage(w, r, strings.TrimPrefix(p, "/images/"))
	}
	return errf(404, "page not found")
}

type versionAnswer struct {
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string
	Os            string
	Arch          string
	KernelVersion string
	GoVersion     string
	Platform      map[string]string
}

type infoAnswer struct {
	ID                string
	Name              string
	NCPU              int
	MemTotal          int64
	Labels            []string
	Images            int
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	ServerVersion     string
	OperatingSystem   string
	OSType            string
	Architecture      string
	Driver            string
	KernelVersion     string
}

func (e *Engine) info(w http.ResponseWriter) error {
	a := infoAnswer{ID: hexID("engine/" + e.opts.Name)[:36], Name: e.opts.Name, NCPU: e.opts.NCPU,
		MemTotal: e.opts.MemTotal, Labels: e.opts.Labels, ServerVersion: e.opts.Version,
		OperatingSystem: "Fake Linux", OSType: "linux", Architecture: "x86_64", Driver: "overlay2",
		KernelVersion: "6.1.0-fake"}
	if a.Labels == nil {
		a.Labels = []string{}
	}
	e.mu.Lock()
	for _, c := range e.containers {
		if c.state == StateRunning {
			a.ContainersRunning++
		} else {
			a.ContainersStopped++
		}
	}
	a.Containers = len(e.containers)
	a.Images = e.imageCountLocked()
	e.mu.Unlock()
	writeJSON(w, 200, a)
	return nil
}

// --- containers ------------------------------------------------------------

type endpointSettings struct {
	NetworkID           string
	EndpointID          string
	Gateway             string
	IPAddress           string
	IPPrefixLen         int
	IPv6Gateway         string
	GlobalIPv6Address   string
	GlobalIPv6PrefixLen int
	MacAddress          string
}

type summary struct {
	ID              string `json:"Id"`
	Names           []string
	Image           string
	ImageID         string
	Command         string
	Created         int64
	Ports           []portSummary
	SizeRw          *int64 `json:",omitempty"`
	SizeRootFs      *int64 `json:",omitempty"`
	Labels          map[string]string
	State           string
	Status          string
	HostConfig      struct{ NetworkMode string }
	NetworkSettings struct{ Networks map[string]endpointSettings }
	Mounts          []mountPoint
}

// network is the container's endpoint on the default bridge, made up from
// its ID.
func (e *Engine) network(c *ctr) endpointSettings {
	b := c.id
	n, _ := strconv.ParseUint(b[:4], 16, 32)
	ip := "172.17." + strconv.Itoa(int(n>>8)) + "." + strconv.Itoa(int(n&0xff)|1)
	return endpointSettings{NetworkID: hexID(e.opts.Name + "/net/bridge"), EndpointID: hexID("ep/" + c.id),
		Gateway: "172.17.0.1", IPAddress: ip, IPPrefixLen: 16,
		MacAddress: "02:42:ac:11:" + b[:2] + ":" + b[2:4]}
}

// endpointsLocked are a container's networks: the default bridge (by its
// network mode) and the user networks it joined, addresses made up.
func (e *Engine) endpointsLocked(c *ctr) map[string]endpointSettings {
	out := map[string]endpointSettings{}
	if networkMode(c) == "bridge" {
		out["bridge"] = e.network(c)
	}
	for _, n := range e.networks {
		if n.builtin || !n.members[c.id] {
			continue
		}
		b := hexID(n.id + "/" + c.id)
		k, _ := strconv.ParseUint(b[:4], 16, 32)
		out[n.name] = endpointSettings{NetworkID: n.id, EndpointID: hexID("ep/" + n.id + "/" + c.id),
			Gateway: "172.18.0.1", IPAddress: "172.18." + strconv.Itoa(int(k>>8)) + "." + strconv.Itoa(int(k&0xff)|1),
			IPPrefixLen: 16, MacAddress: "02:42:ac:12:" + b[:2] + ":" + b[2:4]}
	}
	return out
}

type mountPoint struct {
	Type        string
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string
	RW          bool
	Propagation string
}

// mounts are a container's binds and volumes (HostConfig Binds and
// Mounts) as inspect and list show them.
func mounts(c *ctr) []mountPoint {
	out := []mountPoint{}
	if c.hostConfig == nil {
		return out
	}
	var hc struct {
		Binds  []string
		Mounts []struct {
			Type, Source, Target string
			ReadOnly             bool
		}
	}
	_ = json.Unmarshal(c.hostConfig, &hc)
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		mode := ""
		if len(parts) > 2 {
			mode = parts[2]
		}
		rw := !strings.Contains(mode, "ro")
		if strings.HasPrefix(parts[0], "/") {
			out = append(out, mountPoint{Type: "bind", Source: parts[0], Destination: parts[1], Mode: mode, RW: rw, Propagation: "rprivate"})
		} else {
			out = append(out, mountPoint{Type: "volume", Name: parts[0], Source: "/var/lib/docker/volumes/" + parts[0] + "/_data",
				Destination: parts[1], Driver: "local", Mode: "z", RW: rw})
		}
	}
	for _, m := range hc.Mounts {
		switch m.Type {
		case "volume":
			out = append(out, mountPoint{Type: "volume", Name: m.Source, Source: "/var/lib/docker/volumes/" + m.Source + "/_data",
				Destination: m.Target, Driver: "local", Mode: "z", RW: !m.ReadOnly})
		case "bind":
			out = append(out, mountPoint{Type: "bind", Source: m.Source, Destination: m.Target, RW: !m.ReadOnly, Propagation: "rprivate"})
		}
	}
	return out
}

type portSummary struct {
	IP          string `json:",omitempty"`
	PrivatePort int
	PublicPort  int `json:",omitempty"`
	Type        string
}

type binding struct {
	port, proto string
	hostPort    int
}

// bindings are a running container's published ports (PortBindings of
// its HostConfig): a HostPort "" or "0" is the port the engine picked at
// start, a range its first port.
func bindings(c *ctr) []binding {
	if c.state != StateRunning || c.hostConfig == nil {
		return nil
	}
	var out []binding
	i := 0
	for _, b := range portBindings(c.hostConfig) {
		if b.hostPort == 0 {
			if i >= len(c.picked) {
				continue
			}
			b.hostPort = c.picked[i]
			i++
		}
		out = append(out, b)
	}
	return out
}

// portBindings reads a HostConfig's PortBindings in order of key; a
// binding to any port has hostPort 0.
func portBindings(hostConfig json.RawMessage) []binding {
	var hc struct {
		PortBindings map[string][]struct{ HostIp, HostPort string }
	}
	_ = json.Unmarshal(hostConfig, &hc)
	keys := make([]string, 0, len(hc.PortBindings))
	for k := range hc.PortBindings {
		keys = append(keys, k)
	}
	sortSlice(keys, func(a, b string) bool { return a < b })
	var out []binding
	for _, k := range keys {
		port, proto, _ := strings.Cut(k, "/")
		if proto == "" {
			proto = "tcp"
		}
		for _, b := range hc.PortBindings[k] {
			lo, _, _ := strings.Cut(b.HostPort, "-")
			n, err := strconv.Atoi(lo)
			if b.HostPort != "" && err != nil || n < 0 {
				continue
			}
			out = append(out, binding{port, proto, n})
		}
	}
	return out
}

// listPorts are the bindings as a list shows them: 0.0.0.0 and :: apart,
// as an engine with IPv6 does.
func listPorts(c *ctr) []portSummary {
	out := []portSummary{}
	for _, b := range bindings(c) {
		priv, _ := strconv.Atoi(b.port)
		for _, ip := range []string{"0.0.0.0", "::"} {
			out = append(out, portSummary{IP: ip, PrivatePort: priv, PublicPort: b.hostPort, Type: b.proto})
		}
	}
	return out
}

// inspectPorts are the bindings as inspect shows them.
func inspectPorts(c *ctr) map[string]any {
	out := map[string]any{}
	for _, b := range bindings(c) {
		key := b.port + "/" + b.proto
		list, _ := out[key].([]map[string]string)
		for _, ip := range []string{"0.0.0.0", "::"} {
			list = append(list, map[string]string{"HostIp": ip, "HostPort": strconv.Itoa(b.hostPort)})
		}
		out[key] = list
	}
	return out
}

func status(c *ctr) string {
	switch c.state {
	case StateRunning:
		return "Up Less than a second"
	case StateExited:
		return "Exited (" + strconv.Itoa(c.exitCode) + ") Less than a second ago"
	}
	return "Created"
}

func networkMode(c *ctr) string {
	var hc struct{ NetworkMode string }
	if c.hostConfig != nil {
		_ = json.Unmarshal(c.hostConfig, &hc)
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		return "bridge"
	}
	return hc.NetworkMode
}

func (e *Engine) summaryLocked(c *ctr, size bool) summary {
	s := summary{ID: c.id, Names: []string{"/" + c.name}, Image: c.image, ImageID: c.imageID,
		Command: strings.Join(c.cmd, " "), Created: c.created / int64(time.Second), Ports: listPorts(c),
		Labels: c.labels, State: c.state, Status: status(c), Mounts: mounts(c)}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = networkMode(c)
	s.NetworkSettings.Networks = e.endpointsLocked(c)
	if size {
		var zero int64
		s.SizeRw, s.SizeRootFs = &zero, &zero
	}
	return s
}

// list answers GET /containers/json: newest first; all, limit, size and
// the filters id (prefix), name (substring), label, status.
func (e *Engine) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	all := q.Get("all") == "1" || q.Get("all") == "true"
	size := q.Get("size") == "1" || q.Get("size") == "true"
	limit, _ := strconv.Atoi(q.Get("limit"))
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	statuses := filters["status"]
	e.mu.Lock()
	var cs []*ctr
	if ids := filters["id"]; len(ids) == 1 {
		// The fleet's refresh: a full ID, found without a scan.
		if c, ok := e.containers[ids[0]]; ok {
			cs = append(cs, c)
		} else {
			cs = e.scanLocked(ids)
		}
	} else {
		cs = e.scanLocked(ids)
	}
	kept := cs[:0]
	for _, c := range cs {
		switch {
		case len(statuses) > 0:
			if !contains(statuses, c.state) {
				continue
			}
		case !all && c.state != StateRunning:
			continue
		}
		if names := filters["name"]; len(names) > 0 && !anyOf(names, func(n string) bool {
			return strings.Contains("/"+c.name, n)
		}) {
			continue
		}
		if labels := filters["label"]; len(labels) > 0 && !labelsMatch(c.labels, labels) {
			continue
		}
		kept = append(kept, c)
	}
	sortNewestFirst(kept)
	if limit > 0 && len(kept) > limit {
		kept = kept[:limit]
	}
	out := make([]summary, len(kept))
	for i, c := range kept {
		out[i] = e.summaryLocked(c, size)
	}
	e.mu.Unlock()
	writeJSON(w, 200, out)
	return nil
}

func (e *Engine) scanLocked(ids []string) []*ctr {
	out := make([]*ctr, 0, len(e.containers))
	for id, c := range e.containers {
		if len(ids) > 0 && !anyOf(ids, func(p string) bool { return strings.HasPrefix(id, p) }) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func sortNewestFirst(cs []*ctr) {
	// Insertion sort would do for 30 containers; use the library for more.
	sortSlice(cs, func(a, b *ctr) bool { return a.created > b.created })
}

type createBody struct {
	Image      string
	Labels     map[string]string
	Cmd        []string
	Env        []string
	Tty        bool
	HostConfig json.RawMessage
	// NetworkingConfig names the networks to join (API 1.44 takes
	// several; older ones one).
	NetworkingConfig struct {
		EndpointsConfig map[string]json.RawMessage
	}
}

func (e *Engine) create(w http.ResponseWriter, r *http.Request) error {
	var b createBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		return errf(400, "invalid JSON: %v", err)
	}
	var nets []string
	for n := range b.NetworkingConfig.EndpointsConfig {
		nets = append(nets, n)
	}
	sortSlice(nets, func(a, b string) bool { return a < b })
	id, err := e.Create(Spec{Name: r.URL.Query().Get("name"), Image: b.Image, Labels: b.Labels,
		Cmd: b.Cmd, Env: b.Env, Tty: b.Tty, HostConfig: b.HostConfig, Networks: nets})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		ID       string `json:"Id"`
		Warnings []string
	}{id, []string{}})
	return nil
}

type stateAnswer struct {
	Status     string
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
}

type configAnswer struct {
	Hostname     string
	Domainname   string
	User         string
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	Tty          bool
	OpenStdin    bool
	StdinOnce    bool
	Env          []string
	Cmd          []string
	Image        string
	Volumes      map[string]struct{}
	WorkingDir   string
	Entrypoint   []string
	OnBuild      []string
	Labels       map[string]string
}

type inspectAnswer struct {
	ID              string `json:"Id"`
	Created         string
	Path            string
	Args            []string
	State           stateAnswer
	Image           string
	ResolvConfPath  string
	HostnamePath    string
	HostsPath       string
	LogPath         string
	Name            string
	RestartCount    int
	Driver          string
	Platform        string
	MountLabel      string
	ProcessLabel    string
	AppArmorProfile string
	ExecIDs         []string
	HostConfig      json.RawMessage
	GraphDriver     struct {
		Data map[string]string
		Name string
	}
	Mounts          []mountPoint
	Config          configAnswer
	NetworkSettings struct {
		Bridge     string
		SandboxID  string
		SandboxKey string
		Ports      map[string]any
		Networks   map[string]endpointSettings
	}
}

// defaultHostConfig is what an engine shows for a container made without
// one.
var defaultHostConfig = json.RawMessage(`{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"json-file","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"host","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"private","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":67108864,"Runtime":"runc","ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","MemoryReservation":0,"MemorySwap":0,"OomKillDisable":false,"PidsLimit":null,"Ulimits":null,"MaskedPaths":["/proc/asound","/proc/acpi"],"ReadonlyPaths":["/proc/bus","/proc/fs"]}`)

func stamp(ns int64) string {
	if ns == 0 {
		return "0001-01-01T00:00:00Z"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func (e *Engine) inspect(w http.ResponseWriter, ref string) error {
	e.mu.Lock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	a := inspectAnswer{ID: c.id, Created: stamp(c.created), Path: "sh", Args: []string{},
		State: stateAnswer{Status: c.state, Running: c.state == StateRunning, ExitCode: c.exitCode,
			StartedAt: stamp(c.started), FinishedAt: stamp(c.finished)},
		Image:          c.imageID,
		ResolvConfPath: "/var/lib/docker/containers/" + c.id + "/resolv.conf",
		HostnamePath:   "/var/lib/docker/containers/" + c.id + "/hostname",
		HostsPath:      "/var/lib/docker/containers/" + c.id + "/hosts",
		LogPath:        "/var/lib/docker/containers/" + c.id + "/" + c.id + "-json.log",
		Name:           "/" + c.name, Driver: "overlay2", Platform: "linux", ExecIDs: c.execIDs,
		HostConfig: c.hostConfig, Mounts: mounts(c),
		Config: configAnswer{Hostname: c.id[:12], Tty: c.tty, Env: c.env, Cmd: c.cmd, Image: c.image,
			Labels: c.labels, AttachStdout: true, AttachStderr: true},
	}
	if a.State.Running {
		a.State.Pid = 4242
	}
	if a.HostConfig == nil {
		a.HostConfig = defaultHostConfig
	}
	if a.Config.Labels == nil {
		a.Config.Labels = map[string]string{}
	}
	if a.Config.Env == nil {
		a.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	a.GraphDriver.Name = "overlay2"
	a.GraphDriver.Data = map[string]string{"MergedDir": "/var/lib/docker/overlay2/" + c.id + "/merged"}
	a.NetworkSettings.SandboxKey = "/var/run/docker/netns/" + c.id[:12]
	a.NetworkSettings.Ports = inspectPorts(c)
	a.NetworkSettings.Networks = e.endpointsLocked(c)
	e.mu.Unlock()
	writeJSON(w, 200, a)
	return nil
}

// wait flushes headers at once and answers when the condition is met:
// not-running (the default; at once for a container not running),
// next-exit (the next stop, even of a container not running now) or
// removed.
func (e *Engine) wait(w http.ResponseWriter, r *http.Request, ref string) error {
	cond := r.URL.Query().Get("condition")
	e.mu.Lock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	var until chan struct{}
	switch {
	case cond == "removed":
		if c.removed == nil {
			c.removed = make(chan struct{})
		}
		until = c.removed
	case cond == "next-exit" || c.state == StateRunning:
		if c.exited == nil {
			c.exited = make(chan struct{})
		}
		until = c.exited
	}
	down := e.down
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	if until != nil {
		select {
		case <-until:
		case <-r.Context().Done():
			return nil
		case <-down:
			return nil
		}
	}
	e.mu.Lock()
	code := c.exitCode
	e.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": code, "Error": nil})
	return nil
}

// --- images, volumes, networks ----------------------------------------------

type imageSummary struct {
	ID          string `json:"Id"`
	ParentID    string `json:"ParentId"`
	RepoTags    []string
	RepoDigests []string
	Created     int64
	Size        int64
	SharedSize  int64
	Labels      map[string]string
	Containers  int64
}

func (e *Engine) imageCountLocked() int {
	seen := map[*image]bool{}
	for _, im := range e.images {
		seen[im] = true
	}
	return len(seen)
}

func (e *Engine) listImages(w http.ResponseWriter) error {
	e.mu.Lock()
	seen := map[*image]bool{}
	out := []imageSummary{}
	for _, im := range e.images {
		if seen[im] {
			continue
		}
		seen[im] = true
		out = append(out, imageSummary{ID: im.id, RepoTags: append([]string{}, im.refs...), RepoDigests: append([]string{}, im.digests...),
			Created: 1700000000, Size: imageSize, SharedSize: -1, Labels: map[string]string{}, Containers: -1})
	}
	for _, im := range e.dangling {
		// As dockerd 20.10 lists an image without tags or digests.
		out = append(out, imageSummary{ID: im.id, RepoTags: []string{"<none>:<none>"}, RepoDigests: []string{"<none>@<none>"},
			Created: 1700000000, Size: imageSize, SharedSize: -1, Labels: map[string]string{}, Containers: -1})
	}
	e.mu.Unlock()
	sortSlice(out, func(a, b imageSummary) bool { return a.ID < b.ID })
	writeJSON(w, 200, out)
	return nil
}

func (e *Engine) inspectImage(w http.ResponseWriter, ref string) error {
	e.mu.Lock()
	im := e.findImageLocked(ref)
	var tags, digests []string
	if im != nil {
		tags = append([]string{}, im.refs...)
		digests = append([]string{}, im.digests...)
	}
	e.mu.Unlock()
	if im == nil {
		return errf(404, "No such image: %s", ref)
	}
	writeJSON(w, 200, map[string]any{"Id": im.id, "RepoTags": tags, "RepoDigests": digests,
		"Os": "linux", "Architecture": "amd64", "Size": imageSize,
		"Config": map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}})
	return nil
}

// pull answers POST /images/create?fromImage=&tag=: the image is there at
// once, with a pull event.
func (e *Engine) pull(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref := q.Get("fromImage")
	if ref == "" {
		return errf(400, "fromImage is required (import is not supported)")
	}
	if tag := q.Get("tag"); tag != "" {
		ref += ":" + tag
	}
	e.AddImage(ref)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	_ = enc.Encode(map[string]string{"status": "Pulling from " + ref})
	_ = enc.Encode(map[string]string{"status": "Status: Downloaded newer image for " + normImage(ref)})
	return nil
}

func (e *Engine) tagImage(w http.ResponseWriter, r *http.Request, ref string) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return errf(400, "repository name must have at least one component")
	}
	if tag != "" {
		repo += ":" + tag
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	im := e.findImageLocked(ref)
	if im == nil {
		return errf(404, "No such image: %s", ref)
	}
	n := normImage(repo)
	e.moveTagLocked(n, im)
	e.publishImageLocked("tag", n, im)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func without(refs []string, r string) []string {
	out := refs[:0]
	for _, x := range refs {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}

// removeImage answers DELETE /images/{name} as dockerd does: a reference
// is untagged, and the image goes with its last tag. A container's image
// keeps its last tag unless forced; forced, the tag goes and the image
// stays while a running container uses it (a stopped one's goes). An ID
// removes every tag, refused while a container uses the image.
func (e *Engine) removeImage(w http.ResponseWriter, r *http.Request, ref string) error {
	force := flag(r.URL.Query(), "force")
	e.mu.Lock()
	defer e.mu.Unlock()
	im := e.findImageLocked(ref)
	if im == nil {
		return errf(404, "No such image: %s", ref)
	}
	n := normImage(ref)
	byRef := e.images[n] == im
	if users, _ := e.imageUsersLocked(im); users > 0 && len(im.refs) <= 1 && (!force || !byRef) {
		for _, c := range e.containers {
			if c.imageID == im.id {
				return errf(409, "conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, c.id[:12], strings.TrimPrefix(im.id, "sha256:")[:12])
			}
		}
	}
	if !byRef {
		n = "" // by ID: every tag goes
	}
	out := []map[string]string{}
	for _, t := range append([]string(nil), im.refs...) {
		if n == "" || t == n {
			delete(e.images, t)
			im.refs = without(im.refs, t)
			out = append(out, map[string]string{"Untagged": t})
			e.publishImageLocked("untag", t, im)
		}
	}
	if len(im.refs) == 0 && e.dropUntaggedLocked(im, force) {
		out = append(out, map[string]string{"Deleted": im.id})
		e.publishImageLocked("delete", im.id, im)
	}
	writeJSON(w, 200, out)
	return nil
}

// commit answers POST /commit?container=&repo=&tag=: a new image, tagged
// repo:tag (tag latest) when a repo is given.
func (e *Engine) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(q.Get("container"))
	if err != nil {
		return err
	}
	var tags []string
	if repo := q.Get("repo"); repo != "" {
		if tag := q.Get("tag"); tag != "" {
			repo += ":" + tag
		}
		tags = append(tags, repo)
	}
	im := e.newImageLocked("commit", tags)
	e.publishLocked("commit", c)
	writeJSON(w, http.StatusCreated, map[string]string{"Id": im.id})
	return nil
}

// build answers the classic builder's POST /build?t=…: the context is read
// and dropped, and a new image is tagged with every t, as one step.
func (e *Engine) build(w http.ResponseWriter, r *http.Request) error {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return errf(400, "reading the build context: %v", err)
	}
	e.mu.Lock()
	im := e.newImageLocked("build", r.URL.Query()["t"])
	refs := append([]string(nil), r.URL.Query()["t"]...)
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	_ = enc.Encode(map[string]string{"stream": "Step 1/1 : FROM scratch\n"})
	_ = enc.Encode(map[string]any{"aux": map[string]string{"ID": im.id}})
	_ = enc.Encode(map[string]string{"stream": "Successfully built " + strings.TrimPrefix(im.id, "sha256:")[:12] + "\n"})
	for _, t := range refs {
		_ = enc.Encode(map[string]string{"stream": "Successfully tagged " + normImage(t) + "\n"})
	}
	return nil
}

// imageSize is every image's size: the fake holds no layers.
const imageSize = 4_261_574

// diskUsage answers GET /system/df: images (with how many containers use
// each), containers with their sizes, volumes with their use.
func (e *Engine) diskUsage(w http.ResponseWriter) error {
	e.mu.Lock()
	uses := map[string]int64{} // by image ID
	for _, c := range e.containers {
		uses[c.imageID]++
	}
	seen := map[*image]bool{}
	images := []imageSummary{}
	for _, im := range e.images {
		if seen[im] {
			continue
		}
		seen[im] = true
		images = append(images, imageSummary{ID: im.id, RepoTags: append([]string{}, im.refs...), RepoDigests: append([]string{}, im.digests...),
			Created: 1700000000, Size: imageSize, SharedSize: 0, Labels: map[string]string{}, Containers: uses[im.id]})
	}
	cs := make([]*ctr, 0, len(e.containers))
	for _, c := range e.containers {
		cs = append(cs, c)
	}
	sortNewestFirst(cs)
	containers := make([]summary, len(cs))
	for i, c := range cs {
		containers[i] = e.summaryLocked(c, true)
	}
	volumes := []map[string]any{}
	for name, v := range e.volumes {
		a := e.volumeJSON(v)
		a["UsageData"] = map[string]int64{"Size": 0, "RefCount": int64(len(e.volumeUsersLocked(name)))}
		volumes = append(volumes, a)
	}
	e.mu.Unlock()
	sortSlice(images, func(a, b imageSummary) bool { return a.ID < b.ID })
	sortSlice(volumes, func(a, b map[string]any) bool { return a["Name"].(string) < b["Name"].(string) })
	writeJSON(w, 200, map[string]any{"LayersSize": imageSize * int64(len(images)), "Images": images,
		"Containers": containers, "Volumes": volumes, "BuildCache": []any{}, "BuilderSize": 0})
	return nil
}
