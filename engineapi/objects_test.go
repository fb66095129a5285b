package engineapi

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/labels"
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
			got, sel := SplitHostFilters(tt.raw, tt.withNegation)
			if !sameJSON(got, tt.wantFilters) {
				t.Errorf("filters %q, want %q", got, tt.wantFilters)
			}
			if sel.Active != tt.wantActive || sel.none != tt.wantNone {
				t.Errorf("active %v none %v, want %v %v", sel.Active, sel.none, tt.wantActive, tt.wantNone)
			}
			if (tt.wantOnly == nil) != (sel.only == nil) || !slices.Equal(slices.Sorted(maps.Keys(sel.only)), sortedOrEmpty(tt.wantOnly)) {
				t.Errorf("only %v, want %v", sel.only, tt.wantOnly)
			}
			if !slices.Equal(slices.Sorted(maps.Keys(sel.not)), sortedOrEmpty(tt.wantNot)) {
				t.Errorf("not %v, want %v", sel.not, tt.wantNot)
			}
			for h, want := range tt.allowed {
				if sel.Allows(h) != want {
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
			got, err := WithHostLabel(json.RawMessage(tt.in), "h1")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := WithHostLabel(json.RawMessage(`[1]`), "h1"); err == nil {
		t.Error("an array was labelled")
	}
}

func TestMergeVolumes(t *testing.T) {
	tests := []struct {
		name  string
		parts []HostObjects
		want  []string // NAME@HOST (from the label)
	}{
		{name: "nothing", parts: nil, want: []string{}},
		{name: "hosts with no volumes", parts: []HostObjects{{Host: "h1"}, {Host: "h2", Objects: []json.RawMessage{}}}, want: []string{}},
		{name: "merged by name", parts: []HostObjects{
			{Host: "h1", Objects: raws(`{"Name":"web","Labels":null}`, `{"Name":"db","Labels":{}}`)},
			{Host: "h2", Objects: raws(`{"Name":"cache","Labels":{"io.clocker.host":"h2"}}`)},
		}, want: []string{"cache@h2", "db@h1", "web@h1"}},
		{name: "a name on two hosts listed twice, fleet order", parts: []HostObjects{
			{Host: "h2", Objects: raws(`{"Name":"data"}`)},
			{Host: "h1", Objects: raws(`{"Name":"data"}`, `{"Name":"a"}`)},
		}, want: []string{"a@h1", "data@h2", "data@h1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeVolumes(withNodes(tt.parts), false)
			if err != nil {
				t.Fatal(err)
			}
			if names := nameAtHost(t, got); !slices.Equal(names, tt.want) {
				t.Errorf("got %v, want %v", names, tt.want)
			}
		})
	}
	if _, err := MergeVolumes([]HostObjects{{Host: "h1", Objects: raws(`"x"`)}}, false); err == nil {
		t.Error("a bad volume was merged")
	}
}

func TestMergeNetworks(t *testing.T) {
	builtins := func(host string) []json.RawMessage {
		return raws(`{"Name":"none","Id":"`+host+`none"}`, `{"Name":"bridge","Id":"`+host+`bridge"}`, `{"Name":"host","Id":"`+host+`host"}`)
	}
	tests := []struct {
		name   string
		parts  []HostObjects
		byHost bool
		want   []string // NAME@HOST, or NAME#ID for built-ins
	}{
		{name: "nothing", want: []string{}},
		{name: "built-ins once, from the first host", parts: []HostObjects{
			{Host: "h1", Objects: builtins("h1")}, {Host: "h2", Objects: builtins("h2")}, {Host: "h3", Objects: builtins("h3")},
		}, want: []string{"bridge#h1bridge", "host#h1host", "none#h1none"}},
		{name: "user networks labelled, sorted", parts: []HostObjects{
			{Host: "h1", Objects: append(builtins("h1"), raws(`{"Name":"web_default","Id":"w"}`)...)},
			{Host: "h2", Objects: append(raws(`{"Name":"app","Id":"a","Labels":{"io.clocker.host":"h2"}}`), builtins("h2")...)},
		}, want: []string{"app@h2", "bridge#h1bridge", "host#h1host", "none#h1none", "web_default@h1"}},
		{name: "built-ins of the later host when the first filtered them out", parts: []HostObjects{
			{Host: "h1", Objects: nil}, {Host: "h2", Objects: raws(`{"Name":"bridge","Id":"h2bridge"}`)},
		}, want: []string{"bridge#h2bridge"}},
		{name: "a name on two hosts listed twice", parts: []HostObjects{
			{Host: "h1", Objects: raws(`{"Name":"n","Id":"1"}`)}, {Host: "h2", Objects: raws(`{"Name":"n","Id":"2"}`)},
		}, want: []string{"n@h1", "n@h2"}},
		{name: "chosen by host: no built-ins", byHost: true, parts: []HostObjects{
			{Host: "h2", Objects: append(builtins("h2"), raws(`{"Name":"n","Id":"2"}`)...)},
		}, want: []string{"n@h2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeNetworks(withNodes(tt.parts), tt.byHost, false, nil)
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

// withNodes gives each part a Node naming its host.
func withNodes(parts []HostObjects) []HostObjects {
	out := slices.Clone(parts)
	for i := range out {
		out[i].Node = json.RawMessage(`{"Name":"` + out[i].Host + `"}`)
	}
	return out
}

// A list filtered on io.clocker.host shows the label, set to the holder
// even on objects made behind Clocker's back.
func TestMergeKeepsBookkeepingWhenFiltered(t *testing.T) {
	parts := []HostObjects{{Host: "h1", Node: json.RawMessage(`{"Name":"h1"}`),
		Objects: raws(`{"Name":"a","Labels":{"io.clocker.host":"h1","x":"1"}}`, `{"Name":"b","Labels":null}`)}}
	got, err := MergeVolumes(parts, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"Name":"a","Labels":{"io.clocker.host":"h1","x":"1"},"Node":{"Name":"h1"}}`,
		`{"Name":"b","Labels":{"io.clocker.host":"h1"},"Node":{"Name":"h1"}}`}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("got  %s\nwant %s", got[i], want[i])
		}
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
		var head ObjectHead
		if err := json.Unmarshal(o, &head); err != nil {
			t.Fatalf("bad object %s: %v", o, err)
		}
		var node struct{ Node *struct{ Name string } }
		_ = json.Unmarshal(o, &node)
		for k := range head.Labels {
			if labels.IsBookkeeping(k) {
				t.Errorf("%s shows Clocker's label %s", head.Name, k)
			}
		}
		if node.Node != nil {
			out = append(out, head.Name+"@"+node.Node.Name)
		} else {
			out = append(out, head.Name+"#"+head.ID)
		}
	}
	return out
}

func TestSetFields(t *testing.T) {
	tests := []struct {
		name, in string
		set      map[string]string
		want     string
		wantErr  bool
	}{
		{name: "replaced in place, values of others verbatim", in: `{"B": [1, 2], "A":{"x" : 2},"C":3}`, set: map[string]string{"A": `"a"`},
			want: `{"B":[1, 2],"A":"a","C":3}`},
		{name: "new fields last, in key order", in: `{"Z":0}`, set: map[string]string{"Y": `1`, "X": `2`}, want: `{"Z":0,"X":2,"Y":1}`},
		{name: "empty object", in: `{}`, set: map[string]string{"A": `null`}, want: `{"A":null}`},
		{name: "not an object", in: `[1]`, set: map[string]string{"A": `1`}, wantErr: true},
		{name: "not JSON", in: `{"A":`, set: map[string]string{"A": `1`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := map[string]json.RawMessage{}
			for k, v := range tt.set {
				set[k] = json.RawMessage(v)
			}
			got, err := SetFields([]byte(tt.in), set)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error, got %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestIsBuiltinNetwork(t *testing.T) {
	for name, want := range map[string]bool{"bridge": true, "host": true, "none": true, "web_default": false, "": false, "Bridge": false} {
		if got := IsBuiltinNetwork(name); got != want {
			t.Errorf("IsBuiltinNetwork(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCompactWarnings(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "none is nil", in: []string{}, want: nil},
		{name: "repeats dropped, order kept", in: []string{"b", "a", "b", "a", "c"}, want: []string{"b", "a", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CompactWarnings(tt.in)
			if (got == nil) != (tt.want == nil) || !slices.Equal(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestWithFilters(t *testing.T) {
	q := url.Values{"all": {"1"}, "filters": {`{"a":{"b":true}}`}}
	if got := WithFilters(q, `{"c":{"d":true}}`); got.Get("filters") != `{"c":{"d":true}}` || got.Get("all") != "1" {
		t.Errorf("replaced: %v", got)
	}
	if got := WithFilters(q, ""); got.Has("filters") || got.Get("all") != "1" {
		t.Errorf("removed: %v", got)
	}
	if q.Get("filters") != `{"a":{"b":true}}` {
		t.Errorf("the caller's query changed: %v", q)
	}
}

func TestObjectCreateBody(t *testing.T) {
	tests := []struct {
		name, body, hostName, bare, asked string
		labels                            map[string]string
		want                              string
		wantErr                           bool
	}{
		{name: "label added, other fields kept", body: `{"Name":"v","Driver":"local","DriverOpts":{"o":"<x>"}}`, hostName: "h1", bare: "v", asked: "v",
			want: `{"Name":"v","Driver":"local","DriverOpts":{"o":"<x>"},"Labels":{"io.clocker.host":"h1"}}`},
		{name: "the client's labels kept, HOST/ stripped", body: `{"Name":"h2/n","Labels":{"a":"<b>"}}`, hostName: "h2", bare: "n", asked: "h2/n", labels: map[string]string{"a": "<b>"},
			want: `{"Name":"n","Labels":{"a":"<b>","io.clocker.host":"h2"}}`},
		{name: "not an object", body: `[1]`, hostName: "h1", bare: "v", asked: "v", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ObjectCreateBody([]byte(tt.body), tt.hostName, tt.bare, tt.asked, tt.labels)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if tt.labels != nil && len(tt.labels) != 1 {
				t.Error("the client's labels were changed")
			}
		})
	}
}
