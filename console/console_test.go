package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/console"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

// env is a front door over fake engines with the console mounted, as
// serve wires it.
type env struct {
	t       testing.TB
	fakes   map[string]*fakeengine.Server
	engines map[string]*fakeengine.Engine
	fleet   *hosts.Fleet
	api     *client.Client
	base    string
	console *console.Console
}

func newEnv(t testing.TB, engines ...fakeengine.Options) *env {
	t.Helper()
	return newEnvWith(t, nil, engines...)
}

// newEnvWith is newEnv with the console's options changed by tweak
// (simulated hosts, for one).
func newEnvWith(t testing.TB, tweak func(*console.Options), engines ...fakeengine.Options) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e := &env{t: t, fakes: map[string]*fakeengine.Server{}, engines: map[string]*fakeengine.Engine{}}
	reg := prometheus.NewRegistry()
	e.fleet = hosts.NewFleet(nil, log, hosts.NewMetrics(reg))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, o := range engines {
		fe := fakeengine.New(o)
		s, err := fakeengine.Listen(fe, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		e.fakes[o.Name], e.engines[o.Name] = s, fe
		if _, err := e.fleet.Add(ctx, hosts.Record{Name: o.Name, URL: s.URL}, false); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.fleet.Close)
	if err := e.fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(e.fleet, strategy, log, 1<<20, reg)
	inproc, err := proxy.NewInProcess()
	if err != nil {
		t.Fatal(err)
	}
	e.api = inproc.Client()
	o := console.Options{Docker: e.api, Hosts: srv.FleetHosts, Placement: srv.PlacementOf, Gatherer: reg, MaxPerHost: 10, Log: log}
	if tweak != nil {
		tweak(&o)
	}
	e.console = console.New(o)
	srv.Mount(console.Prefix, e.console.Handler())
	ts := httptest.NewServer(srv.Handler())
	go func() { _ = ts.Config.Serve(inproc.Listener()) }()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { inproc.Close() })
	e.base = ts.URL
	return e
}

func twoHosts(t *testing.T) *env {
	return newEnv(t,
		fakeengine.Options{Name: "h1", Labels: []string{"zone=z1"}, Images: []string{"busybox"}, EventHistory: 256},
		fakeengine.Options{Name: "h2", Labels: []string{"zone=z2", "containerslots=3"}, Images: []string{"busybox"}, EventHistory: 256})
}

func (e *env) do(method, path, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	st, b := e.do("GET", path, "")
	if st != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, st, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

type event struct {
	name string
	data string
}

// stream opens a server-sent event stream; its events arrive on the
// channel until the test ends.
func (e *env) stream(path string) <-chan event {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	return e.streamCtx(ctx, path)
}

// streamCtx is stream until ctx ends.
func (e *env) streamCtx(ctx context.Context, path string) <-chan event {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, ct)
	}
	out := make(chan event, 256)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20) // a thousand host cards are one line
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "":
				out <- ev
				ev = event{}
			}
		}
	}()
	return out
}

// next waits for the first event for which match is true.
func next(t testing.TB, ch <-chan event, within time.Duration, what string, match func(event) bool) event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, within)
		}
	}
}

func TestPagesAndAssets(t *testing.T) {
	e := twoHosts(t)
	for _, tt := range []struct {
		path, want string
		status     int
	}{
		{"/ui/", `<script src="/ui/assets/console.js">`, 200},
		{"/ui/assets/console.js", "function renderFleet", 200},
		{"/ui/assets/console.css", ".card.unhealthy", 200},
		{"/ui/assets/nope.js", "404", 404},
		{"/ui/api/nope", "no GET /ui/api/nope in the console", 404},
	} {
		st, b := e.do("GET", tt.path, "")
		if st != tt.status || !strings.Contains(string(b), tt.want) {
			t.Errorf("GET %s: %d %.200s, want %d with %q", tt.path, st, b, tt.status, tt.want)
		}
	}
	// The Docker routes are still the front door's.
	if st, b := e.do("GET", "/v1.41/containers/json", ""); st != 200 {
		t.Errorf("GET /containers/json beside the console: %d %s", st, b)
	}
}

func TestHostCards(t *testing.T) {
	e := twoHosts(t)
	var hs []console.Host
	e.getJSON("/ui/api/hosts", &hs)
	if len(hs) != 2 || hs[0].Name != "h1" || hs[0].Zone != "z1" || hs[1].Zone != "z2" {
		t.Fatalf("hosts %+v, want h1 in z1 then h2 in z2", hs)
	}
	if hs[0].Slots != 10 || hs[1].Slots != 3 {
		t.Errorf("slots %d, %d: want the fleet's 10, and 3 from h2's containerslots", hs[0].Slots, hs[1].Slots)
	}
	if hs[0].State != "healthy" || hs[0].NCPU == 0 || hs[0].MemTotal == 0 {
		t.Errorf("h1: %+v", hs[0])
	}
}

// A create through the front door shows on the event stream with its
// host, in the list, and on its page with the decision that placed it; a
// removal follows.
func TestContainersLive(t *testing.T) {
	e := twoHosts(t)
	events := e.stream("/ui/api/events")
	first := next(t, events, 30*time.Second, "host cards", func(ev event) bool { return ev.name == "hosts" })
	if !strings.Contains(first.data, `"Name":"h1"`) {
		t.Fatalf("first hosts event: %s", first.data)
	}
	ctx := context.Background()
	created, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "web", Config: &container.Config{Image: "busybox", Env: []string{"constraint:zone==z2"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, events, 30*time.Second, "the create", func(ev event) bool { return ev.name == "container" && strings.Contains(ev.data, `"create"`) })
	var ce console.ContainerEvent
	if err := json.Unmarshal([]byte(ev.data), &ce); err != nil {
		t.Fatal(err)
	}
	if ce.ID != created.ID || ce.Name != "web" || ce.Host != "h2" || ce.Image != "busybox" {
		t.Errorf("create event %+v, want web on h2", ce)
	}
	var list []console.Container
	e.getJSON("/ui/api/containers?q=WEB", &list)
	if len(list) != 1 || list[0].ID != created.ID || list[0].Host != "h2" || list[0].State != "created" {
		t.Fatalf("list %+v", list)
	}
	var page console.ContainerPage
	e.getJSON("/ui/api/containers/web", &page)
	if page.ID != created.ID || page.Host != "h2" || page.Placement == nil {
		t.Fatalf("page %+v", page)
	}
	d := page.Placement.Decision
	if len(d.Hosts) != 1 || d.Hosts[0].Host != "h2" || len(d.Rejected) != 1 || d.Rejected[0].Host != "h1" {
		t.Errorf("decision %+v, want h2 ranked and h1 turned down", d)
	}
	if _, err := e.api.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	next(t, events, 30*time.Second, "the removal", func(ev event) bool {
		return ev.name == "container" && strings.Contains(ev.data, `"destroy"`) && strings.Contains(ev.data, created.ID)
	})
	if st, b := e.do("GET", "/ui/api/containers/web", ""); st != 404 {
		t.Errorf("the page of a removed container: %d %s", st, b)
	}
}

func TestHostDownOnStream(t *testing.T) {
	e := twoHosts(t)
	events := e.stream("/ui/api/events")
	next(t, events, 30*time.Second, "host cards", func(ev event) bool { return ev.name == "hosts" })
	e.fakes["h1"].Close()
	ev := next(t, events, 10*time.Second, "h1 unhealthy", func(ev event) bool {
		var hs []console.Host
		_ = json.Unmarshal([]byte(ev.data), &hs)
		return ev.name == "hosts" && len(hs) == 2 && hs[0].Name == "h1" && hs[0].State == "unhealthy"
	})
	if !strings.Contains(ev.data, `"State":"healthy"`) {
		t.Errorf("h2 is not healthy in %s", ev.data)
	}
}

func TestLogsStream(t *testing.T) {
	e := twoHosts(t)
	id, err := e.engines["h1"].Create(fakeengine.Spec{Name: "talk", Image: "busybox", Running: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engines["h1"].WriteLog(id, fakeengine.Stdout, "hello\n"); err != nil {
		t.Fatal(err)
	}
	// The fleet's cache learns of the container from the engine's events.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, _ := e.do("GET", "/ui/api/containers/talk", ""); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("talk never resolved")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := e.stream("/ui/api/containers/talk/logs")
	next(t, lines, 30*time.Second, "the first line", func(ev event) bool { return ev.name == "line" && ev.data == `{"Stream":"stdout","Text":"hello"}` })
	if err := e.engines["h1"].WriteLog(id, fakeengine.Stderr, "oops\n"); err != nil {
		t.Fatal(err)
	}
	next(t, lines, 30*time.Second, "a followed stderr line", func(ev event) bool { return ev.name == "line" && ev.data == `{"Stream":"stderr","Text":"oops"}` })
	if st, b := e.do("GET", "/ui/api/containers/nosuch/logs", ""); st != 404 || !strings.Contains(string(b), "nosuch") {
		t.Errorf("logs of no container: %d %s", st, b)
	}
}

func TestBadInput(t *testing.T) {
	e := twoHosts(t)
	for _, tt := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"GET", "/ui/api/containers?offset=-1", "", 400, `offset "-1"`},
		{"GET", "/ui/api/containers?limit=0", "", 400, `limit "0"`},
		{"GET", "/ui/api/containers/nosuch", "", 404, "nosuch"},
		{"POST", "/ui/api/runline", `not json`, 400, `{"Line": "docker run …"}`},
		{"POST", "/ui/api/runline", `{"Line": "docker run --frobnicate busybox"}`, 400, "unknown or unsupported option --frobnicate"},
		{"POST", "/ui/api/runline", `{"Line": "docker run -m lots busybox"}`, 400, `-m "lots"`},
		{"POST", "/ui/api/runline", `{"Line": "docker run -d"}`, 400, "no image"},
		{"POST", "/ui/api/runline", `{"Line": "docker run 'busybox"}`, 400, "unterminated ' quote"},
		{"DELETE", "/ui/api/hosts", "", 404, "no DELETE /ui/api/hosts"},
	} {
		st, b := e.do(tt.method, tt.path, tt.body)
		var m struct{ Message string }
		_ = json.Unmarshal(b, &m)
		if st != tt.status || !strings.Contains(m.Message, tt.msg) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tt.method, tt.path, tt.body, st, b, tt.status, tt.msg)
		}
	}
	var list []console.Container
	e.getJSON("/ui/api/containers", &list)
	if len(list) != 0 {
		t.Errorf("containers after bad input: %+v", list)
	}
}

// The run line the dry run posts is what the CLI would send, and the
// dry run ranks the hosts from it.
func TestRunLineDryRun(t *testing.T) {
	e := twoHosts(t)
	st, b := e.do("POST", "/ui/api/runline", `{"Line": "docker run -d --name web1 -m 64m --cpus 0.5 -e constraint:zone==z1 -l a=b -p 8080:80 busybox sleep 1d"}`)
	if st != 200 {
		t.Fatalf("runline: %d %s", st, b)
	}
	var rl console.RunLine
	if err := json.Unmarshal(b, &rl); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(rl.Body)
	st, b = e.do("POST", "/v1/fleet/placement?name="+rl.Name, string(body))
	var d struct {
		Host     string
		Rejected []struct{ Host, Filter string }
	}
	if err := json.Unmarshal(b, &d); st != 200 || err != nil {
		t.Fatalf("dry run: %d %s", st, b)
	}
	if d.Host != "h1" || len(d.Rejected) != 1 || d.Rejected[0].Host != "h2" {
		t.Errorf("dry run %s, want h1 with h2 turned down", b)
	}
}

func TestTrends(t *testing.T) {
	e := twoHosts(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.console.Run(ctx) // samples at once
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tr struct {
			Series []console.Series
		}
		e.getJSON("/ui/api/trends", &tr)
		names := map[string]int{}
		for _, s := range tr.Series {
			names[s.Name] = len(s.Points)
		}
		if names["containers:h1"] == 1 && names["healthy hosts"] == 1 {
			for _, s := range tr.Series {
				if s.Name == "healthy hosts" && s.Points[0][1] != 2 {
					t.Errorf("healthy hosts %v, want 2", s.Points)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("series %v", names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
