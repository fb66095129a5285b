package hosts_test

// A minimal in-memory Docker engine for the fleet's tests: ping, info,
// version, the container event stream, list, inspect, create, start, stop
// and delete. The proxy's tests carry a fuller one (proxy/fakeengine_test.go).

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var fakeClock atomic.Int64

func fakeNow() time.Time {
	return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(fakeClock.Add(1)) * time.Millisecond)
}

type fakeOpts struct {
	name   string      // GET /info Name
	maxAPI string      // default 1.41
	tls    *tls.Config // serve TLS with this config
}

type fakeContainer struct {
	ID, Name, State string
	Labels          map[string]string
	Created         time.Time
	HostConfig      json.RawMessage
}

type fakeImage struct {
	ID          string `json:"Id"`
	RepoTags    []string
	RepoDigests []string
}

type fakeEngine struct {
	opts fakeOpts
	srv  *httptest.Server
	URL  string // tcp://127.0.0.1:PORT

	mu         sync.Mutex
	containers map[string]*fakeContainer
	images     []fakeImage
	subs       map[chan []byte]struct{}
	seq        int
	creates    int // POST /containers/create served (any outcome)
	// holdList, when set, makes the next id-filtered list compute its
	// answer, signal listHeld, and wait for holdList to close before
	// answering (to order a refresh against other changes).
	holdList chan struct{}
	listHeld chan struct{}

	// hung makes every call but the event stream hang until its client
	// gives up, as an engine behind a partition whose streams stay open.
	hung atomic.Bool
	// pings counts GET /_ping served (the health checks between /info).
	pings atomic.Int64

	kick     chan struct{} // closed to end the current event streams
	down     chan struct{}
	downOnce sync.Once
}

func newFakeEngine(t *testing.T, opts fakeOpts) *fakeEngine {
	t.Helper()
	if opts.maxAPI == "" {
		opts.maxAPI = "1.41"
	}
	f := &fakeEngine{opts: opts, containers: map[string]*fakeContainer{}, subs: map[chan []byte]struct{}{},
		kick: make(chan struct{}), down: make(chan struct{})}
	f.srv = httptest.NewUnstartedServer(f)
	if opts.tls != nil {
		f.srv.TLS = opts.tls
		f.srv.StartTLS() // as an engine started with --tlsverify
	} else {
		f.srv.Start()
	}
	f.URL = "tcp://" + f.srv.Listener.Addr().String()
	t.Cleanup(f.shutdown)
	return f
}

// shutdown takes the engine down for good.
func (f *fakeEngine) shutdown() {
	f.downOnce.Do(func() {
		close(f.down)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
}

func hexHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// add creates a container directly on the engine; quiet skips the event,
// as if the event stream lagged. An empty id is generated.
func (f *fakeEngine) add(id, name, state string, hostConfig string, quiet bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.createLocked(id, name, hostConfig)
	if err != nil {
		panic(err)
	}
	c.State = state
	if !quiet {
		f.publish("create", c)
		if state == "running" {
			f.publish("start", c)
		}
	}
	return c.ID
}

// setState changes a container's state and publishes action.
func (f *fakeEngine) setState(id, state, action string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	c.State = state
	f.publish(action, c)
}

// remove deletes a container and publishes destroy unless quiet.
func (f *fakeEngine) remove(id string, quiet bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	delete(f.containers, id)
	if !quiet {
		f.publish("destroy", c)
	}
}

// dropStreams ends every open event stream (the engine stays up).
func (f *fakeEngine) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.kick)
	f.kick = make(chan struct{})
}

// streams counts the open event streams.
func (f *fakeEngine) streams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeEngine) createCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates
}

func (f *fakeEngine) createLocked(id, name, hostConfig string) (*fakeContainer, error) {
	f.seq++
	if name == "" {
		name = fmt.Sprintf("%s_auto_%d", f.opts.name, f.seq)
	}
	for _, c := range f.containers {
		if c.Name == name {
			return nil, fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, c.ID)
		}
	}
	if id == "" {
		id = hexHash(fmt.Sprintf("%s/%d/%s", f.opts.name, f.seq, name))
	}
	if hostConfig == "" {
		hostConfig = "{}"
	}
	c := &fakeContainer{ID: id, Name: name, State: "created", Labels: map[string]string{}, Created: fakeNow(), HostConfig: json.RawMessage(hostConfig)}
	f.containers[id] = c
	return c, nil
}

// addImage stores an image and announces it as a pull would.
func (f *fakeEngine) addImage(im fakeImage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images = append(f.images, im)
	f.publishEvent("image", "pull", im.ID, nil)
}

// publish sends a container event to the streams; callers hold f.mu.
func (f *fakeEngine) publish(action string, c *fakeContainer) {
	f.publishEvent("container", action, c.ID, map[string]string{"name": c.Name})
}

func (f *fakeEngine) publishEvent(typ, action, id string, attrs map[string]string) {
	now := time.Now()
	msg, _ := json.Marshal(map[string]any{
		"Type": typ, "Action": action, "scope": "local", "time": now.Unix(), "timeNano": now.UnixNano(),
		"Actor": map[string]any{"ID": id, "Attributes": attrs},
	})
	for ch := range f.subs {
		select {
		case ch <- append(msg, '\n'):
		default:
		}
	}
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+(?:\.[0-9]+)*(/.*)$`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if m := versionPrefix.FindStringSubmatch(p); m != nil {
		p = m[1]
	}
	w.Header().Set("Api-Version", f.opts.maxAPI)
	w.Header().Set("Ostype", "linux")
	seg := strings.Split(strings.Trim(p, "/"), "/")
	if f.hung.Load() && p != "/events" {
		<-r.Context().Done()
		return
	}
	switch {
	case p == "/_ping":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodHead {
			return
		}
		f.pings.Add(1)
		_, _ = io.WriteString(w, "OK")
	case p == "/info":
		writeJSON(w, 200, map[string]any{"Name": f.opts.name, "NCPU": 2, "MemTotal": 2 << 30, "Labels": []string{}, "Images": 1})
	case p == "/version":
		writeJSON(w, 200, map[string]any{"Version": "20.10.24", "ApiVersion": f.opts.maxAPI, "MinAPIVersion": "1.12"})
	case p == "/events":
		f.events(w, r)
	case p == "/containers/json":
		f.list(w, r)
	case p == "/images/json":
		f.mu.Lock()
		out := append([]fakeImage{}, f.images...)
		f.mu.Unlock()
		writeJSON(w, 200, out)
	case p == "/containers/create" && r.Method == http.MethodPost:
		f.mu.Lock()
		defer f.mu.Unlock()
		f.creates++
		c, err := f.createLocked("", r.URL.Query().Get("name"), "")
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"message": err.Error()})
			return
		}
		f.publish("create", c)
		writeJSON(w, http.StatusCreated, map[string]any{"Id": c.ID, "Warnings": []string{}})
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "json":
		f.mu.Lock()
		c := f.resolveLocked(seg[1])
		var out map[string]any
		if c != nil {
			out = map[string]any{"Id": c.ID, "Name": "/" + c.Name, "Created": c.Created.Format(time.RFC3339Nano),
				"State": map[string]any{"Status": c.State}, "HostConfig": c.HostConfig}
		}
		f.mu.Unlock()
		if out == nil {
			writeJSON(w, 404, map[string]string{"message": "No such container: " + seg[1]})
			return
		}
		writeJSON(w, 200, out)
	default:
		writeJSON(w, 404, map[string]string{"message": "page not found"})
	}
}

func (f *fakeEngine) resolveLocked(ref string) *fakeContainer {
	if ref == "" {
		return nil
	}
	if c, ok := f.containers[ref]; ok {
		return c
	}
	for _, c := range f.containers {
		if c.Name == strings.TrimPrefix(ref, "/") {
			return c
		}
	}
	var found *fakeContainer
	for _, c := range f.containers {
		if strings.HasPrefix(c.ID, ref) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

func (f *fakeEngine) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 1024)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	kick := f.kick
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.down:
			return
		case <-kick:
			return
		case msg := <-ch:
			if _, err := w.Write(msg); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func (f *fakeEngine) list(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if raw := r.URL.Query().Get("filters"); raw != "" {
		var asList map[string][]string
		if json.Unmarshal([]byte(raw), &asList) == nil {
			ids = asList["id"]
		} else {
			var asMap map[string]map[string]bool
			_ = json.Unmarshal([]byte(raw), &asMap)
			for id := range asMap["id"] {
				ids = append(ids, id)
			}
		}
	}
	all := r.URL.Query().Get("all") == "1"
	f.mu.Lock()
	out := []map[string]any{}
	for _, c := range f.containers {
		if (!all && c.State != "running") ||
			(len(ids) > 0 && !slices.ContainsFunc(ids, func(p string) bool { return strings.HasPrefix(c.ID, p) })) {
			continue
		}
		out = append(out, map[string]any{"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": "busybox",
			"Created": c.Created.Unix(), "State": c.State, "Status": c.State, "Labels": c.Labels})
	}
	hold, held := f.holdList, f.listHeld
	if len(ids) > 0 && hold != nil {
		f.holdList, f.listHeld = nil, nil
	}
	f.mu.Unlock()
	if len(ids) > 0 && hold != nil {
		close(held)
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, 200, out)
}
