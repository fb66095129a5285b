package proxy_test

// An in-memory Docker engine behind httptest.Server, serving what the fleet
// and the proxy call: enough of the Engine API to place, route, stream and
// hijack without a real dockerd (the e2e suite covers real engines).

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock hands out strictly increasing creation times shared by every
// fake of the test binary, so "newest first" is deterministic across hosts.
var fakeClock atomic.Int64

func fakeNow() time.Time {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return base.Add(time.Duration(fakeClock.Add(1)) * time.Millisecond)
}

// fakeOpts configure one fake engine.
type fakeOpts struct {
	name     string   // the engine's own name (GET /info Name)
	images   []string // image references present ("busybox" = "busybox:latest")
	volumes  []string
	networks []string
	labels   []string // engine labels
	maxAPI   string   // default 1.41
	minAPI   string   // default 1.12
	version  string   // default 20.10.24
	ncpu     int      // default 2
	memTotal int64    // default 2 GiB
}

// fakeCall is one request the fake served.
type fakeCall struct {
	Method  string
	Path    string // without the /vX.Y prefix
	Version string // the path's version, "" when unversioned
	Query   url.Values
}

func (c fakeCall) String() string { return c.Method + " " + c.Path }

type fakeContainer struct {
	ID, Name, Image string
	Labels          map[string]string
	Created         time.Time
	State           string // created, running, exited
	ExitCode        int
	HostConfig      json.RawMessage
	Tty             bool
	exited          chan struct{} // closed when a running container stops
}

type fakeExec struct {
	ID, ContainerID string
	Cmd             []string // ["echo", …] answers its words and ends; else cat
}

// fakeEngine is one in-memory engine.
type fakeEngine struct {
	opts fakeOpts
	srv  *httptest.Server
	// URL is tcp://127.0.0.1:PORT, as a fleet record wants it.
	URL  string
	Addr string

	mu         sync.Mutex
	images     map[string]string // normalised ref → image ID
	volumes    map[string]bool
	networks   map[string]bool
	containers map[string]*fakeContainer
	execs      map[string]*fakeExec
	calls      []fakeCall
	subs       map[chan []byte]struct{}
	seq        int
	// followsEnded counts logs --follow streams whose client went away.
	followsEnded atomic.Int32

	down     chan struct{}
	downOnce sync.Once
}

func newFakeEngine(t *testing.T, opts fakeOpts) *fakeEngine {
	t.Helper()
	if opts.maxAPI == "" {
		opts.maxAPI = "1.41"
	}
	if opts.minAPI == "" {
		opts.minAPI = "1.12"
	}
	if opts.version == "" {
		opts.version = "20.10.24"
	}
	if opts.ncpu == 0 {
		opts.ncpu = 2
	}
	if opts.memTotal == 0 {
		opts.memTotal = 2 << 30
	}
	f := &fakeEngine{
		opts:       opts,
		images:     map[string]string{},
		volumes:    map[string]bool{},
		networks:   map[string]bool{},
		containers: map[string]*fakeContainer{},
		execs:      map[string]*fakeExec{},
		subs:       map[chan []byte]struct{}{},
		down:       make(chan struct{}),
	}
	for _, im := range opts.images {
		f.images[normImage(im)] = "sha256:" + hash(im)
	}
	for _, v := range opts.volumes {
		f.volumes[v] = true
	}
	for _, n := range opts.networks {
		f.networks[n] = true
	}
	f.srv = httptest.NewServer(f)
	f.Addr = f.srv.Listener.Addr().String()
	f.URL = "tcp://" + f.Addr
	t.Cleanup(f.shutdown)
	return f
}

// shutdown takes the engine down: streams end, connections drop, the port
// refuses.
func (f *fakeEngine) shutdown() {
	f.downOnce.Do(func() {
		close(f.down)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// normImage adds :latest to a reference without tag or digest.
func normImage(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	if !strings.Contains(last, ":") {
		return ref + ":latest"
	}
	return ref
}

// --- state helpers for tests --------------------------------------------

// calledWith reports whether the fake served method path (unversioned).
func (f *fakeEngine) calledWith(method, path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.Method == method && c.Path == path {
			return true
		}
	}
	return false
}

// callsMatching returns the calls whose path starts with prefix.
func (f *fakeEngine) callsMatching(method, prefix string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Method == method && strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// container returns a copy of a container by full ID.
func (f *fakeEngine) container(id string) (fakeContainer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fakeContainer{}, false
	}
	return *c, true
}

// containerIDs returns the IDs of the engine's containers.
func (f *fakeEngine) containerIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.containers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// addContainer creates a container behind Clocker's back (the engine's
// event stream tells the fleet). An empty id is generated.
func (f *fakeEngine) addContainer(id, name, image, state string, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.createLocked(id, name, image, labels, nil, false)
	if err != nil {
		panic(err)
	}
	if state == "running" {
		f.startLocked(c)
	}
	return c.ID
}

// --- HTTP ------------------------------------------------------------------

var fakeVersionPrefix = regexp.MustCompile(`^/v([0-9]+(?:\.[0-9]+)*)(/.*)$`)

type fakeError struct {
	status int
	msg    string
}

func (e *fakeError) Error() string { return e.msg }

func errf(status int, format string, args ...any) error {
	return &fakeError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeFakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeFakeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if fe, ok := err.(*fakeError); ok {
		status = fe.status
	}
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	writeFakeJSON(w, status, map[string]string{"message": err.Error()})
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ver := r.URL.Path, ""
	if m := fakeVersionPrefix.FindStringSubmatch(p); m != nil {
		ver, p = m[1], m[2]
	}
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{Method: r.Method, Path: p, Version: ver, Query: r.URL.Query()})
	f.mu.Unlock()

	h := w.Header()
	h.Set("Api-Version", f.opts.maxAPI)
	h.Set("Server", "Docker/"+f.opts.version+" (linux)")
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")
	if ver != "" && versionLess(f.opts.maxAPI, ver) {
		writeFakeError(w, errf(400, "client version %s is too new. Maximum supported API version is %s", ver, f.opts.maxAPI))
		return
	}
	if ver != "" && versionLess(ver, f.opts.minAPI) {
		writeFakeError(w, errf(400, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", ver, f.opts.minAPI))
		return
	}
	if err := f.route(w, r, p); err != nil {
		writeFakeError(w, err)
	}
}

func (f *fakeEngine) route(w http.ResponseWriter, r *http.Request, p string) error {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	m := r.Method
	switch {
	case p == "/_ping" && (m == http.MethodGet || m == http.MethodHead):
		w.Header().Set("Swarm", "inactive")
		w.Header().Set("Builder-Version", "1")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if m == http.MethodHead {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return nil
		}
		_, _ = io.WriteString(w, "OK")
		return nil
	case p == "/info" && m == http.MethodGet:
		return f.info(w)
	case p == "/version" && m == http.MethodGet:
		writeFakeJSON(w, 200, map[string]any{
			"Version": f.opts.version, "ApiVersion": f.opts.maxAPI, "MinAPIVersion": f.opts.minAPI,
			"Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0-fake", "GoVersion": "go1.26",
			"Platform": map[string]string{"Name": "Docker Engine - Fake"},
		})
		return nil
	case p == "/events" && m == http.MethodGet:
		f.events(w, r)
		return nil
	case p == "/containers/json" && m == http.MethodGet:
		return f.list(w, r)
	case p == "/containers/create" && m == http.MethodPost:
		return f.create(w, r)
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "json" && m == http.MethodGet:
		return f.inspect(w, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "logs" && m == http.MethodGet:
		return f.logs(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "wait" && m == http.MethodPost:
		return f.wait(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "attach" && m == http.MethodPost:
		if _, err := f.resolve(seg[1]); err != nil {
			return err
		}
		f.hijackEcho(w, r)
		return nil
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "exec" && m == http.MethodPost:
		return f.createExec(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && m == http.MethodPost:
		return f.change(w, r, seg[1], seg[2])
	case len(seg) == 2 && seg[0] == "containers" && m == http.MethodDelete:
		return f.remove(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "json" && m == http.MethodGet:
		f.mu.Lock()
		e, ok := f.execs[seg[1]]
		f.mu.Unlock()
		if !ok {
			return errf(404, "No such exec instance: %s", seg[1])
		}
		writeFakeJSON(w, 200, map[string]any{"ID": e.ID, "ContainerID": e.ContainerID, "Running": false, "ExitCode": 0,
			"ProcessConfig": map[string]any{"entrypoint": "sh", "arguments": []string{}}})
		return nil
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "start" && m == http.MethodPost:
		f.mu.Lock()
		_, ok := f.execs[seg[1]]
		f.mu.Unlock()
		if !ok {
			return errf(404, "No such exec instance: %s", seg[1])
		}
		f.mu.Lock()
		ex := *f.execs[seg[1]]
		f.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		var start struct{ Detach bool }
		if len(body) > 0 {
			if err := json.Unmarshal(body, &start); err != nil {
				return errf(400, "invalid JSON: %v", err)
			}
		}
		if start.Detach {
			w.WriteHeader(http.StatusOK)
			return nil
		}
		if len(ex.Cmd) > 0 && ex.Cmd[0] == "echo" {
			f.hijackSay(w, r, strings.Join(ex.Cmd[1:], " ")+"\n")
			return nil
		}
		f.hijackEcho(w, r)
		return nil
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "resize" && m == http.MethodPost:
		w.WriteHeader(http.StatusOK)
		return nil
	case len(seg) >= 3 && seg[0] == "images" && seg[len(seg)-1] == "json" && m == http.MethodGet:
		ref := strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json")
		f.mu.Lock()
		id, ok := f.images[normImage(ref)]
		f.mu.Unlock()
		if !ok {
			return errf(404, "No such image: %s", ref)
		}
		writeFakeJSON(w, 200, map[string]any{"Id": id, "RepoTags": []string{normImage(ref)}})
		return nil
	case len(seg) == 2 && seg[0] == "volumes" && m == http.MethodGet:
		f.mu.Lock()
		ok := f.volumes[seg[1]]
		f.mu.Unlock()
		if !ok {
			return errf(404, "get %s: no such volume", seg[1])
		}
		writeFakeJSON(w, 200, map[string]any{"Name": seg[1], "Driver": "local", "Mountpoint": "/var/lib/docker/volumes/" + seg[1] + "/_data", "Scope": "local"})
		return nil
	case len(seg) == 2 && seg[0] == "networks" && m == http.MethodGet:
		f.mu.Lock()
		ok := f.networks[seg[1]]
		f.mu.Unlock()
		if !ok {
			return errf(404, "network %s not found", seg[1])
		}
		writeFakeJSON(w, 200, map[string]any{"Name": seg[1], "Id": hash("net/" + seg[1]), "Driver": "bridge", "Scope": "local"})
		return nil
	}
	return errf(404, "page not found")
}

func (f *fakeEngine) info(w http.ResponseWriter) error {
	f.mu.Lock()
	var running, paused, stopped int
	for _, c := range f.containers {
		if c.State == "running" {
			running++
		} else {
			stopped++
		}
	}
	n, images := len(f.containers), len(f.images)
	f.mu.Unlock()
	labels := f.opts.labels
	if labels == nil {
		labels = []string{}
	}
	writeFakeJSON(w, 200, map[string]any{
		"ID": hash("engine/" + f.opts.name), "Name": f.opts.name, "NCPU": f.opts.ncpu, "MemTotal": f.opts.memTotal,
		"Labels": labels, "Images": images, "Containers": n, "ContainersRunning": running,
		"ContainersPaused": paused, "ContainersStopped": stopped, "ServerVersion": f.opts.version,
		"OperatingSystem": "Fake Linux", "OSType": "linux", "Architecture": "x86_64", "Driver": "overlay2",
	})
	return nil
}

// publish pushes a container event to every subscriber; callers hold f.mu.
func (f *fakeEngine) publish(action string, c *fakeContainer) {
	now := time.Now()
	msg, _ := json.Marshal(map[string]any{
		"status": action, "id": c.ID, "from": c.Image,
		"Type": "container", "Action": action,
		"Actor": map[string]any{"ID": c.ID, "Attributes": map[string]string{"name": c.Name, "image": c.Image}},
		"scope": "local", "time": now.Unix(), "timeNano": now.UnixNano(),
	})
	msg = append(msg, '\n')
	for ch := range f.subs {
		select {
		case ch <- msg:
		default: // a stalled reader loses events, as with a real engine's buffer
		}
	}
}

// events streams container events until the client goes or the engine is
// taken down.
func (f *fakeEngine) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 1024)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.down:
			return
		case msg := <-ch:
			if _, err := w.Write(msg); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// filterValues reads one filter's values in either JSON form.
func filterValues(raw, key string) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	var asMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &asMap); err == nil {
		var out []string
		for v := range asMap[key] {
			out = append(out, v)
		}
		return out, nil
	}
	var asList map[string][]string
	if err := json.Unmarshal([]byte(raw), &asList); err != nil {
		return nil, errf(400, "invalid filter")
	}
	return asList[key], nil
}

func (f *fakeEngine) summary(c *fakeContainer) map[string]any {
	status := "Created"
	switch c.State {
	case "running":
		status = "Up Less than a second"
	case "exited":
		status = fmt.Sprintf("Exited (%d) Less than a second ago", c.ExitCode)
	}
	var hc struct{ NetworkMode string }
	_ = json.Unmarshal(c.HostConfig, &hc)
	if hc.NetworkMode == "" {
		hc.NetworkMode = "bridge"
	}
	labels := c.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return map[string]any{
		"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": c.Image, "ImageID": f.images[normImage(c.Image)],
		"Command": "sh", "Created": c.Created.Unix(), "Ports": fakeListPorts(c), "Labels": labels,
		"State": c.State, "Status": status, "HostConfig": map[string]string{"NetworkMode": hc.NetworkMode},
		"NetworkSettings": map[string]any{"Networks": map[string]any{}}, "Mounts": []any{},
	}
}

func (f *fakeEngine) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	all := q.Get("all") == "1" || q.Get("all") == "true"
	ids, err := filterValues(q.Get("filters"), "id")
	if err != nil {
		return err
	}
	f.mu.Lock()
	cs := make([]*fakeContainer, 0, len(f.containers))
	for _, c := range f.containers {
		if !all && c.State != "running" {
			continue
		}
		if len(ids) > 0 && !slices.ContainsFunc(ids, func(p string) bool { return strings.HasPrefix(c.ID, p) }) {
			continue
		}
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *fakeContainer) int { return b.Created.Compare(a.Created) })
	out := make([]map[string]any, len(cs))
	for i, c := range cs {
		out[i] = f.summary(c)
	}
	f.mu.Unlock()
	writeFakeJSON(w, 200, out)
	return nil
}

// resolveLocked finds a container by full ID, name or unique ID prefix.
func (f *fakeEngine) resolveLocked(ref string) (*fakeContainer, error) {
	if c, ok := f.containers[ref]; ok {
		return c, nil
	}
	name := strings.TrimPrefix(ref, "/")
	for _, c := range f.containers {
		if c.Name == name {
			return c, nil
		}
	}
	var found *fakeContainer
	for _, c := range f.containers {
		if ref != "" && strings.HasPrefix(c.ID, ref) {
			if found != nil {
				return nil, errf(400, "multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errf(404, "No such container: %s", ref)
	}
	return found, nil
}

func (f *fakeEngine) resolve(ref string) (fakeContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.resolveLocked(ref)
	if err != nil {
		return fakeContainer{}, err
	}
	return *c, nil
}

func (f *fakeEngine) createLocked(id, name, image string, labels map[string]string, hostConfig json.RawMessage, tty bool) (*fakeContainer, error) {
	f.seq++
	if name == "" {
		name = fmt.Sprintf("%s_auto_%d", f.opts.name, f.seq)
	}
	name = strings.TrimPrefix(name, "/")
	for _, c := range f.containers {
		if c.Name == name {
			return nil, errf(409, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, c.ID)
		}
	}
	if id == "" {
		id = hash(fmt.Sprintf("%s/%d/%s", f.opts.name, f.seq, name))
	}
	if len(hostConfig) == 0 || string(hostConfig) == "null" {
		hostConfig = json.RawMessage(`{}`)
	}
	c := &fakeContainer{ID: id, Name: name, Image: image, Labels: labels, Created: fakeNow(),
		State: "created", HostConfig: hostConfig, Tty: tty}
	f.containers[id] = c
	f.publish("create", c)
	return c, nil
}

func (f *fakeEngine) startLocked(c *fakeContainer) {
	c.State = "running"
	c.ExitCode = 0
	c.exited = make(chan struct{})
	f.publish("start", c)
}

func (f *fakeEngine) stopLocked(c *fakeContainer, code int, actions ...string) {
	c.State = "exited"
	c.ExitCode = code
	close(c.exited)
	for _, a := range actions {
		f.publish(a, c)
	}
}

func (f *fakeEngine) create(w http.ResponseWriter, r *http.Request) error {
	var spec struct {
		Image      string
		Labels     map[string]string
		Tty        bool
		HostConfig json.RawMessage
	}
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
		return errf(400, "invalid JSON: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[normImage(spec.Image)]; !ok {
		return errf(404, "No such image: %s", spec.Image)
	}
	c, err := f.createLocked("", r.URL.Query().Get("name"), spec.Image, spec.Labels, spec.HostConfig, spec.Tty)
	if err != nil {
		return err
	}
	writeFakeJSON(w, http.StatusCreated, map[string]any{"Id": c.ID, "Warnings": []string{}})
	return nil
}

func (f *fakeEngine) inspect(w http.ResponseWriter, ref string) error {
	f.mu.Lock()
	c, err := f.resolveLocked(ref)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	labels := c.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	out := map[string]any{
		"Id": c.ID, "Created": c.Created.Format(time.RFC3339Nano), "Name": "/" + c.Name,
		"Image": f.images[normImage(c.Image)], "Path": "sh", "Args": []string{},
		"State":           map[string]any{"Status": c.State, "Running": c.State == "running", "ExitCode": c.ExitCode},
		"Config":          map[string]any{"Image": c.Image, "Labels": labels, "Tty": c.Tty},
		"HostConfig":      c.HostConfig,
		"NetworkSettings": map[string]any{"Networks": map[string]any{}, "Ports": fakeInspectPorts(c)},
		"Mounts":          []any{},
	}
	f.mu.Unlock()
	writeFakeJSON(w, 200, out)
	return nil
}

// logs answers one multiplexed stdout frame, or tail=N frames; with
// follow=1 it then holds the stream open until the client goes away.
func (f *fakeEngine) logs(w http.ResponseWriter, r *http.Request, ref string) error {
	c, err := f.resolve(ref)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(200)
	n, _ := strconv.Atoi(r.URL.Query().Get("tail"))
	if n <= 0 {
		_, _ = w.Write(muxFrame(1, "log of "+c.Name+"\n"))
	}
	for i := range n {
		_, _ = w.Write(muxFrame(1+byte(i%2), fmt.Sprintf("line %d of %s\n", i, c.Name)))
		w.(http.Flusher).Flush() // as an engine does, a line per write
	}
	if r.URL.Query().Get("follow") == "1" {
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		f.followsEnded.Add(1)
	}
	return nil
}

func muxFrame(stream byte, s string) []byte {
	b := make([]byte, 8, 8+len(s))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(s)))
	return append(b, s...)
}

// wait flushes headers at once and answers when the container is not
// running.
func (f *fakeEngine) wait(w http.ResponseWriter, r *http.Request, ref string) error {
	f.mu.Lock()
	c, err := f.resolveLocked(ref)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	var exited chan struct{}
	if c.State == "running" {
		exited = c.exited
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_ = http.NewResponseController(w).Flush()
	if exited != nil {
		select {
		case <-exited:
		case <-r.Context().Done():
			return nil
		case <-f.down:
			return nil
		}
	}
	f.mu.Lock()
	code := c.ExitCode
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": code, "Error": nil})
	return nil
}

func (f *fakeEngine) change(w http.ResponseWriter, r *http.Request, ref, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.resolveLocked(ref)
	if err != nil {
		return err
	}
	running := c.State == "running"
	switch action {
	case "start":
		if running {
			return errf(304, "container already started")
		}
		f.startLocked(c)
	case "stop":
		if !running {
			return errf(304, "container already stopped")
		}
		f.stopLocked(c, 143, "kill", "die", "stop")
	case "kill":
		if !running {
			return errf(409, "Cannot kill container: %s: Container %s is not running", ref, c.ID)
		}
		f.stopLocked(c, 137, "kill", "die")
	case "restart":
		if running {
			f.stopLocked(c, 143, "die")
		}
		f.startLocked(c)
		f.publish("restart", c)
	default:
		return errf(404, "page not found")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (f *fakeEngine) remove(w http.ResponseWriter, r *http.Request, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.resolveLocked(ref)
	if err != nil {
		return err
	}
	force := r.URL.Query().Get("force") == "1" || r.URL.Query().Get("force") == "true"
	if c.State == "running" {
		if !force {
			return errf(409, "cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
		}
		f.stopLocked(c, 137, "kill", "die")
	}
	delete(f.containers, c.ID)
	f.publish("destroy", c)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (f *fakeEngine) createExec(w http.ResponseWriter, r *http.Request, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.resolveLocked(ref)
	if err != nil {
		return err
	}
	if c.State != "running" {
		return errf(409, "Container %s is not running", c.ID)
	}
	var spec struct{ Cmd []string }
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil && err != io.EOF {
		return errf(400, "invalid JSON: %v", err)
	}
	f.seq++
	id := hash(fmt.Sprintf("exec/%s/%d", f.opts.name, f.seq))
	f.execs[id] = &fakeExec{ID: id, ContainerID: c.ID, Cmd: spec.Cmd}
	writeFakeJSON(w, http.StatusCreated, map[string]string{"Id": id})
	return nil
}

// takeOver hijacks the connection and writes the engine's answer head.
func takeOver(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.ReadWriter, bool) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeFakeError(w, errf(500, "hijack: %v", err))
		return nil, nil, false
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		_, _ = brw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	} else {
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, false
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn, brw, true
}

// hijackSay answers out and ends the output at once, with stdin still
// open (a command that exits without reading its input).
func (f *fakeEngine) hijackSay(w http.ResponseWriter, r *http.Request, out string) {
	conn, _, ok := takeOver(w, r)
	if !ok {
		return
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, out)
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, conn) // until the client closes
}

// hijackEcho takes the connection over as an engine does for attach and
// exec start (101 UPGRADED when asked to upgrade, else 200 with a raw
// stream), echoes stdin to stdout, and half-closes after stdin's EOF.
func (f *fakeEngine) hijackEcho(w http.ResponseWriter, r *http.Request) {
	conn, brw, ok := takeOver(w, r)
	if !ok {
		return
	}
	defer conn.Close()
	_, _ = io.Copy(conn, brw.Reader)
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
