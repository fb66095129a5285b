package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/tenant"
	"github.com/clocker/clocker/proxy"
)

// inProcess serves the env's front door on an in-memory listener too, with
// the http.Server that serves its TCP listener, and returns the client
// that dials it.
func (e *env) inProcess() *client.Client {
	e.t.Helper()
	ip, err := proxy.NewInProcess()
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = e.ts.Config.Serve(ip.Listener()) }()
	e.t.Cleanup(func() { ip.Close() }) // before e.ts closes
	return ip.Client()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readFrame reads one frame of a multiplexed stream.
func readFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	head := make([]byte, 8)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("frame header: %v", err)
	}
	n := int(head[4])<<24 | int(head[5])<<16 | int(head[6])<<8 | int(head[7])
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("frame body: %v", err)
	}
	return append(head, body...)
}

// Followed logs arrive through the in-process client as they are written,
// not when the stream ends.
func TestInProcessLogsFollow(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	f := e.fakes["h1"]
	id := f.addContainer("", "web", "busybox", "running", nil)
	e.waitCached(id)
	api := e.inProcess()
	if err := f.WriteLog(id, fakeengine.Stdout, "first\n"); err != nil {
		t.Fatal(err)
	}
	logs, err := api.ContainerLogs(testContext(t), "web", client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	for _, line := range []string{"first\n", "second\n", "third\n"} {
		if line != "first\n" {
			if err := f.WriteLog(id, fakeengine.Stdout, line); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := readFrame(t, logs), fakeengine.MuxFrame(fakeengine.Stdout, line); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := f.LogFollowers(); n != 1 {
		t.Errorf("%d follows open, want 1", n)
	}
	logs.Close()
	waitFor(t, "the engine's stream to end", func() bool { return f.LogFollowers() == 0 })
}

// The fleet's events stream through the in-process client as they happen.
func TestInProcessEvents(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	api := e.inProcess()
	streams := e.fakes["h1"].EventStreams()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	res := api.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container")})
	waitFor(t, "the front door to follow h1", func() bool { return e.fakes["h1"].EventStreams() > streams })
	next := func() events.Message {
		t.Helper()
		select {
		case m := <-res.Messages:
			return m
		case err := <-res.Err:
			t.Fatalf("events: %v", err)
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return events.Message{}
	}
	id := e.fakes["h1"].addContainer("", "web", "busybox", "created", nil)
	if m := next(); m.Action != "create" || m.Actor.ID != id || m.Actor.Attributes["node.name"] != "h1" {
		t.Fatalf("got %+v, want the create of %s on h1", m, id)
	}
	if err := e.fakes["h1"].Start(id); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Action != "start" || m.Actor.ID != id {
		t.Fatalf("got %+v, want the start of %s", m, id)
	}
}

// Attach and exec are hijacked through the in-process client as over TCP:
// input and output flow both ways while open, and a half-close of stdin
// reaches the process, whose output that follows arrives, then EOF.
func TestInProcessHijackHalfClose(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	id := e.fakes["h1"].addContainer("", "cat", "busybox", "running", nil)
	e.waitCached(id)
	api := e.inProcess()

	attach := func(t *testing.T, ctx context.Context) client.HijackedResponse {
		res, err := api.ContainerAttach(ctx, "cat", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.HijackedResponse
	}
	exec := func(t *testing.T, ctx context.Context) client.HijackedResponse {
		ex, err := api.ExecCreate(ctx, "cat", client.ExecCreateOptions{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := api.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.HijackedResponse
	}
	for _, tt := range []struct {
		name string
		open func(*testing.T, context.Context) client.HijackedResponse
	}{{"attach", attach}, {"exec", exec}} {
		t.Run(tt.name, func(t *testing.T) {
			hr := tt.open(t, testContext(t))
			defer hr.Close()
			_ = hr.Conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := hr.Conn.Write([]byte("while open\n")); err != nil {
				t.Fatal(err)
			}
			if got, want := readFrame(t, hr.Reader), fakeengine.MuxFrame(fakeengine.Stdout, "while open\n"); !bytes.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			if _, err := hr.Conn.Write([]byte("last\n")); err != nil {
				t.Fatal(err)
			}
			if err := hr.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(hr.Reader)
			if err != nil {
				t.Fatalf("output after stdin's end: %v", err)
			}
			if want := fakeengine.MuxFrame(fakeengine.Stdout, "last\n"); !bytes.Equal(rest, want) {
				t.Fatalf("output after stdin's end %q, want %q then EOF", rest, want)
			}
		})
	}
}

// As's client names its tenant on every request, the hijacked ones too;
// Client() names none.
func TestInProcessAsNamesTenant(t *testing.T) {
	ip, err := proxy.NewInProcess()
	if err != nil {
		t.Fatal(err)
	}
	defer ip.Close()
	seen := make(chan string, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			w.Header().Set("Api-Version", "1.44")
			return
		}
		seen <- r.URL.Path + " " + r.Header.Get(tenant.Header)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	})}
	go func() { _ = srv.Serve(ip.Listener()) }()
	defer srv.Close()
	ctx := testContext(t)
	if ip.As("") != ip.Client() || ip.As("alice") != ip.As("alice") {
		t.Fatal("As: want Client() for no tenant and one client per tenant")
	}
	for _, c := range []struct {
		api  *client.Client
		want string
	}{{ip.As("alice"), "alice"}, {ip.Client(), ""}} {
		if _, err := c.api.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; !strings.HasSuffix(got, "/containers/json "+c.want) {
			t.Errorf("list sent %q, want tenant %q", got, c.want)
		}
	}
	// A hijack (attach) goes its own way; it carries the header too.
	_, _ = ip.As("bob").ContainerAttach(ctx, "x", client.ContainerAttachOptions{Stream: true})
	if got := <-seen; !strings.HasSuffix(got, "/attach bob") {
		t.Errorf("attach sent %q, want tenant bob", got)
	}
}
