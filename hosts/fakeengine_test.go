package hosts_test

// The fleet's tests run against internal/fakeengine; this adapter only
// starts one per test (over TLS when asked) and names the few steps the
// tests take on it.

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/clocker/clocker/internal/fakeengine"
)

type fakeOpts struct {
	name   string      // GET /info Name
	maxAPI string      // default 1.41
	tls    *tls.Config // serve TLS with this config (an engine with --tlsverify)
	images []string    // images present; nil: busybox
}

type fakeEngine struct{ *fakeengine.Server }

// newFakeEngine serves a fake engine on loopback until the test ends; it
// counts the requests it serves (fakeengine.Engine.Requests).
func newFakeEngine(t *testing.T, opts fakeOpts) *fakeEngine {
	t.Helper()
	if opts.images == nil {
		opts.images = []string{"busybox"}
	}
	e := fakeengine.New(fakeengine.Options{Name: opts.name, MaxAPI: opts.maxAPI, Images: opts.images})
	e.CountRequests()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.tls != nil {
		ln = tls.NewListener(ln, opts.tls)
	}
	s := fakeengine.Serve(e, ln)
	t.Cleanup(s.Close)
	return &fakeEngine{s}
}

// add creates a busybox container in state (created, running or exited);
// quiet loses its events, as if the event stream lagged. An empty id is
// generated.
func (f *fakeEngine) add(id, name, state, hostConfig string, quiet bool) string {
	spec := fakeengine.Spec{ID: id, Name: name, Image: "busybox", Running: state != "created", Quiet: quiet}
	if hostConfig != "" {
		spec.HostConfig = []byte(hostConfig)
	}
	id, err := f.Create(spec)
	if err == nil && state == "exited" {
		err = f.Stop(id)
	}
	if err != nil {
		panic(err)
	}
	return id
}

// remove deletes a container; quiet loses the events.
func (f *fakeEngine) remove(id string, quiet bool) {
	var err error
	if quiet {
		err = f.RemoveQuietly(id)
	} else {
		err = f.Remove(id, true)
	}
	if err != nil {
		panic(err)
	}
}

// served is how many "METHOD /path" requests the engine answered.
func (f *fakeEngine) served(call string) int { return f.Requests()[call] }
