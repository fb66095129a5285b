package proxy

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/clocker/clocker/engineapi"
)

// nameAtHost describes merged objects as NAME@HOST (their host label) or,
// for unlabelled ones, NAME#ID.
func nameAtHost(t *testing.T, objs []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, o := range objs {
		var head engineapi.ObjectHead
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
		return objectHit{head: engineapi.ObjectHead{Name: name, ID: id}, raw: json.RawMessage(host)}
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
