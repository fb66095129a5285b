package proxy

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestRewriteCreateBody(t *testing.T) {
	body := []byte(`{"Image":"busybox","Env":["A=1","constraint:node==h1"],"Labels":{"x":"y"},"Unknown":{"kept":true}}`)
	out, err := rewriteCreateBody(body, HostLabel, "h2", []string{"A=1"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Image   string
		Env     []string
		Labels  map[string]string
		Unknown map[string]bool
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Image != "busybox" || !slices.Equal(got.Env, []string{"A=1"}) || got.Labels["x"] != "y" || got.Labels[HostLabel] != "h2" || !got.Unknown["kept"] {
		t.Fatalf("rewritten body %s", out)
	}
	// Without env changes Env stays as sent (even absent).
	out, _ = rewriteCreateBody([]byte(`{"Image":"busybox"}`), HostLabel, "h1", nil, false)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(out, &m)
	if _, ok := m["Env"]; ok {
		t.Fatalf("Env added: %s", out)
	}
	// Every entry removed: an empty list, not null.
	out, _ = rewriteCreateBody([]byte(`{"Env":["constraint:node==h1"]}`), HostLabel, "h1", nil, true)
	_ = json.Unmarshal(out, &m)
	if string(m["Env"]) != "[]" {
		t.Fatalf("Env = %s", m["Env"])
	}
}
