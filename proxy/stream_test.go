package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"
)

// logs and export are relayed byte for byte: every frame of a long,
// line-per-write stream arrives, with the fleet's headers.
func TestLogsRelayedWhole(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	id := e.fakes["h1"].addContainer("", "chatty", "busybox", "running", nil)
	e.waitCached(id)
	const lines = 20000
	var want bytes.Buffer
	for i := range lines {
		line := fmt.Sprintf("line %d of chatty\n", i)
		if err := e.fakes["h1"].WriteLog(id, 1+i%2, line); err != nil {
			t.Fatal(err)
		}
		want.Write(fakeengine.MuxFrame(1+byte(i%2), line))
	}
	for _, q := range []string{"stdout=1&stderr=1&tail=20000", "stdout=1&stderr=1&tail=20000&follow=0"} {
		r := e.do("GET", "/v1.41/containers/chatty/logs?"+q, nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, want.Bytes()) {
			t.Fatalf("logs?%s: status %d, %d bytes; want 200 and %d bytes", q, r.status, len(r.body), want.Len())
		}
		if ct := r.header.Get("Content-Type"); ct != "application/vnd.docker.multiplexed-stream" {
			t.Errorf("Content-Type %q", ct)
		}
		if v := r.header.Get("Api-Version"); v != "1.41" {
			t.Errorf("Api-Version %q, want the fleet's 1.41", v)
		}
	}
	// An engine's error is relayed as an ordinary answer.
	if r := e.do("GET", "/v1.41/containers/nosuch/logs?stdout=1", nil); r.status != http.StatusNotFound {
		t.Errorf("logs of an unknown container: %s", r)
	}
}

// A client that leaves a followed stream ends the engine's side too.
func TestLogsFollowEndsWithClient(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}})
	f := e.fakes["h1"]
	id := f.addContainer("", "web", "busybox", "running", nil)
	if err := f.WriteLog(id, fakeengine.Stdout, "log of web\n"); err != nil {
		t.Fatal(err)
	}
	e.waitCached(id)
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /v1.41/containers/web/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: clocker\r\n\r\n")
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: %v %v", resp, err)
	}
	frame := fakeengine.MuxFrame(1, "log of web\n")
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(resp.Body, got); err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("first frame %q (%v), want %q", got, err, frame)
	}
	if n := f.LogFollowers(); n != 1 {
		t.Fatalf("%d follows open while the client reads, want 1", n)
	}
	conn.Close()
	waitFor(t, "the engine's stream to end", func() bool { return f.LogFollowers() == 0 })
}
