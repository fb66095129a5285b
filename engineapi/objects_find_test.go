package engineapi

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestBestNetworkHits(t *testing.T) {
	hit := func(host, name, id string) ObjectHit {
		return ObjectHit{Head: ObjectHead{Name: name, ID: id}, Raw: json.RawMessage(host)}
	}
	tests := []struct {
		name string
		ref  string
		hits []ObjectHit
		want []string // hosts (kept in raw)
	}{
		{name: "one", ref: "n1", hits: []ObjectHit{hit("h1", "n1", "aaa")}, want: []string{"h1"}},
		{name: "full ID beats a name elsewhere", ref: "abc123", hits: []ObjectHit{hit("h1", "abc123", "fff"), hit("h2", "x", "abc123")}, want: []string{"h2"}},
		{name: "name beats an ID prefix elsewhere", ref: "abc", hits: []ObjectHit{hit("h1", "n", "abcdef"), hit("h2", "abc", "999")}, want: []string{"h2"}},
		{name: "two names stay ambiguous", ref: "n", hits: []ObjectHit{hit("h1", "n", "1"), hit("h3", "n", "2")}, want: []string{"h1", "h3"}},
		{name: "two prefixes stay ambiguous", ref: "a", hits: []ObjectHit{hit("h1", "x", "a1"), hit("h2", "y", "a2")}, want: []string{"h1", "h2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, h := range BestNetworkHits(tt.ref, tt.hits) {
				got = append(got, string(h.Raw))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
