package reschedule_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/reschedule"
	"github.com/clocker/clocker/scheduler"
)

// env is a fleet of fake engines behind a front door reached through its
// in-process client, as the rescheduler reaches it in serve.
type env struct {
	t     *testing.T
	fleet *hosts.Fleet
	fakes map[string]*fakeEngine
	api   *client.Client
	log   *slog.Logger
}

type fakeEngine struct {
	*fakeengine.Server
	addr string
}

// restart brings a shut-down fake engine back on the same address, with
// the containers it had (as a rebooted host with its disk).
func (f *fakeEngine) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", f.addr, err)
	}
	f.Server = fakeengine.Serve(f.Engine, ln)
}

func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	e := &env{t: t, fakes: map[string]*fakeEngine{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		e.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, name := range names {
		s, err := fakeengine.Listen(fakeengine.New(fakeengine.Options{Name: name, Images: []string{"busybox"}}), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f := &fakeEngine{Server: s, addr: strings.TrimPrefix(s.URL, "tcp://")}
		t.Cleanup(func() { f.Close() }) // the Server of the moment (see restart)
		e.fakes[name] = f
	}
	reg := prometheus.NewRegistry()
	e.fleet = hosts.NewFleet(nil, e.log, hosts.NewMetrics(reg))
	t.Cleanup(e.fleet.Close) // before the fakes shut down
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range names {
		if _, err := e.fleet.Add(ctx, hosts.Record{Name: name, URL: e.fakes[name].URL}, false); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
	}
	if err := e.fleet.WaitSynced(ctx); err != nil {
		t.Fatalf("fleet not synced: %v", err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(e.fleet, strategy, e.log, 1<<20, reg)
	ip, err := proxy.NewInProcess()
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go func() { _ = hs.Serve(ip.Listener()) }()
	t.Cleanup(func() { ip.Close(); hs.Close() }) // before the fleet closes
	e.api = ip.Client()
	return e
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run starts the rescheduler's loop until the test ends.
func run(t *testing.T, rs *reschedule.Rescheduler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rs.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *env) create(name string, cfg *container.Config) string {
	e.t.Helper()
	res, err := e.api.ContainerCreate(testContext(e.t), client.ContainerCreateOptions{Name: name, Config: cfg})
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return res.ID
}

// named lists the containers called name.
func (e *env) named(name string) []container.Summary {
	e.t.Helper()
	// Filtered on io.clocker.host, the list shows that label (the host).
	res, err := e.api.ContainerList(testContext(e.t), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", labels.Host)})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []container.Summary
	for _, c := range res.Items {
		for _, n := range c.Names {
			if n == "/"+name {
				out = append(out, c)
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or a deadline passes. The deadline is
// generous (it only costs on failure): under CI's load, with -race, host
// failure detection and a recreate have taken over 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A reschedulable container whose host stays down comes back on another
// host (started, same name, one copy listed); a plain one stays; when the
// host answers again its stale copy is removed from it.
func TestRescheduleOnNodeFailure(t *testing.T) {
	e := newEnv(t, "h1", "h2")
	web := e.create("web", &container.Config{Image: "busybox", Env: []string{"reschedule:on-node-failure", "constraint:node==h1", "A=1"}})
	swarmy := e.create("swarmy", &container.Config{Image: "busybox", Env: []string{"constraint:node==h1"},
		Labels: map[string]string{labels.SwarmReschedulePolicies: `["on-node-failure"]`}})
	plain := e.create("plain", &container.Config{Image: "busybox", Env: []string{"constraint:node==h1"}})
	if _, err := e.api.ContainerStart(testContext(t), "web", client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	for _, id := range []string{web, swarmy} {
		if c, _ := e.fakes["h1"].Container(id); c.Labels[labels.Reschedule] != reschedule.OnNodeFailure {
			t.Errorf("%s created with labels %v", id, c.Labels)
		}
	}
	if _, err := e.api.ContainerCreate(testContext(t), client.ContainerCreateOptions{Name: "bad",
		Config: &container.Config{Image: "busybox", Env: []string{"reschedule:sometimes"}}}); err == nil || !strings.Contains(err.Error(), "sometimes") {
		t.Errorf("bad policy: %v", err)
	}

	rs, err := reschedule.New(e.fleet, e.api, nil, 300*time.Millisecond, e.log)
	if err != nil {
		t.Fatal(err)
	}
	run(t, rs)

	e.fakes["h1"].Close()
	var w, s []container.Summary
	defer func() { // what the wait saw last, should it time out
		if t.Failed() {
			t.Logf("web: %+v\nswarmy: %+v", w, s)
		}
	}()
	waitFor(t, "web and swarmy recreated on h2", func() bool {
		w, s = e.named("web"), e.named("swarmy")
		return len(w) == 1 && w[0].ID != web && w[0].Labels[labels.Host] == "h2" && w[0].State == container.StateRunning &&
			len(s) == 1 && s[0].ID != swarmy && s[0].State == container.StateCreated
	})
	if ls := e.named("plain"); len(ls) != 1 || ls[0].ID != plain {
		t.Errorf("plain: %+v, want it left on h1", ls)
	}

	e.fakes["h1"].restart(t)
	waitFor(t, "the stale copies removed from h1", func() bool {
		_, w := e.fakes["h1"].Container(web)
		_, s := e.fakes["h1"].Container(swarmy)
		return !w && !s
	})
	if len(e.named("web")) != 1 || len(e.named("swarmy")) != 1 || len(e.named("plain")) != 1 {
		t.Errorf("after the host came back: web %+v swarmy %+v plain %+v", e.named("web"), e.named("swarmy"), e.named("plain"))
	}
	if _, ok := e.fakes["h1"].Container(plain); !ok {
		t.Error("plain was removed from h1")
	}
}

// A move stored by a previous manager hides its stale copy as soon as the
// rescheduler is made, and the copy is removed from its host, and the
// move forgotten, once the loop runs and finds the host up.
func TestRescheduleStoredMove(t *testing.T) {
	e := newEnv(t, "h1", "h2")
	stale := e.create("web", &container.Config{Image: "busybox", Env: []string{"constraint:node==h1"}})
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	move := map[string]any{"Name": "web", "OldHost": "h1", "OldID": stale, "NewID": "0123456789ab", "At": time.Now().UTC()}
	if err := st.Put(store.BucketReschedules, stale, move); err != nil {
		t.Fatal(err)
	}

	rs, err := reschedule.New(e.fleet, e.api, st, time.Minute, e.log)
	if err != nil {
		t.Fatal(err)
	}
	if ls := e.named("web"); len(ls) != 0 {
		t.Errorf("the stale copy is listed: %+v", ls)
	}
	if _, ok := e.fakes["h1"].Container(stale); !ok {
		t.Fatal("the stale copy was removed before Run")
	}
	run(t, rs)
	waitFor(t, "the stale copy removed from h1", func() bool {
		_, ok := e.fakes["h1"].Container(stale)
		return !ok
	})
	waitFor(t, "the move forgotten", func() bool {
		n := 0
		_ = st.ForEach(store.BucketReschedules, func(string, []byte) error { n++; return nil })
		return n == 0
	})
}
