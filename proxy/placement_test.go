package proxy_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

// withStrategy serves the env's fleet through a front door placing with
// the given chain; it answers the base URL.
func (e *env) withStrategy(chain string, opts ...scheduler.Option) string {
	e.t.Helper()
	s, err := scheduler.New(chain, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := proxy.NewServer(e.fleet, s, e.log, 1<<20, prometheus.NewRegistry())
	ts := httptest.NewServer(srv.Handler())
	e.t.Cleanup(ts.Close)
	return ts.URL
}

// threeHosts are engines labelled as the e2e fleet is: zones, storage.
func threeHosts(t *testing.T) *env {
	return newEnv(t,
		fakeOpts{name: "h1", images: []string{"busybox"}, labels: []string{"zone=z1", "storage=disk"}},
		fakeOpts{name: "h2", images: []string{"busybox"}, labels: []string{"zone=z2", "storage=ssd"}},
		fakeOpts{name: "h3", images: []string{"busybox"}, labels: []string{"zone=z3", "storage=disk"}},
	)
}

func createdID(t *testing.T, r response) string {
	t.Helper()
	if r.status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	var out struct{ Id string }
	if err := json.Unmarshal(r.body, &out); err != nil || out.Id == "" {
		t.Fatalf("create: bad answer %s", r.body)
	}
	return out.Id
}

func TestCreateConstraintsAndAffinities(t *testing.T) {
	e := threeHosts(t)
	db := e.create("db", map[string]any{"Image": "busybox", "Env": []string{"constraint:node==h3"}})
	if got := e.owner(db); got != "h3" {
		t.Fatalf("constraint:node==h3 placed on %s", got)
	}
	tests := []struct {
		name       string
		env        []string
		labels     map[string]string
		wantHost   string
		wantStatus int
		wantMsg    []string
	}{
		{name: "engine label", env: []string{"constraint:storage==ssd"}, wantHost: "h2"},
		{name: "negative constraints", env: []string{"constraint:node!=h1", "constraint:zone!=z2"}, wantHost: "h3"},
		{name: "regex", env: []string{"constraint:zone==/z[2]/"}, wantHost: "h2"},
		{name: "affinity to a container", env: []string{"affinity:container==db"}, wantHost: "h3"},
		{name: "swarm labels", labels: map[string]string{scheduler.LabelConstraints: `["node==h1"]`}, wantHost: "h1"},
		{name: "clocker rule", labels: map[string]string{scheduler.LabelAffinity: "NAME db"}, wantHost: "h3"},
		{name: "constraint met nowhere", env: []string{"constraint:storage==nvme"}, wantStatus: 409,
			wantMsg: []string{"h1: constraint storage==nvme not met", "h2: constraint storage==nvme not met", "h3: constraint storage==nvme not met"}},
		{name: "anti-affinity and constraint", env: []string{"affinity:container!=db", "constraint:zone==z3"}, wantStatus: 409,
			wantMsg: []string{"h1: constraint zone==z3 not met", "h3: affinity container!=db not met"}},
		{name: "malformed constraint", env: []string{"constraint:storage=ssd"}, wantStatus: 400,
			wantMsg: []string{`invalid constraint: expression "storage=ssd"`}},
		{name: "malformed swarm label", labels: map[string]string{scheduler.LabelAffinities: "container==db"}, wantStatus: 400,
			wantMsg: []string{"com.docker.swarm.affinities"}},
		{name: "unknown per-container strategy", labels: map[string]string{scheduler.LabelStrategy: "fastest"}, wantStatus: 400,
			wantMsg: []string{`unknown placement strategy "fastest"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.createCalls()
			r := e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "busybox", "Env": append([]string{"KEEP=1"}, tt.env...), "Labels": tt.labels})
			if tt.wantStatus != 0 {
				if r.status != tt.wantStatus {
					t.Fatalf("status %s, want %d", r, tt.wantStatus)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(r.message(), m) {
						t.Errorf("message %q lacks %q", r.message(), m)
					}
				}
				if e.createCalls() != before {
					t.Fatal("a refused create reached an engine")
				}
				return
			}
			id := createdID(t, r)
			if got := e.owner(id); got != tt.wantHost {
				t.Fatalf("placed on %s, want %s", got, tt.wantHost)
			}
		})
	}
}

func TestCreateImageMissingOnlyIs404(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2"})
	// redis is nowhere: the CLI must pull.
	if r := e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "redis"}); r.status != 404 || r.message() != "No such image: redis" {
		t.Fatalf("image nowhere: %s", r)
	}
	// busybox is on h1, but a constraint sends it to h2: pulling helps.
	if r := e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "busybox", "Env": []string{"constraint:node==h2"}}); r.status != 404 {
		t.Fatalf("image missing on the only fitting host: %s", r)
	}
	// Memory fits nowhere: pulling would not help, so never 404.
	r := e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "redis", "HostConfig": map[string]any{"Memory": 8 << 30}})
	if r.status != 409 || !strings.Contains(r.message(), "h1: memory 8GiB requested, 2GiB free") {
		t.Fatalf("too big: %s", r)
	}
}

func TestCreateMemoryFillsHostsExactly(t *testing.T) {
	e := threeHosts(t) // 2 GiB each
	base := e.withStrategy("spread")
	spec := map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Memory": 1 << 30}}
	var mu sync.Mutex
	per := map[string]int{}
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := doOn(t, base, "POST", "/v1.41/containers/create", spec)
			statuses <- r.status
			if r.status == http.StatusCreated {
				var out struct{ Id string }
				_ = json.Unmarshal(r.body, &out)
				mu.Lock()
				per[e.owner(out.Id)]++
				mu.Unlock()
			} else if r.status != 409 || !strings.Contains(r.message(), "memory 1GiB requested, 0B free") {
				t.Errorf("refused create: %s", r)
			}
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		if s == http.StatusCreated {
			created++
		}
	}
	if created != 6 || per["h1"] != 2 || per["h2"] != 2 || per["h3"] != 2 {
		t.Fatalf("created %d: %v, want 2 of 1 GiB on each 2 GiB host", created, per)
	}
}

func TestConcurrentCreatesNeverDoubleBook(t *testing.T) {
	e := threeHosts(t)
	base := e.withStrategy("max-containers=3,spread")
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := doOn(t, base, "POST", "/v1.41/containers/create", map[string]any{"Image": "busybox"})
			codes[i] = r.status
			if r.status != http.StatusCreated && (r.status != 409 || !strings.Contains(r.message(), "3 containers, max-containers=3")) {
				t.Errorf("create: %s", r)
			}
		}()
	}
	wg.Wait()
	for name, f := range e.fakes {
		if k := len(f.IDs()); k != 3 {
			t.Errorf("%s holds %d containers, want 3", name, k)
		}
	}
	ok := 0
	for _, c := range codes {
		if c == http.StatusCreated {
			ok++
		}
	}
	if ok != 9 {
		t.Fatalf("%d creates succeeded, want 9", ok)
	}
}

func TestCreatePortConflictMovesOn(t *testing.T) {
	e := threeHosts(t)
	base := e.withStrategy("binpack") // binpack would stack them on one host
	spec := func(proto string) map[string]any {
		return map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"PortBindings": map[string]any{"80/" + proto: []map[string]string{{"HostPort": "8080"}}}}}
	}
	seen := map[string]bool{}
	for range 3 {
		id := createdID(t, doOn(t, base, "POST", "/v1.41/containers/create", spec("tcp")))
		h := e.owner(id)
		if seen[h] {
			t.Fatalf("two containers publishing 8080/tcp on %s", h)
		}
		seen[h] = true
	}
	r := doOn(t, base, "POST", "/v1.41/containers/create", spec("tcp"))
	if r.status != 409 || !strings.Contains(r.message(), "host port 8080/tcp already in use") {
		t.Fatalf("fourth 8080/tcp: %s", r)
	}
	// UDP 8080 is another port.
	createdID(t, doOn(t, base, "POST", "/v1.41/containers/create", spec("udp")))
}

func TestPlacementDryRun(t *testing.T) {
	e := threeHosts(t)
	e.create("", map[string]any{"Image": "busybox", "Env": []string{"constraint:node==h1"}})
	before := e.createCalls()
	r := e.do("POST", "/v1/fleet/placement", map[string]any{"Image": "busybox", "Env": []string{"constraint:zone!=z3"}})
	if r.status != 200 {
		t.Fatalf("dry run: %s", r)
	}
	var out struct {
		Strategy string
		Host     string
		Hosts    []scheduler.Candidate
		Rejected []scheduler.Rejection
		Status   int
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Strategy != "spread" || out.Host != "h2" || len(out.Hosts) != 2 || out.Hosts[0].Host != "h2" || out.Hosts[1].Host != "h1" ||
		len(out.Rejected) != 1 || out.Rejected[0].Host != "h3" || out.Rejected[0].Filter != "constraint" || out.Status != 0 {
		t.Fatalf("dry run answer %s", r.body)
	}
	if len(out.Hosts[1].Scores) == 0 || out.Hosts[1].Scores[1].Value != -1 {
		t.Fatalf("scores of h1 = %+v, want its one running container", out.Hosts[1].Scores)
	}
	r = e.do("POST", "/v1/fleet/placement", map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Memory": 64 << 30}})
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != 200 || out.Status != 409 || len(out.Rejected) != 3 || out.Host != "" {
		t.Fatalf("dry run of a create that fits nowhere: %s", r)
	}
	if e.createCalls() != before {
		t.Fatal("the dry run created a container")
	}
	if r := e.do("POST", "/v1/fleet/placement", map[string]any{"Image": "busybox", "Env": []string{"constraint:x"}}); r.status != 400 {
		t.Fatalf("dry run of a malformed constraint: %s", r)
	}
	if r := e.do("POST", "/v1/fleet/placement", nil); r.status != 400 {
		t.Fatalf("dry run without a body: %s", r)
	}
}

func TestPlacementMetrics(t *testing.T) {
	e := threeHosts(t)
	e.create("", map[string]any{"Image": "busybox"})
	e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "busybox", "Env": []string{"constraint:storage==nvme"}})
	m := string(e.do("GET", "/metrics", nil).body)
	for _, want := range []string{
		`clocker_placement_decisions_total{outcome="placed",strategy="spread"} 1`,
		`clocker_placement_decisions_total{outcome="no_host_fits",strategy="spread"} 1`,
		`clocker_placement_rejections_total{reason="constraint"} 3`,
		`clocker_placement_decision_duration_seconds_count 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestNoHealthyHostIs503(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	e.fakes["h1"].Close()
	waitFor(t, "h1 unhealthy", func() bool { h, _ := e.fleet.Host("h1"); return !h.Healthy() })
	r := e.do("POST", "/v1.41/containers/create", map[string]any{"Image": "busybox"})
	if r.status != 503 {
		t.Fatalf("create with no healthy host: %s", r)
	}
	if !strings.Contains(r.message(), "h1: unhealthy") {
		t.Fatalf("message %q", r.message())
	}
}
