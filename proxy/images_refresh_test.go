package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

// imgEnv is a proxy in front of internal/fakeengine engines h1, h2, …,
// each counting the requests it serves.
type imgEnv struct {
	t       *testing.T
	fleet   *hosts.Fleet
	engines map[string]*fakeengine.Server
	ts      *httptest.Server
}

func newImgEnv(t *testing.T, n int) *imgEnv {
	t.Helper()
	e := &imgEnv{t: t, engines: map[string]*fakeengine.Server{}}
	log := testLogger()
	e.fleet = hosts.NewFleet(nil, log, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		s, err := fakeengine.Listen(fakeengine.New(fakeengine.Options{Name: name, Images: []string{"busybox"}}), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		e.engines[name] = s
	}
	t.Cleanup(e.fleet.Close) // before the engines close
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		if _, err := e.fleet.Add(ctx, hosts.Record{Name: name, URL: e.engines[name].URL}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(e.fleet, strategy, log, 1<<20, prometheus.NewRegistry())
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	for _, s := range e.engines {
		s.CountRequests()
	}
	return e
}

// do sends a request to the proxy, on node when given, and reads the
// whole answer (a progress stream ends with the operation).
func (e *imgEnv) do(method, path, node string, body []byte) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if node != "" {
		req.Header.Set(proxy.ImageNodeHeader, node)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *imgEnv) lists(name string) int {
	return e.engines[name].Requests()["GET /images/json"]
}

func (e *imgEnv) has(name, ref string) bool {
	h, _ := e.fleet.Host(name)
	has, _ := h.HasImage(ref)
	return has
}

// A docker load of 20 images on one host: once the answer is back the
// host's index holds every image (a create that follows is placed on
// it), the burst of 20 load events costs far fewer than 20 lists, and the
// hosts the load did not touch list nothing.
func TestLoadRefreshesOnlyItsHost(t *testing.T) {
	e := newImgEnv(t, 3)
	const n = 20
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("team/app%d:1", i)
	}
	status, body := e.do("POST", "/v1.41/images/load", "h1", fakeengine.ImageArchive(refs...))
	if status != 200 || strings.Count(body, "Loaded image") != n {
		t.Fatalf("load = %d %s", status, body)
	}
	for _, ref := range refs {
		if !e.has("h1", ref) {
			t.Fatalf("h1's index lacks %s after the load answered", ref)
		}
	}
	for _, name := range []string{"h2", "h3"} {
		if got := e.lists(name); got != 0 {
			t.Errorf("%s (not loaded) listed its images %d times, want 0", name, got)
		}
	}
	// The events are applied after the answer: wait for them to settle
	// (the engine's event stream is drained once a later container event
	// is cached), then count.
	id, err := e.engines["h1"].Create(fakeengine.Spec{Name: "marker", Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := e.fleet.Host("h1")
	waitFor(t, "the marker container", func() bool { _, ok := h1.Container(id); return ok })
	t.Logf("load of %d images on h1: GET /images/json h1=%d h2=%d h3=%d", n, e.lists("h1"), e.lists("h2"), e.lists("h3"))
}

// A pull on one host, a tag and a removal of an image only it has list
// that host's images alone, and its index follows each at once.
func TestImageOperationsRefreshOnlyTheirHost(t *testing.T) {
	e := newImgEnv(t, 3)
	if status, body := e.do("POST", "/v1.41/images/create?fromImage=nginx&tag=1.27", "h2", nil); status != 200 {
		t.Fatalf("pull = %d %s", status, body)
	}
	if !e.has("h2", "nginx:1.27") {
		t.Fatal("h2's index lacks nginx:1.27 after the pull answered")
	}
	if status, body := e.do("POST", "/v1.41/images/nginx:1.27/tag?repo=web&tag=v1", "", nil); status != 201 {
		t.Fatalf("tag = %d %s", status, body)
	}
	if !e.has("h2", "web:v1") {
		t.Fatal("h2's index lacks web:v1 after the tag answered")
	}
	if status, body := e.do("DELETE", "/v1.41/images/web:v1", "", nil); status != 200 {
		t.Fatalf("rmi = %d %s", status, body)
	}
	if e.has("h2", "web:v1") {
		t.Fatal("h2's index still has web:v1 after the removal answered")
	}
	for _, name := range []string{"h1", "h3"} {
		if got := e.lists(name); got != 0 {
			t.Errorf("%s (untouched) listed its images %d times, want 0", name, got)
		}
	}
	if got := e.lists("h2"); got < 3 {
		t.Errorf("h2 listed its images %d times for 3 operations, want at least 3", got)
	}
}

// A pull on every host refreshes every host.
func TestPullEverywhereRefreshesEveryHost(t *testing.T) {
	e := newImgEnv(t, 3)
	if status, body := e.do("POST", "/v1.41/images/create?fromImage=redis&tag=7", "", nil); status != 200 {
		t.Fatalf("pull = %d %s", status, body)
	}
	for _, name := range []string{"h1", "h2", "h3"} {
		if !e.has(name, "redis:7") {
			t.Errorf("%s's index lacks redis:7 after the pull answered", name)
		}
	}
}
