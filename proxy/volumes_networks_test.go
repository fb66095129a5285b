package proxy

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSplitHostFilters(t *testing.T) {
	tests := []struct {
		name         string
		raw          string
		withNegation bool
		wantFilters  string // "" or JSON compared as a value
		wantActive   bool
		wantOnly     []string // nil: any host
		wantNot      []string
		wantNone     bool
		allowed      map[string]bool // host → allowed
	}{
		{name: "no filters", raw: "", allowed: map[string]bool{"h1": true}},
		{name: "other filters untouched", raw: `{"name":{"db":true}}`, wantFilters: `{"name":{"db":true}}`,
			allowed: map[string]bool{"h1": true, "h2": true}},
		{name: "unparsable left to the engines", raw: `{nope`, wantFilters: `{nope`, allowed: map[string]bool{"h1": true}},
		{name: "one host", raw: `{"label":{"io.clocker.host=h2":true}}`, wantActive: true, wantOnly: []string{"h2"},
			allowed: map[string]bool{"h1": false, "h2": true}},
		{name: "legacy list form", raw: `{"label":["io.clocker.host=h2"]}`, wantActive: true, wantOnly: []string{"h2"},
			allowed: map[string]bool{"h1": false, "h2": true}},
		{name: "host and another label", raw: `{"label":{"io.clocker.host=h1":true,"tier=db":true},"name":{"x":true}}`,
			wantFilters: `{"label":{"tier=db":true},"name":{"x":true}}`, wantActive: true, wantOnly: []string{"h1"},
			allowed: map[string]bool{"h1": true, "h2": false}},
		{name: "key only: every object has it", raw: `{"label":{"io.clocker.host":true}}`, wantActive: true,
			allowed: map[string]bool{"h1": true, "h2": true}},
		{name: "two hosts: none", raw: `{"label":{"io.clocker.host=h1":true,"io.clocker.host=h2":true}}`, wantActive: true,
			wantOnly: []string{}, allowed: map[string]bool{"h1": false, "h2": false}},
		{name: "a label that only starts alike", raw: `{"label":{"io.clocker.hostname=x":true}}`,
			wantFilters: `{"label":{"io.clocker.hostname=x":true}}`, allowed: map[string]bool{"h1": true}},
		{name: "prune: not on a host", raw: `{"label!":{"io.clocker.host=h1":true}}`, withNegation: true,
			wantActive: true, wantNot: []string{"h1"}, allowed: map[string]bool{"h1": false, "h2": true}},
		{name: "prune: not having the label", raw: `{"label!":{"io.clocker.host":true}}`, withNegation: true,
			wantActive: true, wantNone: true, allowed: map[string]bool{"h1": false, "h2": false}},
		{name: "prune: not on two hosts matches all", raw: `{"label!":{"io.clocker.host=h1":true,"io.clocker.host=h2":true}}`, withNegation: true,
			wantActive: true, allowed: map[string]bool{"h1": true, "h2": true}},
		{name: "prune: mixed negation left to the engines", raw: `{"label!":{"io.clocker.host=h1":true,"a=b":true}}`, withNegation: true,
			wantFilters: `{"label!":{"io.clocker.host=h1":true,"a=b":true}}`, allowed: map[string]bool{"h1": true}},
		{name: "list: negation left to the engines", raw: `{"label!":{"io.clocker.host=h1":true}}`,
			wantFilters: `{"label!":{"io.clocker.host=h1":true}}`, allowed: map[string]bool{"h1": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sel := splitHostFilters(tt.raw, tt.withNegation)
			if !sameJSON(got, tt.wantFilters) {
				t.Errorf("filters %q, want %q", got, tt.wantFilters)
			}
			if sel.active != tt.wantActive || sel.none != tt.wantNone {
				t.Errorf("active %v none %v, want %v %v", sel.active, sel.none, tt.wantActive, tt.wantNone)
			}
			if (tt.wantOnly == nil) != (sel.only == nil) || !slices.Equal(slices.Sorted(maps.Keys(sel.only)), sortedOrEmpty(tt.wantOnly)) {
				t.Errorf("only %v, want %v", sel.only, tt.wantOnly)
			}
			if !slices.Equal(slices.Sorted(maps.Keys(sel.not)), sortedOrEmpty(tt.wantNot)) {
				t.Errorf("not %v, want %v", sel.not, tt.wantNot)
			}
			for h, want := range tt.allowed {
				if sel.allows(h) != want {
					t.Errorf("allows(%s) = %v, want %v", h, !want, want)
				}
			}
		})
	}
}

func sortedOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Sorted(slices.Values(s))
}

func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestWithHostLabel(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "no label yet, order kept", in: `{"Name":"n1","Id":"abc","Labels":{"x":"y"},"Driver":"bridge"}`,
			want: `{"Name":"n1","Id":"abc","Labels":{"io.clocker.host":"h1","x":"y"},"Driver":"bridge"}`},
		{name: "null labels", in: `{"Name":"v","Labels":null,"Scope":"local"}`,
			want: `{"Name":"v","Labels":{"io.clocker.host":"h1"},"Scope":"local"}`},
		{name: "no labels field", in: `{"Name":"v"}`, want: `{"Name":"v","Labels":{"io.clocker.host":"h1"}}`},
		{name: "right label: bytes untouched", in: `{"Name": "v", "Labels": {"io.clocker.host": "h1"}}`,
			want: `{"Name": "v", "Labels": {"io.clocker.host": "h1"}}`},
		{name: "wrong label: the holder is the truth", in: `{"Name":"v","Labels":{"io.clocker.host":"h9"}}`,
			want: `{"Name":"v","Labels":{"io.clocker.host":"h1"}}`},
		{name: "no HTML escaping, nested values verbatim", in: `{"Name":"v","Options":{"o": [1, 2]},"Labels":{"a":"<b>&"}}`,
			want: `{"Name":"v","Options":{"o": [1, 2]},"Labels":{"a":"<b>&","io.clocker.host":"h1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withHostLabel(json.RawMessage(tt.in), "h1")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := withHostLabel(json.RawMessage(`[1]`), "h1"); err == nil {
		t.Error("an array was labelled")
	}
}

func TestMergeVolumes(t *testing.T) {
	tests := []struct {
		name  string
		parts []hostObjects
		want  []string // NAME@HOST (from the label)
	}{
		{name: "nothing", parts: nil, want: []string{}},
		{name: "hosts with no volumes", parts: []hostObjects{{host: "h1"}, {host: "h2", objects: []json.RawMessage{}}}, want: []string{}},
		{name: "merged by name", parts: []hostObjects{
			{host: "h1", objects: raws(`{"Name":"web","Labels":null}`, `{"Name":"db","Labels":{}}`)},
			{host: "h2", objects: raws(`{"Name":"cache","Labels":{"io.clocker.host":"h2"}}`)},
		}, want: []string{"cache@h2", "db@h1", "web@h1"}},
		{name: "a name on two hosts listed twice, fleet order", parts: []hostObjects{
			{host: "h2", objects: raws(`{"Name":"data"}`)},
			{host: "h1", objects: raws(`{"Name":"data"}`, `{"Name":"a"}`)},
		}, want: []string{"a@h1", "data@h2", "data@h1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeVolumes(tt.parts)
			if err != nil {
				t.Fatal(err)
			}
			if names := nameAtHost(t, got); !slices.Equal(names, tt.want) {
				t.Errorf("got %v, want %v", names, tt.want)
			}
		})
	}
	if _, err := mergeVolumes([]hostObjects{{host: "h1", objects: raws(`"x"`)}}); err == nil {
		t.Error("a bad volume was merged")
	}
}

func TestMergeNetworks(t *testing.T) {
	builtins := func(host string) []json.RawMessage {
		return raws(`{"Name":"none","Id":"`+host+`none"}`, `{"Name":"bridge","Id":"`+host+`bridge"}`, `{"Name":"host","Id":"`+host+`host"}`)
	}
	tests := []struct {
		name   string
		parts  []hostObjects
		byHost bool
		want   []string // NAME@HOST, or NAME#ID for built-ins
	}{
		{name: "nothing", want: []string{}},
		{name: "built-ins once, from the first host", parts: []hostObjects{
			{host: "h1", objects: builtins("h1")}, {host: "h2", objects: builtins("h2")}, {host: "h3", objects: builtins("h3")},
		}, want: []string{"bridge#h1bridge", "host#h1host", "none#h1none"}},
		{name: "user networks labelled, sorted", parts: []hostObjects{
			{host: "h1", objects: append(builtins("h1"), raws(`{"Name":"web_default","Id":"w"}`)...)},
			{host: "h2", objects: append(raws(`{"Name":"app","Id":"a","Labels":{"io.clocker.host":"h2"}}`), builtins("h2")...)},
		}, want: []string{"app@h2", "bridge#h1bridge", "host#h1host", "none#h1none", "web_default@h1"}},
		{name: "built-ins of the later host when the first filtered them out", parts: []hostObjects{
			{host: "h1", objects: nil}, {host: "h2", objects: raws(`{"Name":"bridge","Id":"h2bridge"}`)},
		}, want: []string{"bridge#h2bridge"}},
		{name: "a name on two hosts listed twice", parts: []hostObjects{
			{host: "h1", objects: raws(`{"Name":"n","Id":"1"}`)}, {host: "h2", objects: raws(`{"Name":"n","Id":"2"}`)},
		}, want: []string{"n@h1", "n@h2"}},
		{name: "chosen by host: no built-ins", byHost: true, parts: []hostObjects{
			{host: "h2", objects: append(builtins("h2"), raws(`{"Name":"n","Id":"2"}`)...)},
		}, want: []string{"n@h2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeNetworks(tt.parts, tt.byHost, nil)
			if err != nil {
				t.Fatal(err)
			}
			if names := nameAtHost(t, got); !slices.Equal(names, tt.want) {
				t.Errorf("got %v, want %v", names, tt.want)
			}
			if out, _ := json.Marshal(got); !strings.HasPrefix(string(out), "[") {
				t.Errorf("not a JSON array: %s", out)
			}
		})
	}
}

func raws(objs ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		out[i] = json.RawMessage(o)
	}
	return out
}

// nameAtHost describes merged objects as NAME@HOST (their host label) or,
// for unlabelled ones, NAME#ID.
func nameAtHost(t *testing.T, objs []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, o := range objs {
		var head objectHead
		if err := json.Unmarshal(o, &head); err != nil {
			t.Fatalf("bad object %s: %v", o, err)
		}
		if h, ok := head.Labels[HostLabel]; ok {
			out = append(out, head.Name+"@"+h)
		} else {
			out = append(out, head.Name+"#"+head.ID)
		}
	}
	return out
}

func TestBestNetworkHits(t *testing.T) {
	hit := func(host, name, id string) objectHit {
		return objectHit{head: objectHead{Name: name, ID: id}, raw: json.RawMessage(host)}
	}
	tests := []struct {
		name string
		ref  string
		hits []objectHit
		want []string // hosts (kept in raw)
	}{
		{name: "one", ref: "n1", hits: []objectHit{hit("h1", "n1", "aaa")}, want: []string{"h1"}},
		{name: "full ID beats a name elsewhere", ref: "abc123", hits: []objectHit{hit("h1", "abc123", "fff"), hit("h2", "x", "abc123")}, want: []string{"h2"}},
		{name: "name beats an ID prefix elsewhere", ref: "abc", hits: []objectHit{hit("h1", "n", "abcdef"), hit("h2", "abc", "999")}, want: []string{"h2"}},
		{name: "two names stay ambiguous", ref: "n", hits: []objectHit{hit("h1", "n", "1"), hit("h3", "n", "2")}, want: []string{"h1", "h3"}},
		{name: "two prefixes stay ambiguous", ref: "a", hits: []objectHit{hit("h1", "x", "a1"), hit("h2", "y", "a2")}, want: []string{"h1", "h2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, h := range bestNetworkHits(tt.ref, tt.hits) {
				got = append(got, string(h.raw))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyedMutex(t *testing.T) {
	k := &keyedMutex{m: map[string]*keyedEntry{}}
	unlockA := k.lock("a")
	unlockB := k.lock("b") // another key does not wait
	done := make(chan struct{})
	go func() {
		k.lock("a")()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a second lock of a key did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	<-done
	unlockB()
	if len(k.m) != 0 {
		t.Errorf("%d keys left", len(k.m))
	}
}
