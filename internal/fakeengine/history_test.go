package fakeengine

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// With EventHistory, since and until replay the kept events (either
// alone replays, as dockerd), filtered; an until in the past ends the
// stream after them.
func TestEventHistory(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}, EventHistory: 3})
	base := time.Now().Add(-time.Minute)
	for i, action := range []string{"create", "start", "die", "destroy"} {
		s.Publish(Event{Type: "container", Action: action, ID: "c" + strconv.Itoa(i),
			Attributes: map[string]string{"name": "c" + strconv.Itoa(i)}, Time: base.Add(time.Duration(i) * time.Second)})
	}
	unix := func(d time.Duration) string { return strconv.FormatInt(base.Add(d).Unix(), 10) }
	for _, tt := range []struct {
		query string
		want  string
	}{
		{query: "until=" + unix(10*time.Second), want: "start,die,destroy"}, // the first is no longer kept
		{query: "since=" + unix(2*time.Second) + "&until=" + unix(10*time.Second), want: "die,destroy"},
		{query: "since=" + unix(-time.Minute) + "&until=" + unix(10*time.Second) + "&filters=" + url.QueryEscape(`{"container":["c1"]}`), want: "start"},
		{query: "since=" + unix(-time.Minute) + "&until=" + unix(10*time.Second) + "&filters=" + url.QueryEscape(`{"event":{"die":true}}`), want: "die"},
	} {
		code, body := get(t, s, "/events?"+tt.query)
		var got []string
		dec := json.NewDecoder(strings.NewReader(body))
		for {
			var m struct{ Action string }
			if dec.Decode(&m) != nil {
				break
			}
			got = append(got, m.Action)
		}
		if code != 200 || strings.Join(got, ",") != tt.want {
			t.Errorf("events?%s: %d %v, want %s", tt.query, code, got, tt.want)
		}
	}
	if code, body := get(t, s, "/events?since=20&until=10"); code != 400 || !strings.Contains(body, "`since` time (20) cannot be after `until` time (10)") {
		t.Errorf("since after until: %d %s", code, body)
	}
}

// Streams are listed by query, and cut selectively.
func TestDropEventStreamsWhere(t *testing.T) {
	s, _ := start(t, Options{Name: "h1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(q string) *bufio.Reader {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+strings.TrimPrefix(s.URL, "tcp://")+"/events?"+q, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return bufio.NewReader(resp.Body)
	}
	keep := open("filters=" + url.QueryEscape(`{"type":["container"]}`))
	cut := open("since=1")
	waitSubscribers(t, s.Engine, 2)
	if qs := s.EventStreamQueries(); len(qs) != 2 {
		t.Fatalf("queries %v", qs)
	}
	s.DropEventStreamsWhere(func(q url.Values) bool { return q.Get("since") != "" })
	if _, err := cut.ReadByte(); err == nil {
		t.Error("the cut stream goes on")
	}
	s.Publish(Event{Type: "container", Action: "start", ID: "x"})
	if line, err := keep.ReadString('\n'); err != nil || !strings.Contains(line, `"Action":"start"`) {
		t.Errorf("kept stream: %q %v", line, err)
	}
}

func TestSystemDF(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox", "alpine"}})
	if _, err := s.Create(Spec{Name: "c1", Image: "busybox", HostConfig: []byte(`{"Binds":["data:/d"]}`)}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s, "/v1.41/system/df")
	var du struct {
		LayersSize int64
		Images     []struct {
			RepoTags   []string
			Containers int
		}
		Containers []struct {
			ID string `json:"Id"`
		}
		Volumes []struct {
			Name      string
			UsageData struct{ RefCount int }
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &du) != nil {
		t.Fatalf("df: %d %s", code, body)
	}
	uses := map[string]int{}
	for _, im := range du.Images {
		uses[im.RepoTags[0]] = im.Containers
	}
	if du.LayersSize != 2*imageSize || uses["busybox:latest"] != 1 || uses["alpine:latest"] != 0 || len(du.Containers) != 1 ||
		len(du.Volumes) != 1 || du.Volumes[0].Name != "data" || du.Volumes[0].UsageData.RefCount != 1 {
		t.Errorf("df %s", body)
	}
}
