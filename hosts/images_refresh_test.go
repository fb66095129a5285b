package hosts_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
)

// gatedEngine serves an internal/fakeengine Engine and can hold one image
// list: the answer is taken from the engine when the request comes, then
// held until released, so that the test changes the engine while a
// refresh is in flight and knows what that refresh saw.
type gatedEngine struct {
	*fakeengine.Engine
	URL string

	// muteImageEvents drops image events from the event streams: only
	// explicit refreshes then read the list.
	muteImageEvents bool

	mu   sync.Mutex
	hold chan struct{} // the next list waits for it
	held chan struct{} // closed once that list is held
}

func newGatedEngine(t *testing.T, name string, muteImageEvents bool) *gatedEngine {
	t.Helper()
	g := &gatedEngine{Engine: fakeengine.New(fakeengine.Options{Name: name, Images: []string{"busybox"}}),
		muteImageEvents: muteImageEvents}
	ts := httptest.NewServer(g)
	g.URL = "tcp://" + ts.Listener.Addr().String()
	// Cleanups run last first: the fleet (registered later) goes, then the
	// streams end, then the server closes.
	t.Cleanup(ts.Close)
	t.Cleanup(g.Shutdown)
	return g
}

// holdNextList makes the next GET /images/json wait; held is closed when
// it does, release lets it answer (once; also at the test's end).
func (g *gatedEngine) holdNextList(t *testing.T) (held <-chan struct{}, release func()) {
	hold, h := make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.hold, g.held = hold, h
	g.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return h, release
}

func (g *gatedEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/images/json") {
		g.mu.Lock()
		hold, held := g.hold, g.held
		g.hold, g.held = nil, nil
		g.mu.Unlock()
		if hold != nil {
			rec := httptest.NewRecorder()
			g.Engine.ServeHTTP(rec, r) // what the engine holds now
			close(held)
			<-hold
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
	}
	if g.muteImageEvents && strings.HasSuffix(r.URL.Path, "/events") {
		w = noImageEvents{w}
	}
	g.Engine.ServeHTTP(w, r)
}

// noImageEvents drops the image events of a stream (one message a write).
type noImageEvents struct{ http.ResponseWriter }

func (w noImageEvents) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(`"Type":"image"`)) {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w noImageEvents) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// gatedFleet is a fleet of one host on g.
func gatedFleet(t *testing.T, g *gatedEngine) *hosts.Host {
	t.Helper()
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(fleet.Close)
	ctx := testCtx(t)
	h, err := fleet.Add(ctx, hosts.Record{Name: g.Name(), URL: g.URL}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := h.HasImage("busybox"); !has {
		t.Fatal("index not filled on sync")
	}
	g.CountRequests()
	return h
}

func (g *gatedEngine) lists() int { return g.Requests()["GET /images/json"] }

func waitClosed(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A burst of image events (docker load of 20 images) lists the images
// twice, not 20 times: once for the first event, once after it for all
// the events that came meanwhile; the index ends with every image.
func TestImageEventsCoalesced(t *testing.T) {
	g := newGatedEngine(t, "h1", false)
	h := gatedFleet(t, g)
	held, release := g.holdNextList(t)
	g.AddImage("img0:1")
	waitClosed(t, "the first event's list", held)
	for i := 1; i < 20; i++ {
		g.AddImage(fmt.Sprintf("img%d:1", i))
	}
	// The stream is in order and applied one message at a time: once the
	// container that follows the images is cached, every image event has
	// been applied.
	id, err := g.Create(fakeengine.Spec{Name: "marker", Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the marker container", func() bool { _, ok := h.Container(id); return ok })
	if !h.ImageRefreshPending() {
		t.Fatal("no refresh pending after the events that came during a list")
	}
	release()
	all := func() bool {
		for i := range 20 {
			if has, _ := h.HasImage(fmt.Sprintf("img%d:1", i)); !has {
				return false
			}
		}
		return true
	}
	waitFor(t, "every image in the index", all)
	// Only the second list can have given img1..img19: it has ended.
	if n := g.lists(); n != 2 {
		t.Errorf("20 image events: %d image lists, want 2", n)
	}
}

// An image event during a running list is not lost: one more list runs
// after it.
func TestImageEventDuringListNotLost(t *testing.T) {
	g := newGatedEngine(t, "h1", false)
	h := gatedFleet(t, g)
	held, release := g.holdNextList(t)
	g.AddImage("first:1")
	waitClosed(t, "the first event's list", held)
	g.AddImage("late:1") // the held list does not have it
	waitFor(t, "the late event to request a refresh", h.ImageRefreshPending)
	release()
	waitFor(t, "the late image in the index", func() bool { has, _ := h.HasImage("late:1"); return has })
	if n := g.lists(); n != 2 {
		t.Errorf("%d image lists, want 2", n)
	}
}

// RefreshImages waits for a list that started after the call: a call made
// while a list runs is answered by the next one, not by the running one
// (which may predate the change the caller made).
func TestRefreshImagesWaitsForALaterList(t *testing.T) {
	g := newGatedEngine(t, "h1", true) // only the calls below list
	h := gatedFleet(t, g)
	ctx := testCtx(t)
	held, release := g.holdNextList(t)
	first := make(chan error, 1)
	go func() { first <- h.RefreshImages(ctx) }()
	waitClosed(t, "the first list", held)
	g.AddImage("late:1") // after the held answer was taken
	second := make(chan error, 1)
	go func() { second <- h.RefreshImages(ctx) }()
	waitFor(t, "the second call to request a list", h.ImageRefreshPending)
	release()
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if has, _ := h.HasImage("late:1"); !has {
		t.Error("RefreshImages returned with an index older than the call")
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := g.lists(); n != 2 {
		t.Errorf("%d image lists, want 2", n)
	}
	// Idle: a call lists once more and waits for it.
	g.AddImage("idle:1")
	if err := h.RefreshImages(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := h.HasImage("idle:1"); !has {
		t.Error("RefreshImages on an idle host returned before listing")
	}
	if n := g.lists(); n != 3 {
		t.Errorf("%d image lists, want 3", n)
	}
}

// Concurrent calls share lists: ten callers during a held list cause one
// more list, and all of them see the change made before their calls.
func TestRefreshImagesConcurrentCallsShareOneList(t *testing.T) {
	g := newGatedEngine(t, "h1", true)
	h := gatedFleet(t, g)
	ctx := testCtx(t)
	held, release := g.holdNextList(t)
	go func() { _ = h.RefreshImages(ctx) }()
	waitClosed(t, "the first list", held)
	waitFor(t, "the first call to wait", func() bool { return h.ImageRefreshWaiters() == 1 })
	g.AddImage("late:1")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			err := h.RefreshImages(ctx)
			if has, _ := h.HasImage("late:1"); err == nil && !has {
				err = fmt.Errorf("returned without the late image")
			}
			errs <- err
		})
	}
	waitFor(t, "every call to wait", func() bool { return h.ImageRefreshWaiters() == 11 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := g.lists(); n != 2 {
		t.Errorf("%d image lists for 11 calls, want 2", n)
	}
}

// A caller that gives up returns its context's error; the list goes on.
func TestRefreshImagesCallerGivesUp(t *testing.T) {
	g := newGatedEngine(t, "h1", true)
	h := gatedFleet(t, g)
	held, release := g.holdNextList(t)
	g.AddImage("late:1") // in the held answer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.RefreshImages(ctx) }()
	waitClosed(t, "the list", held)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("RefreshImages = %v, want context.Canceled", err)
	}
	release()
	waitFor(t, "the list to fill the index", func() bool { has, _ := h.HasImage("late:1"); return has })
	if n := g.lists(); n != 1 {
		t.Errorf("%d image lists, want 1", n)
	}
}
