package fakeengine

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Quiet creations and removals publish nothing; Emit publishes without a
// change; a given ID is kept.
func TestQuietChangesAndEmit(t *testing.T) {
	s, cli := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := cli.Events(ctx, client.EventsListOptions{})
	waitSubscribers(t, s.Engine, 1)

	id := strings.Repeat("ab", 32)
	if got, err := s.Create(Spec{ID: id, Name: "hidden", Image: "busybox", Running: true, Quiet: true}); err != nil || got != id {
		t.Fatalf("Create with ID = %q, %v", got, err)
	}
	if _, err := s.Create(Spec{ID: id, Name: "again", Image: "busybox"}); err == nil {
		t.Error("a taken ID was given again")
	}
	if s.State(id) != StateRunning {
		t.Errorf("quiet container is %q, want running", s.State(id))
	}
	if err := s.RemoveQuietly(id); err != nil || s.Len() != 0 {
		t.Fatalf("RemoveQuietly: %v, %d left", err, s.Len())
	}
	loud, _ := s.Create(Spec{Name: "loud", Image: "busybox"})
	if err := s.Emit(loud, "exec_start: sh"); err != nil {
		t.Fatal(err)
	}
	if created, ok := s.Created(loud); !ok || created.IsZero() {
		t.Errorf("Created = %v, %v", created, ok)
	}
	for _, want := range []events.Action{"create", "exec_start: sh"} {
		select {
		case m := <-stream.Messages:
			if m.Action != want || m.Actor.ID != loud {
				t.Errorf("event %s of %.12s, want %s of %.12s (the quiet ones lost)", m.Action, m.Actor.ID, want, loud)
			}
		case <-ctx.Done():
			t.Fatalf("no %s event", want)
		}
	}
	if s.State(loud) != StateCreated {
		t.Errorf("Emit changed the state to %q", s.State(loud))
	}
}

// PutImage keeps the given ID, tags and digests, found by each.
func TestPutImage(t *testing.T) {
	s, cli := start(t, Options{Name: "h1"})
	const id = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741"
	digest := "busybox@sha256:" + strings.Repeat("1", 64)
	s.PutImage(Image{ID: id, RepoTags: []string{"busybox", "registry.local:5000/team/app:1.2"}, RepoDigests: []string{digest}})
	list, err := cli.ImageList(context.Background(), client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].ID != id || len(list.Items[0].RepoTags) != 2 ||
		len(list.Items[0].RepoDigests) != 1 || list.Items[0].RepoDigests[0] != digest {
		t.Fatalf("images = %+v", list.Items)
	}
	for _, ref := range []string{"busybox:latest", "registry.local:5000/team/app:1.2", digest, id, "3f57d9401f8d"} {
		if code, body := get(t, s, "/images/"+ref+"/json"); code != 200 || !strings.Contains(body, id) {
			t.Errorf("inspect %s: %d %s", ref, code, body)
		}
	}
}

// The event streams can be counted and dropped; the client reconnects.
func TestDropEventStreams(t *testing.T) {
	s, cli := start(t, Options{Name: "h1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := cli.Events(ctx, client.EventsListOptions{})
	waitSubscribers(t, s.Engine, 1)
	if n := s.EventStreams(); n != 1 {
		t.Fatalf("%d streams, want 1", n)
	}
	s.DropEventStreams()
	select {
	case err := <-stream.Err:
		if err == nil {
			t.Error("stream ended without an error")
		}
	case <-ctx.Done():
		t.Fatal("the stream was not dropped")
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.EventStreams() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream is still counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An Interceptor sees requests first; Hang holds all but the event stream
// until the client gives up; requests it keeps are not counted.
func TestInterceptAndHang(t *testing.T) {
	s, _ := start(t, Options{Name: "h1"})
	s.CountRequests()
	s.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, "/info") {
			writeError(w, errf(500, "injected"))
			return
		}
		next.ServeHTTP(w, r)
	})
	if code, body := get(t, s, "/v1.41/info"); code != 500 || !strings.Contains(body, `"injected"`) {
		t.Errorf("intercepted info: %d %s", code, body)
	}
	if code, _ := get(t, s, "/_ping"); code != 200 {
		t.Errorf("ping passed on: %d", code)
	}
	s.Hang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimPrefix(s.URL, "tcp://")+"/_ping", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("a hung engine answered a ping")
	}
	ectx, ecancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ecancel()
	req, _ = http.NewRequestWithContext(ectx, http.MethodGet, "http://"+strings.TrimPrefix(s.URL, "tcp://")+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events while hung: %v", err)
	}
	resp.Body.Close()
	s.Hang(false)
	if code, _ := get(t, s, "/info"); code != 200 {
		t.Errorf("info after Hang(false): %d", code)
	}
	got := s.Requests()
	if got["GET /_ping"] != 1 || got["GET /info"] != 1 || got["GET /events"] != 1 {
		t.Errorf("counted %v, want one ping, one info (the injected and hung ones not), one events", got)
	}
}
