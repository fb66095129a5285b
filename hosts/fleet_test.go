package hosts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newFleet starts one fake per name and a fleet following them all.
func newFleet(t *testing.T, opts ...fakeOpts) (*hosts.Fleet, map[string]*fakeEngine) {
	t.Helper()
	fakes := map[string]*fakeEngine{}
	for _, o := range opts {
		fakes[o.name] = newFakeEngine(t, o)
	}
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(fleet.Close)
	ctx := testCtx(t)
	for _, o := range opts {
		if _, err := fleet.Add(ctx, hosts.Record{Name: o.name, URL: fakes[o.name].URL}, false); err != nil {
			t.Fatalf("add %s: %v", o.name, err)
		}
	}
	if err := fleet.WaitSynced(ctx); err != nil {
		t.Fatalf("WaitSynced: %v", err)
	}
	return fleet, fakes
}

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

func cached(f *hosts.Fleet, id string) (hosts.Container, bool) {
	for _, c := range f.Containers() {
		if c.ID() == id {
			return c, true
		}
	}
	return hosts.Container{}, false
}

// pad makes a 64-hex container ID from a prefix.
func pad(prefix string) string { return prefix + strings.Repeat("0", 64-len(prefix)) }

func TestCacheFromListAndEvents(t *testing.T) {
	// Containers that exist before the fleet connects come from the list.
	pre := map[string]*fakeEngine{
		"h1": newFakeEngine(t, fakeOpts{name: "h1"}),
		"h2": newFakeEngine(t, fakeOpts{name: "h2"}),
	}
	pre1 := pre["h1"].add("", "pre1", "running", "", false)
	pre2 := pre["h1"].add("", "pre2", "created", `{"NanoCpus":500000000,"Memory":67108864}`, false)
	pre3 := pre["h2"].add("", "pre3", "exited", "", false)

	fleet := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(fleet.Close)
	ctx := testCtx(t)
	for _, name := range []string{"h1", "h2"} {
		if _, err := fleet.Add(ctx, hosts.Record{Name: name, URL: pre[name].URL}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range fleet.Hosts() {
		if !h.Healthy() {
			t.Errorf("%s not healthy after WaitSynced", h.Name)
		}
	}
	synced := []struct {
		id, host, state, name string
		nanoCPUs, memory      int64
	}{
		{pre1, "h1", "running", "/pre1", 0, 0},
		{pre2, "h1", "created", "/pre2", 5e8, 64 << 20},
		{pre3, "h2", "exited", "/pre3", 0, 0},
	}
	if n := len(fleet.Containers()); n != len(synced) {
		t.Errorf("cache has %d containers, want %d", n, len(synced))
	}
	for _, want := range synced {
		c, ok := cached(fleet, want.id)
		if !ok {
			t.Errorf("%s not cached after sync", want.name)
			continue
		}
		created, _ := pre[want.host].Created(want.id)
		if c.Host != want.host || string(c.Summary.State) != want.state || !slices.Equal(c.Summary.Names, []string{want.name}) {
			t.Errorf("%s cached as host %q state %q names %v", want.name, c.Host, c.Summary.State, c.Summary.Names)
		}
		if !c.Created.Equal(created) {
			t.Errorf("%s Created %v, want the precise %v", want.name, c.Created, created)
		}
		if c.NanoCPUs != want.nanoCPUs || c.Memory != want.memory {
			t.Errorf("%s reserves %d CPU / %d memory, want %d / %d", want.name, c.NanoCPUs, c.Memory, want.nanoCPUs, want.memory)
		}
		if len(c.Raw) == 0 {
			t.Errorf("%s has no raw JSON", want.name)
		}
	}
	if h1, _ := fleet.Host("h1"); len(h1.Containers()) != 2 {
		t.Errorf("h1 caches %d containers, want 2", len(h1.Containers()))
	}

	// Then events keep it current, in order.
	var made string
	steps := []struct {
		name  string
		do    func()
		check func() bool
	}{
		{name: "created on an engine appears", do: func() { made = pre["h2"].add("", "late", "created", "", false) },
			check: func() bool { c, ok := cached(fleet, made); return ok && c.Host == "h2" && c.Summary.State == "created" }},
		{name: "started", do: func() { pre["h2"].Start(made) },
			check: func() bool { c, _ := cached(fleet, made); return c.Summary.State == "running" }},
		{name: "stopped", do: func() { pre["h2"].Kill(made) },
			check: func() bool { c, _ := cached(fleet, made); return c.Summary.State == "exited" }},
		{name: "exec events change nothing", do: func() { pre["h2"].Emit(made, "exec_start: sh") },
			check: func() bool { c, _ := cached(fleet, made); return c.Summary.State == "exited" }},
		{name: "removed disappears", do: func() { pre["h2"].remove(made, false) },
			check: func() bool { _, ok := cached(fleet, made); return !ok }},
		{name: "removed pre-existing disappears", do: func() { pre["h1"].remove(pre1, false) },
			check: func() bool { _, ok := cached(fleet, pre1); return !ok }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			waitFor(t, st.name, st.check)
		})
	}
}

func TestResolve(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"}, fakeOpts{name: "h3"})
	web := fakes["h1"].add(pad("abc1"), "web", "running", "", false)
	db := fakes["h2"].add(pad("abc2"), "db", "running", "", false)
	cache := fakes["h3"].add(pad("def3"), "cache", "created", "", false)
	named := fakes["h3"].add(pad("fff"), "abc", "created", "", false)
	for _, id := range []string{web, db, cache, named} {
		waitFor(t, "cache to know "+id, func() bool { _, ok := cached(fleet, id); return ok })
	}
	// Known only to its engine: its event is lost.
	hidden := fakes["h2"].add(pad("0b5c"), "hidden", "running", "", true)

	tests := []struct {
		name, ref      string
		wantHost, want string
		wantErr        error
		wantText       string
	}{
		{name: "full ID", ref: web, wantHost: "h1", want: web},
		{name: "name", ref: "db", wantHost: "h2", want: db},
		{name: "slash name", ref: "/db", wantHost: "h2", want: db},
		{name: "unique prefix", ref: "def", wantHost: "h3", want: cache},
		{name: "longer unique prefix", ref: "abc1", wantHost: "h1", want: web},
		{name: "name wins over an ambiguous prefix", ref: "abc", wantHost: "h3", want: named},
		{name: "ambiguous prefix", ref: "ab", wantErr: errdefs.ErrInvalid, wantText: "multiple IDs found with provided prefix: ab"},
		{name: "unknown", ref: "x", wantErr: errdefs.ErrNotFound, wantText: "No such container: x"},
		{name: "empty", ref: "", wantErr: errdefs.ErrNotFound, wantText: "No such container: "},
		{name: "not cached yet: asked on the engines", ref: "hidden", wantHost: "h2", want: hidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, err := fleet.Resolve(testCtx(t), tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if err.Error() != tt.wantText {
					t.Errorf("text %q, want %q", err.Error(), tt.wantText)
				}
				if h != nil {
					t.Errorf("host %s with an error", h.Name)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.ref, err)
			}
			if h.Name != tt.wantHost || c.ID() != tt.want || c.Host != tt.wantHost {
				t.Errorf("Resolve(%q) = %s/%s, want %s/%s", tt.ref, h.Name, c.ID(), tt.wantHost, tt.want)
			}
		})
	}
	if _, ok := cached(fleet, hidden); !ok {
		t.Errorf("a container found on an engine was not cached")
	}
}

// createOn creates a container named name on the engine over its API, as
// the proxy does.
func createOn(f *fakeEngine, name string) (string, error) {
	u := strings.Replace(f.URL, "tcp://", "http://", 1) + "/v1.41/containers/create?name=" + url.QueryEscape(name)
	resp, err := http.Post(u, "application/json", strings.NewReader(`{"Image":"busybox"}`))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create: %d %s", resp.StatusCode, body)
	}
	var out struct{ Id string }
	_ = json.Unmarshal(body, &out)
	return out.Id, nil
}

func TestReserveNameConcurrent(t *testing.T) {
	tests := []struct {
		name      string
		failFirst bool // the first holder gives up without creating
		wantWins  int  // reservations granted
	}{
		{name: "one wins, the others conflict", wantWins: 1},
		{name: "a failed winner lets the next go ahead", failFirst: true, wantWins: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet, fakes := newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"})
			h2, _ := fleet.Host("h2")
			const n = 20
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				wins    int
				created string
				errs    []error
			)
			start := make(chan struct{})
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					release, err := fleet.ReserveName(testCtx(t), "web")
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					defer release()
					mu.Lock()
					wins++
					first := wins == 1
					mu.Unlock()
					if tt.failFirst && first {
						return // the create failed: nothing made
					}
					id, err := createOn(fakes["h2"], "web")
					if err != nil {
						t.Errorf("winner's create: %v", err)
						return
					}
					if err := h2.Refresh(testCtx(t), id); err != nil {
						t.Errorf("refresh: %v", err)
					}
					mu.Lock()
					created = id
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			if wins != tt.wantWins {
				t.Errorf("%d reservations granted, want %d", wins, tt.wantWins)
			}
			if len(errs) != n-tt.wantWins {
				t.Errorf("%d refusals, want %d", len(errs), n-tt.wantWins)
			}
			want := fmt.Sprintf("Conflict. The container name \"/web\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", created)
			for _, err := range errs {
				if !errors.Is(err, errdefs.ErrConflict) || err.Error() != want {
					t.Errorf("refusal %v, want ErrConflict %q", err, want)
					break
				}
			}
			if got := fakes["h2"].served("POST /containers/create"); got != 1 {
				t.Errorf("the engine saw %d creates, want 1", got)
			}
		})
	}
}

func TestReserveName(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	id := fakes["h1"].add("", "taken", "running", "", false)
	waitFor(t, "cache to know taken", func() bool { _, ok := cached(fleet, id); return ok })

	release, err := fleet.ReserveName(testCtx(t), "held")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref string
		timeout   time.Duration
		wantErr   error
	}{
		{name: "free name", ref: "free"},
		{name: "taken name", ref: "taken", wantErr: errdefs.ErrConflict},
		{name: "taken name with a slash", ref: "/taken", wantErr: errdefs.ErrConflict},
		{name: "held name waits for its holder", ref: "held", timeout: 30 * time.Millisecond, wantErr: context.DeadlineExceeded},
		{name: "held name with a slash", ref: "/held", timeout: 30 * time.Millisecond, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			rel, err := fleet.ReserveName(ctx, tt.ref)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				rel()
			}
		})
	}
	// Released without a container: the name is free again.
	release()
	rel, err := fleet.ReserveName(testCtx(t), "held")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	rel()
}

func TestAddChecks(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"})
	extra := newFakeEngine(t, fakeOpts{name: "engine-three"})
	gone := newFakeEngine(t, fakeOpts{name: "gone"})
	gone.Close()
	h1, _ := fleet.Host("h1")
	tests := []struct {
		name     string
		rec      hosts.Record
		wantErr  error
		wantName string
		same     *hosts.Host // Add must answer this existing host
	}{
		{name: "duplicate name", rec: hosts.Record{Name: "h1", URL: extra.URL}, wantErr: errdefs.ErrConflict},
		{name: "duplicate URL", rec: hosts.Record{Name: "h9", URL: fakes["h2"].URL}, wantErr: errdefs.ErrConflict},
		{name: "duplicate URL written as http", rec: hosts.Record{Name: "h9", URL: strings.Replace(fakes["h2"].URL, "tcp://", "http://", 1)}, wantErr: errdefs.ErrConflict},
		{name: "given again", rec: hosts.Record{Name: "h1", URL: fakes["h1"].URL}, same: h1},
		{name: "invalid name", rec: hosts.Record{Name: "-h", URL: extra.URL}, wantErr: errdefs.ErrInvalid},
		{name: "name with a space", rec: hosts.Record{Name: "h 4", URL: extra.URL}, wantErr: errdefs.ErrInvalid},
		{name: "bad scheme", rec: hosts.Record{Name: "h4", URL: "ftp://127.0.0.1:1"}, wantErr: errdefs.ErrInvalid},
		{name: "no port", rec: hosts.Record{Name: "h4", URL: "tcp://127.0.0.1"}, wantErr: errdefs.ErrInvalid},
		{name: "unnamed engine that does not answer", rec: hosts.Record{URL: gone.URL}, wantErr: errdefs.ErrUnavailable},
		{name: "unnamed engine takes its own name", rec: hosts.Record{URL: extra.URL}, wantName: "engine-three"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fleet.Hosts())
			h, err := fleet.Add(testCtx(t), tt.rec, false)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if n := len(fleet.Hosts()); n != before {
					t.Errorf("fleet grew to %d hosts on a refused Add", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.same != nil && h != tt.same {
				t.Errorf("Add again made a new host")
			}
			if tt.wantName != "" && h.Name != tt.wantName {
				t.Errorf("name %q, want %q", h.Name, tt.wantName)
			}
		})
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range fleet.Hosts() {
		names = append(names, h.Name)
	}
	if !slices.Equal(names, []string{"h1", "h2", "engine-three"}) {
		t.Errorf("hosts %v", names)
	}
}

func TestAPIVersion(t *testing.T) {
	if got := hosts.NewFleet(nil, testLogger(), nil).APIVersion("1.40"); got != "1.40" {
		t.Errorf("empty fleet: %q, want the fallback", got)
	}
	fleet, fakes := newFleet(t, fakeOpts{name: "h1", maxAPI: "1.43"}, fakeOpts{name: "h2", maxAPI: "1.41"}, fakeOpts{name: "h3", maxAPI: "1.45"})
	if got := fleet.APIVersion("1.40"); got != "1.41" {
		t.Errorf("APIVersion = %q, want the lowest maximum 1.41", got)
	}
	h2, _ := fleet.Host("h2")
	fakes["h2"].Close()
	waitFor(t, "h2 unhealthy", func() bool { return !h2.Healthy() })
	if got := fleet.APIVersion("1.40"); got != "1.43" {
		t.Errorf("APIVersion with h2 down = %q, want 1.43 (healthy hosts only)", got)
	}
	if err := h2.Unavailable(); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "host h2 ("+fakes["h2"].URL+") is unavailable") {
		t.Errorf("Unavailable() = %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       int
	}{
		{name: "equal", a: "1.41", b: "1.41", want: 0},
		{name: "numeric, not lexical", a: "1.9", b: "1.10", want: -1},
		{name: "greater minor", a: "1.41", b: "1.4", want: 1},
		{name: "major wins", a: "2", b: "1.99", want: 1},
		{name: "longer is greater", a: "1.41.1", b: "1.41", want: 1},
		{name: "missing part is zero", a: "1.41.0", b: "1.41", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hosts.CompareVersions(tt.a, tt.b); got != tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestStoredRecordsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f1 := newFakeEngine(t, fakeOpts{name: "h1"})
	f2 := newFakeEngine(t, fakeOpts{name: "h2"})
	f3 := newFakeEngine(t, fakeOpts{name: "h3"})
	fleet := hosts.NewFleet(st, testLogger(), nil)
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	adds := []struct {
		rec     hosts.Record
		persist bool
	}{
		{hosts.Record{Name: "h2", URL: f2.URL, Added: t0.Add(time.Second)}, true},
		{hosts.Record{Name: "h1", URL: f1.URL, Added: t0}, true},
		{hosts.Record{Name: "h3", URL: f3.URL}, false},
	}
	for _, a := range adds {
		if _, err := fleet.Add(testCtx(t), a.rec, a.persist); err != nil {
			t.Fatal(err)
		}
	}
	fleet.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := hosts.NewFleet(st, testLogger(), nil).StoredRecords()
	if err != nil {
		t.Fatal(err)
	}
	want := []hosts.Record{
		{Name: "h1", URL: f1.URL, Provisioner: "static", Added: t0},
		{Name: "h2", URL: f2.URL, Provisioner: "static", Added: t0.Add(time.Second)},
	}
	if len(got) != len(want) {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].URL != want[i].URL || got[i].Provisioner != want[i].Provisioner || !got[i].Added.Equal(want[i].Added) {
			t.Errorf("record %d = %+v, want %+v (oldest first)", i, got[i], want[i])
		}
	}
	if recs, err := hosts.NewFleet(nil, testLogger(), nil).StoredRecords(); err != nil || recs != nil {
		t.Errorf("no store: %v %v", recs, err)
	}
}

func TestMetricsGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	f1 := newFakeEngine(t, fakeOpts{name: "h1"})
	ca := f1.add("", "ca", "running", "", false)
	f1.add("", "cb", "created", "", false)
	fleet := hosts.NewFleet(nil, testLogger(), hosts.NewMetrics(reg))
	t.Cleanup(fleet.Close)
	if _, err := fleet.Add(testCtx(t), hosts.Record{Name: "h1", URL: f1.URL}, false); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	gauge := func(name string) (float64, bool) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "host" && l.GetValue() == "h1" {
						return m.GetGauge().GetValue(), true
					}
				}
			}
		}
		return 0, false
	}
	// The gauge is set just after the state WaitSynced looks at.
	waitFor(t, "healthy gauge", func() bool { v, _ := gauge("clocker_host_healthy"); return v == 1 })
	if v, ok := gauge("clocker_host_containers"); !ok || v != 2 {
		t.Errorf("clocker_host_containers{host=h1} = %v (%v), want 2", v, ok)
	}
	// Every call to the engine counts, the health checks aside: a re-read
	// of a container is a list and an inspect.
	requests := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "clocker_host_requests_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	h1, _ := fleet.Host("h1")
	before := requests()
	if err := h1.Refresh(testCtx(t), ca); err != nil {
		t.Fatal(err)
	}
	if n := requests() - before; n != 2 {
		t.Errorf("clocker_host_requests_total grew by %v for a refresh, want 2", n)
	}
	f1.Close()
	waitFor(t, "healthy gauge to drop", func() bool { v, _ := gauge("clocker_host_healthy"); return v == 0 })
}

// A refresh that read the engine before a container was removed must not
// put it back into the cache after the removal's event was applied.
// holdNextRefresh makes the engine's next list filtered on container id
// compute its answer, close held, and wait for hold to close before
// answering (to order a refresh against other changes). Only id's: the
// re-reads that other containers' events start go on.
func holdNextRefresh(f *fakeEngine, id string, hold, held chan struct{}) {
	var once sync.Once
	f.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, "/containers/json") || !strings.Contains(r.URL.Query().Get("filters"), id) {
			next.ServeHTTP(w, r)
			return
		}
		first := false
		once.Do(func() { first = true })
		if !first {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		close(held)
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func TestRefreshDoesNotResurrect(t *testing.T) {
	tests := []struct {
		name   string
		cached bool // the cache knew the container before the refresh
	}{
		{name: "cached container: a stale list wins over destroy", cached: true},
		{name: "new container: inspect finds it gone, it is cached anyway", cached: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
			h1, _ := fleet.Host("h1")
			f := fakes["h1"]
			id := f.add("", "victim", "running", "", !tt.cached)
			if tt.cached {
				waitFor(t, "cache to know victim", func() bool { _, ok := cached(fleet, id); return ok })
			}
			hold, held := make(chan struct{}), make(chan struct{})
			holdNextRefresh(f, id, hold, held)
			done := make(chan error, 1)
			go func() { done <- h1.Refresh(testCtx(t), id) }() // e.g. the proxy after a start
			select {
			case <-held: // the engine answered "it exists"; not delivered yet
			case <-time.After(10 * time.Second):
				t.Fatal("refresh never reached the engine")
			}
			// Cached: the destroy event is applied first. New: no event at
			// all, only the refresh's own inspect can tell it is gone.
			f.remove(id, !tt.cached)
			if tt.cached {
				// Give the destroy event the chance to be applied before
				// the refresh writes (a cache that orders the two makes
				// the event wait instead).
				deadline := time.Now().Add(300 * time.Millisecond)
				for time.Now().Before(deadline) {
					if _, ok := cached(fleet, id); !ok {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			close(hold)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the removed container to leave the cache", func() bool { _, ok := cached(fleet, id); return !ok })
			time.Sleep(50 * time.Millisecond) // nothing may bring it back
			if _, ok := cached(fleet, id); ok {
				t.Errorf("a removed container is in the cache, and no event will drop it")
			}
		})
	}
}

// A broken event stream makes the host resync from the list: what changed
// while no events flowed is caught up.
func TestResyncAfterStreamBreak(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	h1, _ := fleet.Host("h1")
	f := fakes["h1"]
	old := f.add("", "old", "running", "", false)
	waitFor(t, "cache to know old", func() bool { _, ok := cached(fleet, old); return ok })

	// Changes without events: only a resync can reveal them.
	missed := f.add("", "missed", "created", "", true)
	f.remove(old, true)
	f.DropEventStreams()
	waitFor(t, "resync", func() bool {
		_, hasOld := cached(fleet, old)
		_, hasMissed := cached(fleet, missed)
		return !hasOld && hasMissed && h1.Healthy()
	})
	// And events flow again on the new stream.
	late := f.add("", "late", "created", "", false)
	waitFor(t, "events after the resync", func() bool { _, ok := cached(fleet, late); return ok })
}

// Close ends the fleet's event streams (their request contexts end).
func TestCloseEndsStreams(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"})
	for name, f := range fakes {
		if f.EventStreams() != 1 {
			t.Errorf("%s has %d event streams, want 1", name, f.EventStreams())
		}
	}
	fleet.Close()
	for name, f := range fakes {
		waitFor(t, name+" streams to end", func() bool { return f.EventStreams() == 0 })
	}
}
