package proxy_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"
)

// restart brings a shut-down fake engine back on the same address, with
// the containers it had (as a rebooted host with its disk).
func (f *fakeEngine) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", f.Addr, err)
	}
	f.Server = fakeengine.Serve(f.Engine, ln)
}

// named returns the listed containers called name.
func named(ls []listed, name string) []listed {
	var out []listed
	for _, c := range ls {
		for _, n := range c.Names {
			if n == "/"+name {
				out = append(out, c)
			}
		}
	}
	return out
}

// A reschedulable container whose host stays down comes back on another
// host (started, same name, one copy listed); a plain one stays; when the
// host answers again its stale copy is removed from it.
func TestRescheduleOnNodeFailure(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	web := e.create("web", map[string]any{"Image": "busybox", "Env": []string{"reschedule:on-node-failure", "constraint:node==h1", "A=1"}})
	swarmy := e.create("swarmy", map[string]any{"Image": "busybox", "Env": []string{"constraint:node==h1"},
		"Labels": map[string]string{"com.docker.swarm.reschedule-policies": `["on-node-failure"]`}})
	plain := e.create("plain", map[string]any{"Image": "busybox", "Env": []string{"constraint:node==h1"}})
	if r := e.do("POST", "/containers/web/start", nil); r.status != http.StatusNoContent {
		t.Fatalf("start: %s", r)
	}
	for _, id := range []string{web, swarmy} {
		if c, _ := e.fakes["h1"].Container(id); c.Labels["io.clocker.reschedule"] != "on-node-failure" {
			t.Errorf("%s created with labels %v", id, c.Labels)
		}
	}
	if r := e.do("POST", "/containers/create?name=bad", map[string]any{"Image": "busybox", "Env": []string{"reschedule:sometimes"}}); r.status != http.StatusBadRequest || !strings.Contains(r.message(), "sometimes") {
		t.Errorf("bad policy: %s", r)
	}

	rs, err := e.srv.NewRescheduler(nil, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { rs.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	e.fakes["h1"].Close()
	waitFor(t, "web and swarmy recreated on h2", func() bool {
		ls := e.list("?all=1")
		w, s := named(ls, "web"), named(ls, "swarmy")
		return len(w) == 1 && w[0].Id != web && w[0].Labels["io.clocker.host"] == "h2" && w[0].State == "running" &&
			len(s) == 1 && s[0].Id != swarmy && s[0].State == "created"
	})
	if ls := named(e.list("?all=1"), "plain"); len(ls) != 1 || ls[0].Id != plain {
		t.Errorf("plain: %+v, want it left on h1", ls)
	}

	e.fakes["h1"].restart(t)
	waitFor(t, "the stale copies removed from h1", func() bool {
		_, w := e.fakes["h1"].Container(web)
		_, s := e.fakes["h1"].Container(swarmy)
		return !w && !s
	})
	ls := e.list("?all=1")
	if len(named(ls, "web")) != 1 || len(named(ls, "swarmy")) != 1 || len(named(ls, "plain")) != 1 {
		t.Errorf("after the host came back: %+v", ls)
	}
	if _, ok := e.fakes["h1"].Container(plain); !ok {
		t.Error("plain was removed from h1")
	}
}
