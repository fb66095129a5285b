package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

// TestMountBeforeCatchAlls: an extension's routes get every path under
// its prefix, also those the Docker routes' patterns and catch-alls would
// take; Docker's and the fleet's routes are unchanged beside it.
func TestMountBeforeCatchAlls(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1"})
	strategy, _ := scheduler.New("spread")
	s := proxy.NewServer(e.fleet, strategy, e.log, 1<<20, prometheus.NewRegistry())
	var got []string
	s.Mount("/v1/applications", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	}))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v1/applications", http.StatusTeapot},
		{http.MethodPost, "/v1/applications/app1/entities/e1/effectors/restart", http.StatusTeapot},
		{http.MethodGet, "/v1/fleet/hosts", http.StatusOK},
		{http.MethodGet, "/v1.41/containers/json", http.StatusOK},
		{http.MethodGet, "/v1.41/swarm", http.StatusServiceUnavailable},
		{http.MethodGet, "/v1.41/images/x/y/z/w", http.StatusNotImplemented},
	} {
		if r := doOn(t, ts.URL, tt.method, tt.path, nil); r.status != tt.want {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
		}
	}
	if len(got) != 2 {
		t.Errorf("the extension saw %v, want its two requests", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Mount after Handler did not panic")
		}
	}()
	s.Mount("/ui", http.NotFoundHandler())
}
