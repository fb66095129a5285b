package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/scheduler"
)

// --- the handlers, against small fake engines ------------------------------------

// evEngine is a fake engine that keeps its events (for since and until).
// The tests look at the client-facing event streams, not the fleet's own
// (type filters, no since or until).
type evEngine struct {
	*fakeengine.Server
	name string
}

func newEvEngine(t *testing.T, name string) *evEngine {
	t.Helper()
	return &evEngine{Server: serveFake(t, fakeengine.Options{Name: name, EventHistory: 256, Images: []string{"busybox"}}), name: name}
}

func (e *evEngine) url() string { return e.URL }

func fleetOwn(q url.Values) bool {
	return strings.Contains(q.Get("filters"), `"type"`) && q.Get("since") == "" && q.Get("until") == ""
}

// event makes an engine event at the given time.
func event(action, id string, nano int64) fakeengine.Event {
	return fakeengine.Event{Type: "container", Action: action, ID: id,
		Attributes: map[string]string{"image": "busybox", "name": id}, Time: time.Unix(0, nano)}
}

// publish sends an event to the live streams and keeps it.
func (e *evEngine) publish(ev fakeengine.Event) { e.Publish(ev) }

// breakStreams cuts the client-facing event streams, as a dying engine
// would.
func (e *evEngine) breakStreams() {
	e.DropEventStreamsWhere(func(q url.Values) bool { return !fleetOwn(q) })
}

// subscriptions are the queries of the client-facing GET /events so far.
func (e *evEngine) subscriptions() []url.Values {
	var out []url.Values
	for _, c := range e.Calls(http.MethodGet, "/events") {
		if !fleetOwn(c.Query) {
			out = append(out, c.Query)
		}
	}
	return out
}

// liveSubscribers counts the client-facing event streams open now.
func (e *evEngine) liveSubscribers() int {
	n := 0
	for _, q := range e.EventStreamQueries() {
		if !fleetOwn(q) {
			n++
		}
	}
	return n
}

// refuse makes the client-facing GET /events answer 400 with msg ("":
// answer again).
func (e *evEngine) refuse(msg string) {
	if msg == "" {
		e.Intercept(nil)
		return
	}
	e.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, "/events") && !fleetOwn(r.URL.Query()) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// evFleet is a proxy in front of fake engines named h1..hN.
func evFleet(t *testing.T, n int) (*httptest.Server, []*evEngine) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var engines []*evEngine
	for i := 1; i <= n; i++ {
		engines = append(engines, newEvEngine(t, fmt.Sprintf("h%d", i)))
	}
	reg := prometheus.NewRegistry()
	fleet := hosts.NewFleet(nil, log, hosts.NewMetrics(reg))
	t.Cleanup(fleet.Close) // before the engines close: cleanups run last first
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range engines {
		if _, err := fleet.Add(ctx, hosts.Record{Name: e.name, URL: e.url()}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(NewServer(fleet, strategy, log, 1<<20, reg).Handler())
	t.Cleanup(ts.Close)
	return ts, engines
}

type gotEvent struct {
	Type     string
	Action   string
	TimeNano int64
	Actor    struct {
		ID         string
		Attributes map[string]string
	}
}

func get(t *testing.T, ctx context.Context, base, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readEvents(t *testing.T, body io.Reader) []gotEvent {
	t.Helper()
	var out []gotEvent
	dec := json.NewDecoder(body)
	for {
		var ev gotEvent
		if err := dec.Decode(&ev); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

func TestEventsHandlerUntil(t *testing.T) {
	ts, engines := evFleet(t, 3)
	// On a whole second: the events (base plus up to 11 ms) must all fall
	// before until (base's second plus one), whatever the clock reads.
	base := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	// Each host's own events are in order; across hosts they interleave.
	for i, e := range engines {
		for j := 0; j < 4; j++ {
			e.publish(event("start", fmt.Sprintf("%s-c%d", e.name, j), base+int64(j*3+i)*1e6))
		}
	}
	// A second after those events: the fleet's own events (its hosts added
	// and connected just now) fall outside.
	until := strconv.FormatInt(base/1e9+1, 10)
	tests := []struct {
		name      string
		query     string
		wantHosts []string // in the expected order
		wantSeen  string   // the filters every engine must be asked with
	}{
		{name: "all hosts, ordered", query: "?since=0&until=" + until,
			wantHosts: []string{"h1", "h2", "h3", "h1", "h2", "h3", "h1", "h2", "h3", "h1", "h2", "h3"}},
		{name: "node filter picks a host and is not passed on", query: "?until=" + until + "&filters=" + url.QueryEscape(`{"node":{"h2":true},"event":{"start":true}}`),
			wantHosts: []string{"h2", "h2", "h2", "h2"}, wantSeen: `{"event":{"start":true}}`},
		{name: "node filter naming no host", query: "?until=" + until + "&filters=" + url.QueryEscape(`{"node":{"nope":true}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]int{}
			for _, e := range engines {
				before[e.name] = len(e.subscriptions())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp := get(t, ctx, ts.URL, "/v1.41/events"+tt.query)
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
			}
			evs := readEvents(t, resp.Body) // ends: every host's stream ended
			var gotHosts []string
			var last int64
			for _, ev := range evs {
				gotHosts = append(gotHosts, ev.Actor.Attributes["node.name"])
				if ev.TimeNano < last {
					t.Errorf("events out of order: %d after %d", ev.TimeNano, last)
				}
				last = ev.TimeNano
				a := ev.Actor.Attributes
				if a["node.id"] != a["node.name"] || !strings.HasPrefix(a["node.addr"], "127.0.0.1:") || a["node.ip"] != "127.0.0.1" {
					t.Errorf("node attributes %v", a)
				}
			}
			if !reflect.DeepEqual(gotHosts, tt.wantHosts) {
				t.Errorf("hosts %v, want %v", gotHosts, tt.wantHosts)
			}
			for _, e := range engines {
				subs := e.subscriptions()[before[e.name]:]
				for _, q := range subs {
					if q.Get("filters") != tt.wantSeen || q.Get("until") != until {
						t.Errorf("%s asked with %v", e.name, q)
					}
				}
			}
		})
	}
}

func TestEventsHandlerBadInput(t *testing.T) {
	ts, engines := evFleet(t, 2)
	tests := []struct {
		name    string
		query   string
		refuse  string // the engines' own refusal
		want    string
		askedOK bool // whether the engines may be asked at all
	}{
		{name: "bad since", query: "?since=yesterday", want: `strconv.ParseInt: parsing "yesterday": invalid syntax`},
		{name: "since after until", query: "?since=20&until=10", want: "`since` time (20) cannot be after `until` time (10)"},
		{name: "filters not JSON", query: "?filters=%7Bx", want: "invalid character 'x' looking for beginning of object key string"},
		{name: "the engine's refusal is passed on", query: "?until=1&filters=" + url.QueryEscape(`{"type":{"bogus":true}}`),
			refuse: "Invalid filter 'bogus'", want: "Invalid filter 'bogus'", askedOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(engines[0].subscriptions())
			for _, e := range engines {
				e.refuse(tt.refuse)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp := get(t, ctx, ts.URL, "/events"+tt.query)
			defer resp.Body.Close()
			var m struct{ Message string }
			_ = json.NewDecoder(resp.Body).Decode(&m)
			if resp.StatusCode != 400 || m.Message != tt.want {
				t.Fatalf("%d %q, want 400 %q", resp.StatusCode, m.Message, tt.want)
			}
			if !tt.askedOK && len(engines[0].subscriptions()) != before {
				t.Errorf("the engines were asked despite the bad query")
			}
		})
	}
}

func TestEventsHandlerLive(t *testing.T) {
	ts, engines := evFleet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	resp := get(t, ctx, ts.URL, "/events")
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The headers wait for every host's subscription, never for a host's
	// timeout nor for an event: a bound a loaded machine cannot reach.
	if d := time.Since(start); d >= eventsHeaderTimeout {
		t.Errorf("headers took %s", d)
	}
	waitSubscribed := func(e *evEngine, n int) {
		t.Helper()
		for time.Since(start) < 10*time.Second {
			if e.liveSubscribers() >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: no live subscriber", e.name)
	}
	for _, e := range engines {
		waitSubscribed(e, 1)
	}
	br := bufio.NewReader(resp.Body)
	next := func() gotEvent {
		t.Helper()
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		var ev gotEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	now := time.Now().UnixNano()
	engines[1].publish(event("create", "x1", now))
	if ev := next(); ev.Actor.ID != "x1" || ev.Actor.Attributes["node.name"] != "h2" {
		t.Fatalf("got %+v", ev)
	}
	// Arrival order, not time order, when live: a later event is not held
	// back for an earlier one that may come.
	engines[2].publish(event("start", "late", now+20))
	if ev := next(); ev.Actor.ID != "late" {
		t.Fatalf("got %+v", ev)
	}
	engines[0].publish(event("start", "early", now+10))
	if ev := next(); ev.Actor.ID != "early" {
		t.Fatalf("got %+v", ev)
	}
	// A host whose stream breaks does not end the client's stream, and is
	// followed again from its last event, without repeats.
	engines[0].breakStreams()
	engines[1].publish(event("die", "x1", now+30))
	if ev := next(); ev.Actor.ID != "x1" || ev.Action != "die" {
		t.Fatalf("got %+v", ev)
	}
	waitSubscribed(engines[0], 1)
	engines[0].publish(event("die", "early", time.Now().UnixNano()))
	if ev := next(); ev.Actor.ID != "early" || ev.Action != "die" || ev.Actor.Attributes["node.name"] != "h1" {
		t.Fatalf("after the break got %+v", ev)
	}
	subs := engines[0].subscriptions()
	if len(subs) < 2 || subs[len(subs)-1].Get("since") != fmt.Sprintf("%d.%09d", (now+10)/1e9, (now+10)%1e9) {
		t.Errorf("followed again with %v, want since the last event", subs)
	}
}

func TestSystemDFHandler(t *testing.T) {
	ts, engines := evFleet(t, 2)
	// Both hold busybox (the same image); h1 a container of it, h2 a volume.
	if _, err := engines[0].Create(fakeengine.Spec{Name: "c1", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	engines[1].AddVolume("v", nil)
	var layers int64
	for _, e := range engines {
		resp, err := http.Get("http://" + strings.TrimPrefix(e.URL, "tcp://") + "/v1.41/system/df")
		if err != nil {
			t.Fatal(err)
		}
		var own struct{ LayersSize int64 }
		err = json.NewDecoder(resp.Body).Decode(&own)
		resp.Body.Close()
		if err != nil || own.LayersSize <= 0 {
			t.Fatalf("%s df: %+v %v", e.name, own, err)
		}
		layers += own.LayersSize
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := get(t, ctx, ts.URL, "/v1.41/system/df")
	defer resp.Body.Close()
	var du struct {
		LayersSize int64
		Images     []struct {
			ID         string `json:"Id"`
			Containers int
		}
		Containers []json.RawMessage
		Volumes    []json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&du); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if du.LayersSize != layers || len(du.Images) != 1 || du.Images[0].Containers != 1 || len(du.Containers) != 1 || len(du.Volumes) != 1 {
		t.Fatalf("merged %+v", du)
	}
}

// Clocker's own events: hosts added, connected and removed, with the host
// as actor and node; type, event and node filters select them, any other
// filter leaves them out.
func TestEventsHandlerFleetEvents(t *testing.T) {
	ts, _ := evFleet(t, 2)
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	fleetEvents := func(query string) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp := get(t, ctx, ts.URL, "/v1.41/events?since=0&until="+until+query)
		defer resp.Body.Close()
		var out []string
		for _, ev := range readEvents(t, resp.Body) {
			if ev.Type == "engine" {
				if ev.Actor.ID != ev.Actor.Attributes["node.name"] || ev.Actor.Attributes["url"] == "" {
					t.Errorf("engine event actor %+v", ev.Actor)
				}
				out = append(out, ev.Action+" "+ev.Actor.ID)
			}
		}
		sort.Strings(out)
		return out
	}
	for _, tt := range []struct {
		filters string
		want    []string
	}{
		{"", []string{"add h1", "add h2", "connect h1", "connect h2"}},
		{`{"type":{"engine":true}}`, []string{"add h1", "add h2", "connect h1", "connect h2"}},
		{`{"event":{"connect":true},"node":{"h2":true}}`, []string{"connect h2"}},
		{`{"type":{"container":true}}`, nil},
		{`{"container":{"web":true}}`, nil},
	} {
		q := ""
		if tt.filters != "" {
			q = "&filters=" + url.QueryEscape(tt.filters)
		}
		if got := fleetEvents(q); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("filters %s: %v, want %v", tt.filters, got, tt.want)
		}
	}

	// Live: a host removed while the stream is open.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := get(t, ctx, ts.URL, "/v1.41/events?filters="+url.QueryEscape(`{"type":{"engine":true}}`))
	defer resp.Body.Close()
	for _, step := range []struct{ method, path string }{
		{http.MethodPost, "/v1/fleet/hosts/h2/drain"},
		{http.MethodDelete, "/v1/fleet/hosts/h2"},
	} {
		req, _ := http.NewRequestWithContext(ctx, step.method, ts.URL+step.path, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil || r.StatusCode >= 300 {
			t.Fatalf("%s %s: %v %v", step.method, step.path, r, err)
		}
		r.Body.Close()
	}
	var ev gotEvent
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil || ev.Type != "engine" || ev.Action != "remove" || ev.Actor.ID != "h2" {
		t.Errorf("live stream got %+v (%v), want engine remove h2", ev, err)
	}
}
