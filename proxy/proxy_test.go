package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

// --- environment -------------------------------------------------------------

// env is a fleet of fake engines behind a proxy served by httptest.
type env struct {
	t     *testing.T
	fleet *hosts.Fleet
	fakes map[string]*fakeEngine
	srv   *proxy.Server
	ts    *httptest.Server
	log   *slog.Logger
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T, opts ...fakeOpts) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with setup run on the env once its fleet is synced,
// before the server's handler is built (as serve wires a server).
func newEnvWith(t *testing.T, setup func(*env), opts ...fakeOpts) *env {
	t.Helper()
	e := &env{t: t, fakes: map[string]*fakeEngine{}, log: testLogger()}
	reg := prometheus.NewRegistry()
	for _, o := range opts {
		e.fakes[o.name] = newFakeEngine(t, o)
	}
	e.fleet = hosts.NewFleet(nil, e.log, hosts.NewMetrics(reg))
	t.Cleanup(e.fleet.Close) // runs before the fakes shut down
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, o := range opts {
		if _, err := e.fleet.Add(ctx, hosts.Record{Name: o.name, URL: e.fakes[o.name].URL}, false); err != nil {
			t.Fatalf("add %s: %v", o.name, err)
		}
	}
	if err := e.fleet.WaitSynced(ctx); err != nil {
		t.Fatalf("fleet not synced: %v", err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		t.Fatal(err)
	}
	e.srv = proxy.NewServer(e.fleet, strategy, e.log, 1<<20, reg)
	if setup != nil {
		setup(e)
	}
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

// newServer is another front door on the same fleet (as after a restart of
// the proxy that kept its engines), with its own memory.
func (e *env) newServer() *httptest.Server {
	strategy, _ := scheduler.New("spread")
	s := proxy.NewServer(e.fleet, strategy, e.log, 1<<20, prometheus.NewRegistry())
	ts := httptest.NewServer(s.Handler())
	e.t.Cleanup(ts.Close)
	return ts
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// message is the {"message": …} of an error answer.
func (r response) message() string {
	var m struct{ Message string }
	_ = json.Unmarshal(r.body, &m)
	return m.Message
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

func doOn(t *testing.T, base, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (e *env) do(method, path string, body any) response {
	e.t.Helper()
	return doOn(e.t, e.ts.URL, method, path, body)
}

// create creates a container through the proxy and returns its ID.
func (e *env) create(name string, spec map[string]any) string {
	e.t.Helper()
	path := "/v1.41/containers/create"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	r := e.do("POST", path, spec)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create %q: %s", name, r)
	}
	var out struct{ Id string }
	if err := json.Unmarshal(r.body, &out); err != nil || out.Id == "" {
		e.t.Fatalf("create %q: bad answer %s", name, r.body)
	}
	return out.Id
}

// owner returns the name of the fake that holds container id.
func (e *env) owner(id string) string {
	for name, f := range e.fakes {
		if _, ok := f.Container(id); ok {
			return name
		}
	}
	return ""
}

func (e *env) createCalls() int {
	n := 0
	for _, f := range e.fakes {
		n += len(f.Calls("POST", "/containers/create"))
	}
	return n
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCached waits until the fleet's cache knows container id.
func (e *env) waitCached(id string) {
	e.t.Helper()
	waitFor(e.t, "cache to know "+id, func() bool {
		return slices.ContainsFunc(e.fleet.Containers(), func(c hosts.Container) bool { return c.ID() == id })
	})
}

type listed struct {
	Id     string
	Names  []string
	State  string
	Labels map[string]string
}

func (e *env) list(query string) []listed {
	e.t.Helper()
	r := e.do("GET", "/containers/json"+query, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("list %s: %s", query, r)
	}
	var out []listed
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.t.Fatalf("list %s: %v: %s", query, err, r.body)
	}
	return out
}

func ids(ls []listed) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Id
	}
	return out
}

func filtersQuery(f map[string][]string) string {
	data, _ := json.Marshal(f)
	return url.QueryEscape(string(data))
}

// --- system routes -----------------------------------------------------------

func TestPing(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	tests := []struct {
		name, method, path string
		wantBody           string
	}{
		{name: "GET unversioned", method: "GET", path: "/_ping", wantBody: "OK"},
		{name: "HEAD unversioned", method: "HEAD", path: "/_ping"},
		{name: "GET versioned", method: "GET", path: "/v1.41/_ping", wantBody: "OK"},
		{name: "HEAD versioned", method: "HEAD", path: "/v1.24/_ping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doOn(t, e.ts.URL, tt.method, tt.path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("status: %s", r)
			}
			want := map[string]string{
				"Api-Version": "1.41", "Ostype": "linux", "Docker-Experimental": "false",
				"Swarm": "inactive", "Builder-Version": "1",
			}
			for k, v := range want {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got := r.header.Get("Server"); !strings.HasPrefix(got, "Docker/") || !strings.HasSuffix(got, "(linux)") {
				t.Errorf("Server header %q does not look like an engine's", got)
			}
			if got := r.header.Get("Cache-Control"); !strings.Contains(got, "no-cache") {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if string(r.body) != tt.wantBody {
				t.Errorf("body = %q, want %q", r.body, tt.wantBody)
			}
		})
	}
}

func TestVersionAgreesWithPing(t *testing.T) {
	e := newEnv(t,
		fakeOpts{name: "h1", maxAPI: "1.43", version: "24.0.7"},
		fakeOpts{name: "h2", maxAPI: "1.41", version: "20.10.24"},
	)
	ping := e.do("HEAD", "/_ping", nil)
	if got := ping.header.Get("Api-Version"); got != "1.41" {
		t.Fatalf("ping Api-Version = %q, want the lowest maximum 1.41", got)
	}
	for _, path := range []string{"/version", "/v1.41/version", "/v1.24/version"} {
		t.Run(path, func(t *testing.T) {
			r := e.do("GET", path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("status: %s", r)
			}
			var v struct {
				ApiVersion, MinAPIVersion, Version string
				Platform                           struct{ Name string }
			}
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if v.ApiVersion != ping.header.Get("Api-Version") {
				t.Errorf("ApiVersion %q disagrees with ping's %q", v.ApiVersion, ping.header.Get("Api-Version"))
			}
			if v.ApiVersion != r.header.Get("Api-Version") {
				t.Errorf("ApiVersion %q disagrees with the header %q", v.ApiVersion, r.header.Get("Api-Version"))
			}
			if v.MinAPIVersion != proxy.MinAPIVersion {
				t.Errorf("MinAPIVersion = %q, want %q", v.MinAPIVersion, proxy.MinAPIVersion)
			}
			if v.Version != "20.10.24" {
				t.Errorf("Version = %q, want the oldest engine's 20.10.24", v.Version)
			}
			if !strings.Contains(v.Platform.Name, "Clocker") {
				t.Errorf("Platform.Name = %q, want Clocker", v.Platform.Name)
			}
		})
	}
}

func TestInfoSumsHosts(t *testing.T) {
	e := newEnv(t,
		fakeOpts{name: "h1", images: []string{"busybox", "redis"}, ncpu: 2, memTotal: 1 << 30, labels: []string{"disk=ssd"}},
		fakeOpts{name: "h2", images: []string{"busybox"}, ncpu: 4, memTotal: 3 << 30},
	)
	run := e.fakes["h1"].addContainer("", "run1", "busybox", "running", nil)
	stop := e.fakes["h2"].addContainer("", "stop1", "busybox", "created", nil)
	e.waitCached(run)
	e.waitCached(stop)
	waitFor(t, "run1 running in the cache", func() bool {
		for _, c := range e.fleet.Containers() {
			if c.ID() == run {
				return c.Summary.State == "running"
			}
		}
		return false
	})

	r := e.do("GET", "/info", nil)
	if r.status != http.StatusOK {
		t.Fatalf("info: %s", r)
	}
	var info struct {
		NCPU                                             int
		MemTotal                                         int64
		Images                                           int
		Containers, ContainersRunning, ContainersStopped int
		SystemStatus                                     [][2]string
		OperatingSystem                                  string
		Labels                                           []string
	}
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	// Images counts what the list of every image shows: busybox, on both
	// hosts, once (the SDK compares the two).
	if info.NCPU != 6 || info.MemTotal != 4<<30 || info.Images != 2 {
		t.Errorf("totals: NCPU %d MemTotal %d Images %d, want 6, %d, 2", info.NCPU, info.MemTotal, info.Images, int64(4<<30))
	}
	if l := e.do("GET", "/images/json?all=1", nil); l.status != http.StatusOK || strings.Count(string(l.body), `"Id"`) != info.Images {
		t.Errorf("images?all=1 %s: not %d rows", l, info.Images)
	}
	if info.Containers != 2 || info.ContainersRunning != 1 || info.ContainersStopped != 1 {
		t.Errorf("containers: %d (%d running, %d stopped), want 2 (1, 1)", info.Containers, info.ContainersRunning, info.ContainersStopped)
	}
	status := map[string][]string{}
	var hostLines []string
	for _, kv := range info.SystemStatus {
		status[kv[0]] = append(status[kv[0]], kv[1])
		if strings.HasPrefix(kv[0], " ") && !strings.HasPrefix(kv[0], "  ") {
			hostLines = append(hostLines, strings.TrimSpace(kv[0])+"="+kv[1])
		}
	}
	wantHosts := []string{"h1=" + e.fakes["h1"].Addr, "h2=" + e.fakes["h2"].Addr}
	if !slices.Equal(hostLines, wantHosts) {
		t.Errorf("host lines %q, want %q", hostLines, wantHosts)
	}
	checks := []struct {
		key  string
		want []string
	}{
		{"Nodes", []string{"2"}},
		{"Strategy", []string{"spread"}},
		{"  └ Status", []string{"Healthy", "Healthy"}},
		{"  └ Containers", []string{"1 (1 Running, 0 Paused, 0 Stopped)", "1 (0 Running, 0 Paused, 1 Stopped)"}},
		{"  └ Labels", []string{"disk=ssd", ""}},
		{"  └ ServerVersion", []string{"20.10.24", "20.10.24"}},
	}
	for _, c := range checks {
		if !slices.Equal(status[c.key], c.want) {
			t.Errorf("SystemStatus %q = %q, want %q", c.key, status[c.key], c.want)
		}
	}
}

func TestAPIVersionPaths(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	tests := []struct {
		name, path string
		wantStatus int
		wantMsg    string
	}{
		{name: "unversioned version", path: "/version", wantStatus: 200},
		{name: "fleet version", path: "/v1.41/version", wantStatus: 200},
		{name: "older version", path: "/v1.24/version", wantStatus: 200},
		{name: "oldest served", path: "/v1.17/version", wantStatus: 200},
		{name: "unversioned list", path: "/containers/json", wantStatus: 200},
		{name: "versioned list", path: "/v1.40/containers/json", wantStatus: 200},
		{name: "too new", path: "/v1.42/version", wantStatus: 400,
			wantMsg: "client version 1.42 is too new. Maximum supported API version is 1.41"},
		{name: "too new list", path: "/v2.0/containers/json", wantStatus: 400,
			wantMsg: "client version 2.0 is too new. Maximum supported API version is 1.41"},
		{name: "too old", path: "/v1.12/version", wantStatus: 400,
			wantMsg: "client version 1.12 is too old. Minimum supported API version is 1.17, please upgrade your client to a newer version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", tt.path, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("status: %s, want %d", r, tt.wantStatus)
			}
			if tt.wantMsg != "" && r.message() != tt.wantMsg {
				t.Errorf("message %q, want %q", r.message(), tt.wantMsg)
			}
		})
	}
}

// An old client is forwarded with the oldest version the host accepts.
func TestForwardRaisesOldClientVersion(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}, minAPI: "1.24"})
	id := e.fakes["h1"].addContainer("", "old", "busybox", "created", nil)
	e.waitCached(id)
	if r := e.do("POST", "/v1.18/containers/old/start", nil); r.status != http.StatusNoContent {
		t.Fatalf("start: %s", r)
	}
	calls := e.fakes["h1"].Calls("POST", "/containers/"+id+"/start")
	if len(calls) != 1 || calls[0].Version != "1.24" {
		t.Fatalf("engine saw %+v, want one start under /v1.24", calls)
	}
}

// --- create ------------------------------------------------------------------

// placementEnv: h1 has redis and volume vol1, h2 has postgres, volume data
// and network backend; both have busybox; container src lives on h2.
func placementEnv(t *testing.T) (*env, string) {
	e := newEnv(t,
		fakeOpts{name: "h1", images: []string{"busybox", "redis"}, volumes: []string{"vol1"}},
		fakeOpts{name: "h2", images: []string{"busybox", "postgres"}, volumes: []string{"data"}, networks: []string{"backend"}},
	)
	src := e.fakes["h2"].addContainer("", "src", "busybox", "running", nil)
	e.waitCached(src)
	return e, src
}

func TestCreatePlacement(t *testing.T) {
	e, _ := placementEnv(t)
	tests := []struct {
		name     string
		spec     map[string]any
		wantHost string
	}{
		{name: "unpinned goes to the emptier host", spec: map[string]any{"Image": "busybox"}, wantHost: "h1"},
		{name: "image only on h2", spec: map[string]any{"Image": "postgres"}, wantHost: "h2"},
		{name: "image only on h1 by tag", spec: map[string]any{"Image": "redis:latest"}, wantHost: "h1"},
		{name: "named volume bind", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Binds": []string{"data:/data"}}}, wantHost: "h2"},
		{name: "volume mount", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"Mounts": []map[string]any{{"Type": "volume", "Source": "data", "Target": "/data"}}}}, wantHost: "h2"},
		{name: "bind of a host path does not pin", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Binds": []string{"/tmp:/tmp"}}}, wantHost: "h1"},
		{name: "network mode", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"NetworkMode": "backend"}}, wantHost: "h2"},
		{name: "endpoints config", spec: map[string]any{"Image": "busybox", "NetworkingConfig": map[string]any{
			"EndpointsConfig": map[string]any{"backend": map[string]any{}}}}, wantHost: "h2"},
		{name: "volumes-from", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"VolumesFrom": []string{"src:ro"}}}, wantHost: "h2"},
		{name: "link", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Links": []string{"src:db"}}}, wantHost: "h2"},
		{name: "link with slashes", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Links": []string{"/src:/me/db"}}}, wantHost: "h2"},
		{name: "container network mode", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"NetworkMode": "container:src"}}, wantHost: "h2"},
		{name: "container pid mode", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"PidMode": "container:src"}}, wantHost: "h2"},
		{name: "volume and link on one host", spec: map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"Binds": []string{"data:/data"}, "Links": []string{"src:db"}}}, wantHost: "h2"},
		{name: "user labels kept", spec: map[string]any{"Image": "busybox", "Labels": map[string]string{"tier": "web"}}, wantHost: "h1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Keep h1 the emptier host, so a pin to h2 is what puts a
			// container there.
			for len(e.fakes["h1"].IDs()) >= len(e.fakes["h2"].IDs()) {
				e.waitCached(e.fakes["h2"].addContainer("", "", "busybox", "created", nil))
			}
			id := e.create("", tt.spec)
			if got := e.owner(id); got != tt.wantHost {
				t.Fatalf("placed on %q, want %q", got, tt.wantHost)
			}
			c, _ := e.fakes[tt.wantHost].Container(id)
			if c.Labels[proxy.HostLabel] != tt.wantHost {
				t.Errorf("label %s = %q, want %q", proxy.HostLabel, c.Labels[proxy.HostLabel], tt.wantHost)
			}
			if want, ok := tt.spec["Labels"].(map[string]string); ok {
				for k, v := range want {
					if c.Labels[k] != v {
						t.Errorf("label %s = %q, want %q (labels %v)", k, c.Labels[k], v, c.Labels)
					}
				}
			}
			// The cache knows the container before the client does.
			got := e.list("?all=1&filters=" + filtersQuery(map[string][]string{"id": {id}}))
			if len(got) != 1 || got[0].Id != id {
				t.Errorf("list right after create: %v, want %s", ids(got), id)
			}
		})
	}
}

func TestCreateRefused(t *testing.T) {
	e, src := placementEnv(t)
	huge := `{"Image":"busybox","Env":["X=` + strings.Repeat("x", 1<<20) + `"]}`
	tests := []struct {
		name       string
		path       string
		body       any
		wantStatus int
		wantMsg    string // exact, or prefix when it ends with "…"
	}{
		{name: "image nowhere", path: "/containers/create", body: map[string]any{"Image": "nope:1"},
			wantStatus: 404, wantMsg: "No such image: nope:1"},
		{name: "pinned host lacks the image", path: "/containers/create", body: map[string]any{"Image": "redis", "HostConfig": map[string]any{"Binds": []string{"data:/d"}}},
			wantStatus: 404, wantMsg: "No such image: redis"},
		{name: "conflicting pins", path: "/containers/create", body: map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"Binds": []string{"vol1:/a"}, "VolumesFrom": []string{"src"}}},
			wantStatus: 409, wantMsg: "no host fits…"},
		{name: "conflicting network and volume", path: "/containers/create", body: map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"Binds": []string{"vol1:/a"}, "NetworkMode": "backend"}},
			wantStatus: 409, wantMsg: "no host fits…"},
		{name: "unknown network", path: "/containers/create", body: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"NetworkMode": "nonet"}},
			wantStatus: 404, wantMsg: "network nonet not found"},
		{name: "volumes-from unknown container", path: "/containers/create", body: map[string]any{"Image": "busybox", "HostConfig": map[string]any{"VolumesFrom": []string{"ghost"}}},
			wantStatus: 404, wantMsg: "No such container: ghost"},
		{name: "invalid name", path: "/containers/create?name=a%20b", body: map[string]any{"Image": "busybox"},
			wantStatus: 400, wantMsg: "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "name starting with a dash", path: "/containers/create?name=-x", body: map[string]any{"Image": "busybox"},
			wantStatus: 400, wantMsg: "Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "one-character name, as the engine refuses", path: "/containers/create?name=x", body: map[string]any{"Image": "busybox"},
			wantStatus: 400, wantMsg: "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "malformed JSON", path: "/containers/create", body: `{"Image": "busybox"`,
			wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "wrong type", path: "/containers/create", body: `{"Image": 5}`,
			wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "wrong nested type", path: "/containers/create", body: `{"Image": "busybox", "HostConfig": {"Binds": "data:/d"}}`,
			wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "empty body", path: "/containers/create", body: "",
			wantStatus: 400, wantMsg: "config cannot be empty in order to create a container"},
		{name: "oversized body", path: "/containers/create", body: huge,
			wantStatus: 413, wantMsg: "request body is larger than 1048576 bytes…"},
		{name: "too new a version", path: "/v1.99/containers/create", body: map[string]any{"Image": "busybox"},
			wantStatus: 400, wantMsg: "client version 1.99 is too new. Maximum supported API version is 1.41"},
		{name: "name taken behind the fleet's back", path: "/containers/create?name=src", body: map[string]any{"Image": "busybox"},
			wantStatus: 409, wantMsg: fmt.Sprintf("Conflict. The container name \"/src\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", src)},
		{name: "name taken, given with a slash", path: "/containers/create?name=/src", body: map[string]any{"Image": "busybox"},
			wantStatus: 409, wantMsg: fmt.Sprintf("Conflict. The container name \"/src\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", src)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.createCalls()
			r := e.do("POST", tt.path, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status: %s, want %d", r, tt.wantStatus)
			}
			if p, ok := strings.CutSuffix(tt.wantMsg, "…"); ok {
				if !strings.HasPrefix(r.message(), p) {
					t.Errorf("message %q, want prefix %q", r.message(), p)
				}
			} else if r.message() != tt.wantMsg {
				t.Errorf("message %q, want %q", r.message(), tt.wantMsg)
			}
			if n := e.createCalls(); n != before {
				t.Errorf("a create reached an engine (%d calls, was %d)", n, before)
			}
		})
	}
	if got := len(e.fleet.Containers()); got != 1 {
		t.Errorf("fleet has %d containers after refused creates, want only src", got)
	}
}

func TestCreateSpreads(t *testing.T) {
	e := newEnv(t,
		fakeOpts{name: "h1", images: []string{"busybox"}},
		fakeOpts{name: "h2", images: []string{"busybox"}},
		fakeOpts{name: "h3", images: []string{"busybox"}},
	)
	count := map[string]int{}
	for i := range 9 {
		id := e.create(fmt.Sprintf("c%d", i), map[string]any{"Image": "busybox"})
		host := e.owner(id)
		c, _ := e.fakes[host].Container(id)
		if c.Labels[proxy.HostLabel] != host {
			t.Errorf("%s on %s labelled %q", id, host, c.Labels[proxy.HostLabel])
		}
		count[host]++
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		if count[h] != 3 {
			t.Errorf("spread: %v, want 3 on each host", count)
			break
		}
	}
}

func TestCreateNameConflict(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	id := e.create("web", map[string]any{"Image": "busybox"})
	want := fmt.Sprintf("Conflict. The container name \"/web\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", id)
	for _, name := range []string{"web", "/web"} {
		r := e.do("POST", "/containers/create?name="+url.QueryEscape(name), map[string]any{"Image": "busybox"})
		if r.status != http.StatusConflict || r.message() != want {
			t.Errorf("second create %q: %s, want 409 %q", name, r, want)
		}
	}

	// Concurrent creates of one new name: exactly one wins.
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := doOn(t, e.ts.URL, "POST", "/containers/create?name=race", map[string]any{"Image": "busybox"})
			statuses[i] = r.status
		}()
	}
	wg.Wait()
	created, conflicts := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Errorf("concurrent creates: %v, want one 201 and %d 409", statuses, n-1)
	}
}

// --- list and inspect --------------------------------------------------------

func TestListMergedAndFiltered(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox", "redis"}}, fakeOpts{name: "h2", images: []string{"busybox", "redis"}})
	var made []string // in creation order
	for i, tier := range []string{"web", "db", "web", "db"} {
		made = append(made, e.create(fmt.Sprintf("c%d", i), map[string]any{"Image": "busybox", "Labels": map[string]string{"tier": tier}}))
	}
	for _, id := range made[:3] {
		if r := e.do("POST", "/containers/"+id[:12]+"/start", nil); r.status != http.StatusNoContent {
			t.Fatalf("start: %s", r)
		}
	}
	host := map[string]string{}
	for _, id := range made {
		host[id] = e.owner(id)
	}
	if host[made[0]] == host[made[1]] {
		t.Fatalf("spread put c0 and c1 both on %s", host[made[0]])
	}
	newestFirst := slices.Clone(made)
	slices.Reverse(newestFirst)
	on := func(h string, from []string) []string {
		var out []string
		for _, id := range from {
			if host[id] == h {
				out = append(out, id)
			}
		}
		return out
	}
	tests := []struct {
		name, query string
		want        []string
	}{
		{name: "all, newest first", query: "?all=1", want: newestFirst},
		{name: "running only", query: "", want: []string{made[2], made[1], made[0]}},
		{name: "versioned path", query: "?all=true", want: newestFirst},
		{name: "node filter", query: "?all=1&filters=" + filtersQuery(map[string][]string{"node": {"h2"}}), want: on("h2", newestFirst)},
		{name: "label filter", query: "?all=1&filters=" + filtersQuery(map[string][]string{"label": {"tier=web"}}), want: []string{made[2], made[0]}},
		{name: "label key filter", query: "?all=1&filters=" + filtersQuery(map[string][]string{"label": {"tier"}}), want: newestFirst},
		{name: "host label filter", query: "?all=1&filters=" + filtersQuery(map[string][]string{"label": {proxy.HostLabel + "=h1"}}), want: on("h1", newestFirst)},
		{name: "node and label", query: "?all=1&filters=" + filtersQuery(map[string][]string{"node": {"h1"}, "label": {"tier=db"}}), want: on("h1", []string{made[3], made[1]})},
		{name: "name filter", query: "?all=1&filters=" + filtersQuery(map[string][]string{"name": {"c3"}}), want: []string{made[3]}},
		{name: "limit", query: "?limit=2", want: newestFirst[:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.query
			got := e.list(path)
			if tt.name == "versioned path" {
				r := e.do("GET", "/v1.41/containers/json"+tt.query, nil)
				got = nil
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("got %v\nwant %v", ids(got), tt.want)
			}
			for _, l := range got {
				if len(l.Names) != 1 || strings.Count(l.Names[0], "/") != 1 {
					t.Errorf("names %q: want the engine's own /name", l.Names)
				}
			}
		})
	}
	if r := e.do("GET", "/containers/json?filters="+filtersQuery(map[string][]string{"bogus": {"x"}}), nil); r.status != 400 {
		t.Errorf("bad filter: %s, want 400", r)
	}
	// size=1 asks the engines, which alone can measure.
	if got := ids(e.list("?all=1&size=1")); !slices.Equal(got, newestFirst) {
		t.Errorf("size=1: %v, want %v", got, newestFirst)
	}
	for name, f := range e.fakes {
		sized := slices.ContainsFunc(f.Calls("GET", "/containers/json"), func(c fakeengine.Call) bool { return c.Query.Get("size") == "1" })
		if !sized {
			t.Errorf("%s was not asked for sizes", name)
		}
	}
	// ancestor resolves the image on each container's host.
	r := e.create("rr", map[string]any{"Image": "redis"})
	if got := ids(e.list("?all=1&filters=" + filtersQuery(map[string][]string{"ancestor": {"redis"}}))); !slices.Equal(got, []string{r}) {
		t.Errorf("ancestor=redis: %v, want [%s]", got, r)
	}
	if got := ids(e.list("?all=1&filters=" + filtersQuery(map[string][]string{"ancestor": {"busybox:latest"}}))); !slices.Equal(got, newestFirst) {
		t.Errorf("ancestor=busybox:latest: %v, want %v", got, newestFirst)
	}
}

func TestInspectAddsNode(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}, ncpu: 8, labels: []string{"zone=b"}})
	id := e.fakes["h2"].addContainer("", "web", "busybox", "running", nil)
	e.waitCached(id)
	for _, ref := range []string{"web", "/web", id, id[:12], id[:5]} {
		t.Run(ref, func(t *testing.T) {
			r := e.do("GET", "/v1.41/containers/"+url.PathEscape(ref)+"/json", nil)
			if r.status != http.StatusOK {
				t.Fatalf("inspect: %s", r)
			}
			var in struct {
				Id, Name string
				Node     struct {
					Name, Addr, IP string
					Cpus           int
					Labels         map[string]string
				}
			}
			if err := json.Unmarshal(r.body, &in); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if in.Id != id || in.Name != "/web" {
				t.Errorf("Id %q Name %q, want %q /web", in.Id, in.Name, id)
			}
			if in.Node.Name != "h2" || in.Node.Addr != e.fakes["h2"].Addr || in.Node.IP != "127.0.0.1" ||
				in.Node.Cpus != 8 || in.Node.Labels["zone"] != "b" {
				t.Errorf("Node = %+v, want h2 at %s", in.Node, e.fakes["h2"].Addr)
			}
			if !e.fakes["h2"].Called("GET", "/containers/"+id+"/json") {
				t.Errorf("h2 was not asked by full ID")
			}
		})
	}
	r := e.do("GET", "/containers/ghost/json", nil)
	if r.status != http.StatusNotFound || r.message() != "No such container: ghost" {
		t.Errorf("unknown: %s", r)
	}
}

// --- container-scoped calls --------------------------------------------------

func TestContainerCallsRouted(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	alpha := e.fakes["h1"].addContainer("", "alpha", "busybox", "created", nil)
	beta := e.fakes["h2"].addContainer("", "beta", "busybox", "created", nil)
	if err := e.fakes["h2"].WriteLog(beta, fakeengine.Stdout, "log of beta\n"); err != nil {
		t.Fatal(err)
	}
	e.waitCached(alpha)
	e.waitCached(beta)
	state := func(id string) string {
		for _, c := range e.fleet.Containers() {
			if c.ID() == id {
				return string(c.Summary.State)
			}
		}
		return "gone"
	}
	// Run in order: each step builds on the one before.
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantHost           string // the fake that must have seen wantCall
		wantCall           string // engine path with the full ID
		wantState          string // cache state of the container right after ("" = skip)
		id                 string
		wantBody           string
	}{
		{name: "start by name", method: "POST", path: "/containers/alpha/start", wantStatus: 204,
			wantHost: "h1", wantCall: "/containers/" + alpha + "/start", wantState: "running", id: alpha},
		{name: "start by short ID", method: "POST", path: "/v1.41/containers/" + beta[:12] + "/start", wantStatus: 204,
			wantHost: "h2", wantCall: "/containers/" + beta + "/start", wantState: "running", id: beta},
		{name: "start again", method: "POST", path: "/containers/alpha/start", wantStatus: 304, id: alpha, wantState: "running"},
		{name: "logs by name", method: "GET", path: "/containers/beta/logs?stdout=1", wantStatus: 200,
			wantHost: "h2", wantCall: "/containers/" + beta + "/logs", wantBody: string(fakeengine.MuxFrame(1, "log of beta\n"))},
		{name: "stop by full ID", method: "POST", path: "/containers/" + alpha + "/stop", wantStatus: 204,
			wantHost: "h1", wantCall: "/containers/" + alpha + "/stop", wantState: "exited", id: alpha},
		{name: "wait a stopped container", method: "POST", path: "/containers/alpha/wait", wantStatus: 200,
			wantHost: "h1", wantCall: "/containers/" + alpha + "/wait", wantBody: `{"Error":null,"StatusCode":143}` + "\n"},
		{name: "kill by name", method: "POST", path: "/containers/beta/kill", wantStatus: 204,
			wantHost: "h2", wantCall: "/containers/" + beta + "/kill", wantState: "exited", id: beta},
		{name: "remove by short ID", method: "DELETE", path: "/containers/" + alpha[:7], wantStatus: 204,
			wantHost: "h1", wantCall: "/containers/" + alpha, wantState: "gone", id: alpha},
		{name: "removed is gone", method: "POST", path: "/containers/alpha/start", wantStatus: 404, wantBody: `{"message":"No such container: alpha"}` + "\n"},
		{name: "remove by name", method: "DELETE", path: "/containers/beta?force=1", wantStatus: 204,
			wantHost: "h2", wantCall: "/containers/" + beta, wantState: "gone", id: beta},
		{name: "unknown", method: "POST", path: "/containers/ghost/stop", wantStatus: 404, wantBody: `{"message":"No such container: ghost"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("status: %s, want %d", r, tt.wantStatus)
			}
			if tt.wantCall != "" {
				if !e.fakes[tt.wantHost].Called(tt.method, tt.wantCall) {
					t.Errorf("%s did not see %s %s", tt.wantHost, tt.method, tt.wantCall)
				}
				for name, f := range e.fakes {
					if name != tt.wantHost && f.Called(tt.method, tt.wantCall) {
						t.Errorf("%s saw %s %s too", name, tt.method, tt.wantCall)
					}
				}
			}
			if tt.wantState != "" {
				if got := state(tt.id); got != tt.wantState {
					t.Errorf("cache state right after: %q, want %q", got, tt.wantState)
				}
			}
			if tt.wantBody != "" && string(r.body) != tt.wantBody {
				t.Errorf("body %q, want %q", r.body, tt.wantBody)
			}
		})
	}
}

// --- exec ----------------------------------------------------------------------

func TestExecRouting(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	worker := e.fakes["h2"].addContainer("", "worker", "busybox", "running", nil)
	idle := e.fakes["h1"].addContainer("", "idle", "busybox", "created", nil)
	e.waitCached(worker)
	e.waitCached(idle)

	r := e.do("POST", "/v1.41/containers/worker/exec", map[string]any{"Cmd": []string{"cat"}, "AttachStdin": true, "AttachStdout": true, "Tty": true})
	if r.status != http.StatusCreated {
		t.Fatalf("exec create: %s", r)
	}
	var created struct{ Id string }
	_ = json.Unmarshal(r.body, &created)
	execID := created.Id
	if !e.fakes["h2"].Called("POST", "/containers/"+worker+"/exec") {
		t.Fatalf("h2 did not see the exec create by full ID")
	}

	fresh := e.newServer()
	tests := []struct {
		name, base, method, path string
		body                     any
		wantStatus               int
		wantMsg                  string
	}{
		{name: "inspect", base: e.ts.URL, method: "GET", path: "/exec/" + execID + "/json", wantStatus: 200},
		{name: "resize", base: e.ts.URL, method: "POST", path: "/v1.41/exec/" + execID + "/resize?h=40&w=80", wantStatus: 200},
		{name: "inspect on a proxy that forgot", base: fresh.URL, method: "GET", path: "/v1.41/exec/" + execID + "/json", wantStatus: 200},
		{name: "detached start on a proxy that forgot", base: fresh.URL, method: "POST", path: "/exec/" + execID + "/start", body: map[string]any{"Detach": true}, wantStatus: 200},
		{name: "unknown exec", base: e.ts.URL, method: "GET", path: "/exec/nope/json", wantStatus: 404, wantMsg: "No such exec instance: nope"},
		{name: "unknown exec start", base: fresh.URL, method: "POST", path: "/exec/nope/start", body: map[string]any{"Detach": true}, wantStatus: 404, wantMsg: "No such exec instance: nope"},
		{name: "exec in a stopped container", base: e.ts.URL, method: "POST", path: "/containers/idle/exec", body: map[string]any{"Cmd": []string{"sh"}},
			wantStatus: 409, wantMsg: "Container " + idle + " is not running"},
		{name: "exec with a bad body", base: e.ts.URL, method: "POST", path: "/containers/worker/exec", body: `{"Cmd":`, wantStatus: 400, wantMsg: "invalid JSON…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doOn(t, tt.base, tt.method, tt.path, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status: %s, want %d", r, tt.wantStatus)
			}
			if p, ok := strings.CutSuffix(tt.wantMsg, "…"); ok {
				if !strings.HasPrefix(r.message(), p) {
					t.Errorf("message %q, want prefix %q", r.message(), p)
				}
			} else if tt.wantMsg != "" && r.message() != tt.wantMsg {
				t.Errorf("message %q, want %q", r.message(), tt.wantMsg)
			}
			if tt.wantStatus == 200 && tt.method == "GET" {
				var in struct{ ID, ContainerID string }
				if err := json.Unmarshal(r.body, &in); err != nil || in.ID != execID || in.ContainerID != worker {
					t.Errorf("exec inspect: %s", r.body)
				}
			}
		})
	}
	// An attached start on another proxy that never saw the exec made.
	r = e.do("POST", "/containers/worker/exec", map[string]any{"Cmd": []string{"cat"}, "AttachStdin": true, "AttachStdout": true, "Tty": true})
	var second struct{ Id string }
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &second) != nil {
		t.Fatalf("exec create: %s", r)
	}
	conn, br, resp := rawSession(t, fresh.Listener.Addr().String(), "POST", "/v1.41/exec/"+second.Id+"/start", []byte(`{"Detach":false,"Tty":false}`), true, []byte("hi\n"))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("start on the fresh proxy: %s", resp.Status)
	}
	_ = conn.CloseWrite()
	if out, err := io.ReadAll(br); err != nil || string(out) != "hi\n" {
		t.Errorf("start on the fresh proxy: %q, %v", out, err)
	}
	if !e.fakes["h2"].Called("POST", "/exec/"+second.Id+"/start") {
		t.Errorf("h2 did not see the start")
	}

	if calls := e.fakes["h1"].Calls("POST", "/exec/"+execID); len(calls) > 0 {
		t.Errorf("h1 saw %v", calls)
	}
	if n := len(e.fakes["h2"].Calls("POST", "/exec/"+execID+"/start")); n != 1 {
		t.Errorf("h2 saw %d exec starts, want 1", n)
	}
}

// --- hijacked streams ----------------------------------------------------------

// rawSession sends a request head, its body and early stdin in one write on
// a raw connection and reads the response head.
func rawSession(t *testing.T, addr, method, path string, body []byte, upgrade bool, early []byte) (*net.TCPConn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: clocker\r\nUser-Agent: test\r\n", method, path)
	if len(body) > 0 {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	if upgrade {
		req.WriteString("Connection: Upgrade\r\nUpgrade: tcp\r\n")
	}
	req.WriteString("\r\n")
	req.Write(body)
	req.Write(early)
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response head: %v", err)
	}
	return conn, br, resp
}

func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, buf)
	}
	return string(buf)
}

func TestHijackRoundTrip(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	id := e.fakes["h2"].addTTYContainer("sh", "busybox", "running") // raw streams
	e.waitCached(id)
	newExec := func() string {
		r := e.do("POST", "/containers/sh/exec", map[string]any{"Cmd": []string{"cat"}, "AttachStdin": true, "AttachStdout": true, "Tty": true})
		var out struct{ Id string }
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("exec create: %s", r)
		}
		return out.Id
	}
	startBody := []byte(`{"Detach":false,"Tty":false}`)
	addr := e.ts.Listener.Addr().String()
	tests := []struct {
		name    string
		exec    bool
		upgrade bool
		early   string
	}{
		{name: "attach upgrade", upgrade: true},
		{name: "attach raw stream"},
		{name: "attach upgrade with stdin in the request packet", upgrade: true, early: "early bytes\n"},
		{name: "attach raw stream with stdin in the request packet", early: "early bytes\n"},
		{name: "exec start upgrade", exec: true, upgrade: true},
		{name: "exec start raw stream", exec: true},
		{name: "exec start upgrade with stdin in the request packet", exec: true, upgrade: true, early: "early\x00binary\xff"},
		{name: "exec start raw stream with stdin in the request packet", exec: true, early: "early bytes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, body := "/v1.41/containers/sh/attach?stream=1&stdin=1&stdout=1&stderr=1", []byte(nil)
			wantPath := "/containers/" + id + "/attach"
			if tt.exec {
				ex := newExec()
				path, body = "/v1.41/exec/"+ex+"/start", startBody
				wantPath = "/exec/" + ex + "/start"
			}
			before := len(e.fakes["h2"].Calls("POST", wantPath))
			conn, br, resp := rawSession(t, addr, "POST", path, body, tt.upgrade, []byte(tt.early))
			wantStatus := http.StatusOK
			if tt.upgrade {
				wantStatus = http.StatusSwitchingProtocols
			}
			if resp.StatusCode != wantStatus {
				t.Fatalf("status %s, want %d", resp.Status, wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.raw-stream" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.upgrade && (resp.Header.Get("Upgrade") != "tcp" || !strings.EqualFold(resp.Header.Get("Connection"), "Upgrade")) {
				t.Errorf("upgrade headers: %v", resp.Header)
			}
			if resp.Header.Get("Api-Version") != "1.41" {
				t.Errorf("Api-Version %q", resp.Header.Get("Api-Version"))
			}
			if n := len(e.fakes["h2"].Calls("POST", wantPath)); n != before+1 {
				t.Errorf("h2 saw %d calls of %s, want %d", n, wantPath, before+1)
			}
			if tt.early != "" {
				if got := readN(t, br, len(tt.early)); got != tt.early {
					t.Errorf("early stdin echoed as %q, want %q", got, tt.early)
				}
			}
			// Both ways while stdin is open.
			for _, line := range []string{"one\n", "two\n"} {
				if _, err := conn.Write([]byte(line)); err != nil {
					t.Fatal(err)
				}
				if got := readN(t, br, len(line)); got != line {
					t.Fatalf("echo %q, want %q", got, line)
				}
			}
			// Half-close: stdin ends, output still arrives, then EOF.
			if _, err := conn.Write([]byte("last words\n")); err != nil {
				t.Fatal(err)
			}
			if err := conn.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("read to EOF: %v (got %q)", err, rest)
			}
			if string(rest) != "last words\n" {
				t.Errorf("output after half-close %q, want %q", rest, "last words\n")
			}
		})
	}
}

func TestHijackErrorsAreAnswers(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	tests := []struct {
		name, path string
		wantStatus int
		wantMsg    string
	}{
		{name: "attach unknown container", path: "/containers/ghost/attach?stream=1", wantStatus: 404, wantMsg: "No such container: ghost"},
		{name: "start unknown exec", path: "/exec/ghost/start", wantStatus: 404, wantMsg: "No such exec instance: ghost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, br, resp := rawSession(t, e.ts.Listener.Addr().String(), "POST", tt.path, []byte(`{}`), true, nil)
			body, _ := io.ReadAll(resp.Body)
			_ = br
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %s %s", resp.Status, body)
			}
			var m struct{ Message string }
			_ = json.Unmarshal(body, &m)
			if m.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", m.Message, tt.wantMsg)
			}
		})
	}
}

// --- routes Clocker does not serve -------------------------------------------

func TestUnservedRoutes(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	swarm := "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantMsg            string
	}{
		{name: "unknown route", method: "GET", path: "/nope", wantStatus: 404, wantMsg: "page not found"},
		{name: "unknown versioned route", method: "GET", path: "/v1.41/nope/more", wantStatus: 404, wantMsg: "page not found"},
		{name: "wrong method", method: "DELETE", path: "/_ping", wantStatus: 404, wantMsg: "page not found"},
		{name: "unknown container action", method: "POST", path: "/containers/x/fly", wantStatus: 404, wantMsg: "page not found"},
		{name: "swarm", method: "GET", path: "/swarm", wantStatus: 503, wantMsg: swarm},
		{name: "services", method: "GET", path: "/v1.41/services", wantStatus: 503, wantMsg: swarm},
		{name: "nodes", method: "GET", path: "/nodes", wantStatus: 503, wantMsg: swarm},
		{name: "secrets create", method: "POST", path: "/secrets/create", wantStatus: 503, wantMsg: swarm},
		{name: "image route not served", method: "POST", path: "/images/x/fly", wantStatus: 501, wantMsg: "POST /images/x/fly is not supported by Clocker yet"},
		{name: "versioned volume update", method: "PUT", path: "/v1.41/volumes/x", wantStatus: 501, wantMsg: "PUT /volumes/x is not supported by Clocker yet"},
		{name: "build cancel", method: "POST", path: "/build/cancel", wantStatus: 501, wantMsg: "POST /build/cancel is not supported by Clocker yet"},
		{name: "session (BuildKit)", method: "POST", path: "/session", wantStatus: 501, wantMsg: "POST /session is not supported by Clocker yet"},
		{name: "plugins", method: "GET", path: "/plugins", wantStatus: 501, wantMsg: "plugins are not supported by Clocker: manage them on each host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, nil)
			if r.status != tt.wantStatus || r.message() != tt.wantMsg {
				t.Errorf("got %s, want %d %q", r, tt.wantStatus, tt.wantMsg)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// --- a host that is down -------------------------------------------------------

func TestHostDown(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	a := e.fakes["h1"].addContainer("", "ca", "busybox", "created", nil)
	b := e.fakes["h2"].addContainer("", "cb", "busybox", "running", nil)
	e.waitCached(a)
	e.waitCached(b)
	h2, _ := e.fleet.Host("h2")
	e.fakes["h2"].Close()
	waitFor(t, "h2 unhealthy", func() bool { return !h2.Healthy() })

	tests := []struct {
		name, method, path string
		body               any
		wantStatus         int
		wantHost           string // named in the 503 message
	}{
		{name: "start on the down host", method: "POST", path: "/containers/cb/start", wantStatus: 503, wantHost: "h2"},
		{name: "inspect on the down host", method: "GET", path: "/containers/cb/json", wantStatus: 503, wantHost: "h2"},
		{name: "logs on the down host", method: "GET", path: "/containers/" + b[:12] + "/logs", wantStatus: 503, wantHost: "h2"},
		{name: "remove on the down host", method: "DELETE", path: "/containers/cb", wantStatus: 503, wantHost: "h2"},
		{name: "exec on the down host", method: "POST", path: "/containers/cb/exec", body: map[string]any{"Cmd": []string{"sh"}}, wantStatus: 503, wantHost: "h2"},
		{name: "attach on the down host", method: "POST", path: "/containers/cb/attach?stream=1", wantStatus: 503, wantHost: "h2"},
		{name: "the other host works", method: "POST", path: "/containers/ca/start", wantStatus: 204},
		{name: "inspect on the other host", method: "GET", path: "/containers/ca/json", wantStatus: 200},
		{name: "list answers", method: "GET", path: "/containers/json?all=1", wantStatus: 200},
		{name: "ping answers", method: "GET", path: "/_ping", wantStatus: 200},
		{name: "version answers", method: "GET", path: "/version", wantStatus: 200},
		{name: "info answers", method: "GET", path: "/info", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status: %s, want %d", r, tt.wantStatus)
			}
			if tt.wantHost != "" && !strings.Contains(r.message(), "host "+tt.wantHost) {
				t.Errorf("message %q does not name host %s", r.message(), tt.wantHost)
			}
		})
	}
	// New containers go to the host that answers.
	for range 3 {
		if got := e.owner(e.create("", map[string]any{"Image": "busybox"})); got != "h1" {
			t.Errorf("created on %q while h2 is down", got)
		}
	}
	// info says which host is down.
	var info struct{ SystemStatus [][2]string }
	_ = json.Unmarshal(e.do("GET", "/info", nil).body, &info)
	var states []string
	for _, kv := range info.SystemStatus {
		if kv[0] == "  └ Status" {
			states = append(states, kv[1])
		}
	}
	if !slices.Equal(states, []string{"Healthy", "Unhealthy"}) {
		t.Errorf("host states in info: %v", states)
	}
	e.waitMetrics(`clocker_host_healthy{host="h1"} 1`, `clocker_host_healthy{host="h2"} 0`)
}

// waitMetrics waits until /metrics shows every line of want (host gauges
// are set just after the state the fleet reports).
func (e *env) waitMetrics(want ...string) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("metrics %q", want), func() bool {
		m := string(e.do("GET", "/metrics", nil).body)
		for _, w := range want {
			if !strings.Contains(m, w) {
				return false
			}
		}
		return true
	})
}

// --- metrics ---------------------------------------------------------------------

func TestMetrics(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	e.do("GET", "/_ping", nil)
	e.do("GET", "/v1.41/_ping", nil)
	e.do("GET", "/containers/ghost/json", nil)
	r := e.do("GET", "/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %s", r)
	}
	body := string(r.body)
	for _, want := range []string{
		`clocker_api_requests_total{code="200",method="GET",route="/_ping"} 2`,
		`clocker_api_requests_total{code="404",method="GET",route="/containers/{name}/json"} 1`,
		`clocker_api_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.waitMetrics(`clocker_host_healthy{host="h1"} 1`, `clocker_host_healthy{host="h2"} 1`)
	if strings.Contains(body, "ghost") {
		t.Errorf("metrics carry a container reference: routes must be templates")
	}
}

// wait answers its headers at once and its body when the container stops;
// the cache already knows the exit when the body arrives.
func TestWaitStreamsAndRefreshes(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	id := e.fakes["h1"].addContainer("", "sleeper", "busybox", "running", nil)
	e.waitCached(id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/v1.41/containers/sleeper/wait?condition=not-running", nil)
	resp, err := http.DefaultClient.Do(req) // returns with the headers
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("wait: %s", resp.Status)
	}
	// Stop it behind the proxy's back: the body follows.
	if err := e.fakes["h1"].Exit(id, 3); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"Error":null,"StatusCode":3}`+"\n" {
		t.Errorf("wait body %q", body)
	}
	got := e.list("?all=1&filters=" + filtersQuery(map[string][]string{"id": {id}}))
	if len(got) != 1 || got[0].State != "exited" {
		t.Errorf("cache right after wait: %+v, want exited", got)
	}
}

// State-changing calls check their JSON body before it reaches a host.
func TestChangeBodyChecked(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	id := e.fakes["h1"].addContainer("", "cc", "busybox", "created", nil)
	e.waitCached(id)
	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{name: "malformed", body: `{"Memory":`, wantStatus: 400},
		{name: "oversized", body: `{"X":"` + strings.Repeat("x", 1<<20) + `"}`, wantStatus: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do("POST", "/containers/cc/update", tt.body); r.status != tt.wantStatus {
				t.Errorf("update: %s, want %d", r, tt.wantStatus)
			}
			if e.fakes["h1"].Called("POST", "/containers/"+id+"/update") {
				t.Errorf("the bad body reached the engine")
			}
		})
	}
}

// NewServer documents that its registry may be nil.
func TestNewServerNilRegistry(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	strategy, _ := scheduler.New("spread")
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("NewServer(…, nil) panicked: %v", p)
		}
	}()
	s := proxy.NewServer(e.fleet, strategy, e.log, 1<<20, nil)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if r := doOn(t, ts.URL, "GET", "/_ping", nil); r.status != 200 {
		t.Errorf("ping: %s", r)
	}
	if r := doOn(t, ts.URL, "GET", "/metrics", nil); r.status != 404 {
		t.Errorf("metrics without a registry: %s, want 404", r)
	}
}

// The output may end while stdin is still open (a command that exits
// without reading): the client gets the output and EOF at once.
func TestHijackOutputEndsFirst(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	id := e.fakes["h1"].addTTYContainer("c1", "busybox", "running") // raw streams
	e.waitCached(id)
	for _, upgrade := range []bool{true, false} {
		t.Run(fmt.Sprintf("upgrade=%v", upgrade), func(t *testing.T) {
			r := e.do("POST", "/containers/c1/exec", map[string]any{"Cmd": []string{"echo", "hello", "world"}, "AttachStdin": true, "AttachStdout": true, "Tty": true})
			var ex struct{ Id string }
			if r.status != http.StatusCreated || json.Unmarshal(r.body, &ex) != nil {
				t.Fatalf("exec create: %s", r)
			}
			conn, br, resp := rawSession(t, e.ts.Listener.Addr().String(), "POST", "/exec/"+ex.Id+"/start", []byte(`{"Tty":false}`), upgrade, nil)
			if resp.StatusCode/100 != 1 && resp.StatusCode != 200 {
				t.Fatalf("status %s", resp.Status)
			}
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			out, err := io.ReadAll(br) // stdin still open
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, out)
			}
			if string(out) != "hello world\n" {
				t.Errorf("output %q", out)
			}
		})
	}
}

// A large stdin round-trips while both directions are busy.
func TestHijackLargePayload(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	id := e.fakes["h1"].addTTYContainer("c1", "busybox", "running") // raw streams
	e.waitCached(id)
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	conn, br, resp := rawSession(t, e.ts.Listener.Addr().String(), "POST", "/containers/c1/attach?stream=1&stdin=1&stdout=1", nil, true, payload[:1000])
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %s", resp.Status)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload[1000:])
		if err == nil {
			err = conn.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read: %v after %d bytes", err, len(got))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("round trip: got %d bytes, want %d identical", len(got), len(payload))
	}
}
