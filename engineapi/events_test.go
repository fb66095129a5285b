package engineapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

func TestParseEventsQuery(t *testing.T) {
	tests := []struct {
		name        string
		query       url.Values
		wantErr     string
		wantStatus  int
		wantFilters string
		wantNodes   map[string]bool
		wantUntil   time.Time
	}{
		{name: "empty", query: url.Values{}},
		{name: "since and until", query: url.Values{"since": {"100"}, "until": {"200.5"}}, wantUntil: time.Unix(200, 500000000)},
		{name: "until -1 is none", query: url.Values{"until": {"-1"}}},
		{name: "bad since", query: url.Values{"since": {"abc"}}, wantErr: `strconv.ParseInt: parsing "abc": invalid syntax`, wantStatus: 400},
		{name: "bad until", query: url.Values{"until": {"2020-01-01T00:00:00Z"}}, wantErr: `strconv.ParseInt: parsing "2020-01-01T00:00:00Z": invalid syntax`, wantStatus: 400},
		{name: "bad nanoseconds", query: url.Values{"since": {"1.x"}}, wantErr: `strconv.ParseInt: parsing "x": invalid syntax`, wantStatus: 400},
		{name: "since after until", query: url.Values{"since": {"10"}, "until": {"5"}}, wantErr: "`since` time (10) cannot be after `until` time (5)", wantStatus: 400},
		{name: "filters not JSON", query: url.Values{"filters": {"notjson"}}, wantErr: "invalid character 'o' in literal null (expecting 'u')", wantStatus: 400},
		{name: "filters passed as written", query: url.Values{"filters": {`{"event":{"start":true}}`}}, wantFilters: `{"event":{"start":true}}`},
		{name: "legacy filters passed as written", query: url.Values{"filters": {`{"event":["start"]}`}}, wantFilters: `{"event":["start"]}`},
		{name: "node taken out", query: url.Values{"filters": {`{"event":{"start":true},"node":{"h2":true}}`}},
			wantFilters: `{"event":{"start":true}}`, wantNodes: map[string]bool{"h2": true}},
		{name: "node only", query: url.Values{"filters": {`{"node":{"h1":true,"h3":true}}`}}, wantNodes: map[string]bool{"h1": true, "h3": true}},
		{name: "legacy node", query: url.Values{"filters": {`{"node":["h1"],"type":["container"]}`}},
			wantFilters: `{"type":{"container":true}}`, wantNodes: map[string]bool{"h1": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq, err := ParseEventsQuery(tt.query)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || errdefs.Status(err) != tt.wantStatus {
					t.Fatalf("err %v (status %d), want %q (%d)", err, errdefs.Status(err), tt.wantErr, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if eq.EngineFilters != tt.wantFilters {
				t.Errorf("engine filters %q, want %q", eq.EngineFilters, tt.wantFilters)
			}
			if !reflect.DeepEqual(eq.Nodes, tt.wantNodes) {
				t.Errorf("nodes %v, want %v", eq.Nodes, tt.wantNodes)
			}
			if !eq.UntilTime.Equal(tt.wantUntil) {
				t.Errorf("until %v, want %v", eq.UntilTime, tt.wantUntil)
			}
		})
	}
}

func TestAnnotateEvent(t *testing.T) {
	n := EventNode{Name: "h1", ID: "h1", Addr: "10.0.0.1:2375", IP: "10.0.0.1"}
	tests := []struct {
		name      string
		raw       string
		wantKey   int64
		wantAttrs map[string]string // nil: no Actor expected
		wantErr   bool
	}{
		{name: "container event", raw: `{"status":"start","id":"c1","Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"name":"web"}},"time":5,"timeNano":5000000007}`,
			wantKey:   5000000007,
			wantAttrs: map[string]string{"name": "web", "node.name": "h1", "node.id": "h1", "node.addr": "10.0.0.1:2375", "node.ip": "10.0.0.1"}},
		{name: "actor without attributes", raw: `{"Type":"network","Action":"create","Actor":{"ID":"n1"},"timeNano":9}`,
			wantKey:   9,
			wantAttrs: map[string]string{"node.name": "h1", "node.id": "h1", "node.addr": "10.0.0.1:2375", "node.ip": "10.0.0.1"}},
		{name: "old format has only time", raw: `{"status":"die","id":"c1","from":"busybox","time":7}`, wantKey: 7000000000},
		{name: "not an object", raw: `[1]`, wantErr: true},
		{name: "null", raw: `null`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := AnnotateEvent([]byte(tt.raw), n)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error for %s", tt.raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Key != tt.wantKey {
				t.Errorf("key %d, want %d", ev.Key, tt.wantKey)
			}
			if !strings.HasSuffix(string(ev.Data), "}\n") {
				t.Errorf("event not newline-terminated: %q", ev.Data)
			}
			var got struct {
				Actor *struct {
					ID         string
					Attributes map[string]string
				}
				Node EventNode `json:"node"`
			}
			if err := json.Unmarshal(ev.Data, &got); err != nil {
				t.Fatal(err)
			}
			if got.Node != n {
				t.Errorf("node %+v, want %+v", got.Node, n)
			}
			switch {
			case tt.wantAttrs == nil && got.Actor != nil:
				t.Errorf("an Actor was invented: %+v", got.Actor)
			case tt.wantAttrs != nil && (got.Actor == nil || !reflect.DeepEqual(got.Actor.Attributes, tt.wantAttrs)):
				t.Errorf("actor %+v, want attributes %v", got.Actor, tt.wantAttrs)
			}
			var orig, back map[string]any
			_ = json.Unmarshal([]byte(tt.raw), &orig)
			_ = json.Unmarshal(ev.Data, &back)
			for k, v := range orig {
				if k != "Actor" && !reflect.DeepEqual(back[k], v) {
					t.Errorf("field %s changed: %v → %v", k, v, back[k])
				}
			}
		})
	}
}

// sources makes closed channels holding events with the given keys; the
// data of each is "s<source>:<key>".
func sources(keys ...[]int64) []<-chan Event {
	var out []<-chan Event
	for i, ks := range keys {
		ch := make(chan Event, len(ks))
		for _, k := range ks {
			ch <- Event{Data: []byte(fmt.Sprintf("s%d:%d", i, k)), Key: k}
		}
		close(ch)
		out = append(out, ch)
	}
	return out
}

func collect(t *testing.T, merge func(context.Context, []<-chan Event, func([]byte) error) error, srcs []<-chan Event) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []string
	err := merge(ctx, srcs, func(b []byte) error { got = append(got, string(b)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMergeOrdered(t *testing.T) {
	tests := []struct {
		name string
		keys [][]int64
		want []string
	}{
		{name: "no sources", keys: nil, want: nil},
		{name: "empty sources", keys: [][]int64{{}, {}}, want: nil},
		{name: "one source", keys: [][]int64{{1, 2, 3}}, want: []string{"s0:1", "s0:2", "s0:3"}},
		{name: "interleaved", keys: [][]int64{{1, 4, 7}, {2, 5, 8}, {3, 6, 9}},
			want: []string{"s0:1", "s1:2", "s2:3", "s0:4", "s1:5", "s2:6", "s0:7", "s1:8", "s2:9"}},
		{name: "one host earlier than all", keys: [][]int64{{10, 11}, {1, 2, 3}},
			want: []string{"s1:1", "s1:2", "s1:3", "s0:10", "s0:11"}},
		{name: "ties go to the lower source", keys: [][]int64{{5, 6}, {5, 6}},
			want: []string{"s0:5", "s1:5", "s0:6", "s1:6"}},
		{name: "a source ends early", keys: [][]int64{{1}, {2, 3, 4}, {}},
			want: []string{"s0:1", "s1:2", "s1:3", "s1:4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, MergeOrdered, sources(tt.keys...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMergeOrderedWaitsForEverySource: an event is held until every open
// source has a later one or has ended, so that a slow host's earlier event
// still comes first.
func TestMergeOrderedWaitsForEverySource(t *testing.T) {
	a, b := make(chan Event, 4), make(chan Event, 4)
	got := make(chan string, 8)
	done := make(chan error, 1)
	go func() {
		done <- MergeOrdered(context.Background(), []<-chan Event{a, b}, func(d []byte) error { got <- string(d); return nil })
	}()
	a <- Event{Data: []byte("a5"), Key: 5}
	select {
	case g := <-got:
		t.Fatalf("%s written before host b said anything", g)
	case <-time.After(100 * time.Millisecond):
	}
	b <- Event{Data: []byte("b3"), Key: 3}
	if g := <-got; g != "b3" {
		t.Fatalf("first %s, want b3", g)
	}
	close(b)
	if g := <-got; g != "a5" {
		t.Fatalf("second %s, want a5", g)
	}
	close(a)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMergeLive(t *testing.T) {
	tests := []struct {
		name string
		keys [][]int64
	}{
		{name: "no sources", keys: nil},
		{name: "three sources", keys: [][]int64{{1, 4}, {9, 2}, {3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, MergeLive, sources(tt.keys...))
			// Arrival order across sources is free; each source's own order
			// is kept and nothing is lost.
			var want int
			last := map[string]int{}
			for _, ks := range tt.keys {
				want += len(ks)
			}
			if len(got) != want {
				t.Fatalf("%d events, want %d: %v", len(got), want, got)
			}
			pos := map[string]int{}
			for i, g := range got {
				pos[g] = i
			}
			for s, ks := range tt.keys {
				for j, k := range ks {
					p := pos[fmt.Sprintf("s%d:%d", s, k)]
					if j > 0 && p < last[fmt.Sprint(s)] {
						t.Errorf("source %d out of its own order: %v", s, got)
					}
					last[fmt.Sprint(s)] = p
				}
			}
		})
	}
}

func TestFleetEventSelection(t *testing.T) {
	at := time.Unix(100, 0)
	ev := hosts.FleetEvent{Action: "engine_connect", Host: "h1", URL: "tcp://10.0.0.1:2375", Time: at}
	tests := []struct {
		name     string
		query    url.Values
		wanted   bool // FleetEventsWanted
		selected bool // FleetEventsWanted and SelectsFleetEvent(ev)
	}{
		{name: "no filters", query: url.Values{}, wanted: true, selected: true},
		{name: "type engine", query: url.Values{"filters": {`{"type":{"engine":true}}`}}, wanted: true, selected: true},
		{name: "type container", query: url.Values{"filters": {`{"type":{"container":true}}`}}},
		{name: "a container filter excludes them", query: url.Values{"filters": {`{"container":{"web":true}}`}}},
		{name: "event matches", query: url.Values{"filters": {`{"event":{"engine_connect":true}}`}}, wanted: true, selected: true},
		{name: "event differs", query: url.Values{"filters": {`{"event":{"engine_disconnect":true}}`}}, wanted: true},
		{name: "node matches", query: url.Values{"filters": {`{"node":{"h1":true}}`}}, wanted: true, selected: true},
		{name: "node differs", query: url.Values{"filters": {`{"node":{"h2":true}}`}}, wanted: true},
		{name: "since at the event", query: url.Values{"since": {"100"}}, wanted: true, selected: true},
		{name: "since after the event", query: url.Values{"since": {"100.1"}}, wanted: true},
		{name: "until at the event", query: url.Values{"until": {"100"}}, wanted: true, selected: true},
		{name: "until before the event", query: url.Values{"since": {"1"}, "until": {"99"}}, wanted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq, err := ParseEventsQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := eq.FleetEventsWanted(); got != tt.wanted {
				t.Errorf("FleetEventsWanted = %v, want %v", got, tt.wanted)
			}
			if got := eq.FleetEventsWanted() && eq.SelectsFleetEvent(ev); got != tt.selected {
				t.Errorf("SelectsFleetEvent = %v, want %v", got, tt.selected)
			}
		})
	}
}

func TestFleetEventJSON(t *testing.T) {
	n := EventNode{Name: "h1", ID: "h1", Addr: "10.0.0.1:2375", IP: "10.0.0.1"}
	ev := hosts.FleetEvent{Action: "engine_connect", Host: "h1", URL: "tcp://10.0.0.1:2375", Time: time.Unix(5, 7)}
	got, err := FleetEventJSON(ev, n)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != 5000000007 || !strings.HasSuffix(string(got.Data), "}\n") {
		t.Fatalf("key %d, data %q", got.Key, got.Data)
	}
	var out struct {
		Status, ID, From, Type, Action, Scope string
		Time, TimeNano                        int64
		Actor                                 struct {
			ID         string
			Attributes map[string]string
		}
		Node EventNode `json:"node"`
	}
	if err := json.Unmarshal(got.Data, &out); err != nil {
		t.Fatal(err)
	}
	wantAttrs := map[string]string{"name": "h1", "url": "tcp://10.0.0.1:2375",
		"node.name": "h1", "node.id": "h1", "node.addr": "10.0.0.1:2375", "node.ip": "10.0.0.1"}
	if out.Status != "engine_connect" || out.ID != "h1" || out.From != "clocker" || out.Type != "engine" ||
		out.Action != "engine_connect" || out.Scope != "local" || out.Time != 5 || out.TimeNano != 5000000007 ||
		out.Actor.ID != "h1" || !reflect.DeepEqual(out.Actor.Attributes, wantAttrs) || out.Node != n {
		t.Errorf("got %+v", out)
	}
}
