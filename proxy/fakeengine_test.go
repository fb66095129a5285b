package proxy_test

// The proxy's tests run against internal/fakeengine (the e2e suite covers
// real engines); this adapter starts one per host of a test, recording the
// calls it serves, and names the steps the tests take on it.

import (
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/fakeengine"
)

// fakeOpts configure one fake engine (see fakeengine.Options).
type fakeOpts struct {
	name     string   // the engine's own name (GET /info Name)
	images   []string // image references present ("busybox" = "busybox:latest")
	volumes  []string
	networks []string
	labels   []string // engine labels
	maxAPI   string   // default 1.41
	minAPI   string   // default 1.12
	version  string   // default 20.10.24
	ncpu     int      // default 2
	memTotal int64    // default 2 GiB
}

type fakeEngine struct {
	*fakeengine.Server
	Addr string // 127.0.0.1:PORT
}

func newFakeEngine(t *testing.T, o fakeOpts) *fakeEngine {
	t.Helper()
	e := fakeengine.New(fakeengine.Options{Name: o.name, Images: o.images, Volumes: o.volumes, Networks: o.networks,
		Labels: o.labels, MaxAPI: o.maxAPI, MinAPI: o.minAPI, Version: o.version, NCPU: o.ncpu, MemTotal: o.memTotal})
	e.RecordCalls()
	s, err := fakeengine.Listen(e, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{Server: s, Addr: strings.TrimPrefix(s.URL, "tcp://")}
	t.Cleanup(func() { f.Close() }) // the Server of the moment (see restart)
	return f
}

// addContainer creates a container behind Clocker's back (the engine's
// event stream tells the fleet), in state created or running.
func (f *fakeEngine) addContainer(id, name, image, state string, labels map[string]string) string {
	return f.add(fakeengine.Spec{ID: id, Name: name, Image: image, Labels: labels, Running: state == "running"})
}

// addTTYContainer is addContainer with a TTY: hijacked streams are raw.
func (f *fakeEngine) addTTYContainer(name, image, state string) string {
	return f.add(fakeengine.Spec{Name: name, Image: image, Tty: true, Running: state == "running"})
}

func (f *fakeEngine) add(s fakeengine.Spec) string {
	id, err := f.Create(s)
	if err != nil {
		panic(err)
	}
	return id
}
