package proxy

// The volume and network handlers' tests run against internal/fakeengine
// (dockerd 20.10's routes and wording); this adapter starts one per host,
// recording the calls it serves, and names the steps the tests take.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/scheduler"
)

// objEngine is one fake engine.
type objEngine struct {
	*fakeengine.Server
	name string
}

// serveFake serves a fake engine on loopback until the test ends,
// recording the calls it serves.
func serveFake(t *testing.T, opts fakeengine.Options) *fakeengine.Server {
	t.Helper()
	e := fakeengine.New(opts)
	e.RecordCalls()
	s, err := fakeengine.Listen(e, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newObjEngine(t *testing.T, name string) *objEngine {
	t.Helper()
	return &objEngine{Server: serveFake(t, fakeengine.Options{Name: name, Images: []string{"busybox"}}), name: name}
}

func (f *objEngine) url() string { return f.URL }
func (f *objEngine) stop()       { f.Close() }

// calls are the requests but the fleet's own (following the engine and
// its containers), as "METHOD PATH?QUERY".
func (f *objEngine) calls() []fakeengine.Call {
	var out []fakeengine.Call
	for _, c := range f.Calls("", "") {
		switch {
		case c.Path == "/info" || c.Path == "/version" || c.Path == "/events" || c.Path == "/_ping",
			strings.HasPrefix(c.Path, "/containers/"):
			continue
		}
		out = append(out, c)
	}
	return out
}

func callString(c fakeengine.Call) string {
	s := c.Method + " " + c.Path
	if c.RawQuery != "" {
		s += "?" + c.RawQuery
	}
	return s
}

// mutations are the calls that could change something.
func (f *objEngine) mutations() []string {
	var out []string
	for _, c := range f.calls() {
		if c.Method != http.MethodGet {
			out = append(out, callString(c))
		}
	}
	return out
}

// bodies are the bodies of the mutations, in order.
func (f *objEngine) bodies() []string {
	var out []string
	for _, c := range f.calls() {
		if c.Method != http.MethodGet {
			out = append(out, c.Body)
		}
	}
	return out
}

func (f *objEngine) callsTo(prefix string) []string {
	var out []string
	for _, c := range f.calls() {
		if s := callString(c); strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func (f *objEngine) addVolume(name string, labels map[string]string) { f.AddVolume(name, labels) }
func (f *objEngine) volumeCount() int                                { return len(f.Volumes()) }

func (f *objEngine) hasVolume(name string) bool {
	for _, v := range f.Volumes() {
		if v.Name == name {
			return true
		}
	}
	return false
}

func (f *objEngine) addNetwork(name string, labels map[string]string) string {
	return f.AddNetwork(name, labels)
}

func (f *objEngine) networkByName(name string) *fakeengine.Network {
	for _, n := range f.Networks() {
		if n.Name == name {
			return &n
		}
	}
	return nil
}

// addContainer runs a busybox container using the named volumes.
func (f *objEngine) addContainer(name string, labels map[string]string, volumes ...string) string {
	var hc []byte
	if len(volumes) > 0 {
		binds := make([]string, len(volumes))
		for i, v := range volumes {
			binds[i] = fmt.Sprintf("%s:/data%d", v, i)
		}
		hc, _ = json.Marshal(map[string]any{"Binds": binds})
	}
	id, err := f.Create(fakeengine.Spec{Name: name, Image: "busybox", Labels: labels, HostConfig: hc, Running: true})
	if err != nil {
		panic(err)
	}
	return id
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
	e.fleet.HealthTimeout = 5 * time.Second // a slow answer under -race on a busy machine is no failure
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
