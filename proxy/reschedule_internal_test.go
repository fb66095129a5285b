package proxy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
)

// The create body keeps the config, drops what belongs to the old host and
// copy, and says the container ran when it ran at the failure: running in
// the cache (a crash), or stopped just before it (an engine shutting down
// stops its containers first), not when a user stopped it long before.
func TestRecreateBody(t *testing.T) {
	down := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	inspect := func(running bool, finished time.Time) []byte {
		b, _ := json.Marshal(map[string]any{
			"Id": "0123456789abcdef", "Name": "/web",
			"Config": map[string]any{"Image": "busybox", "Hostname": "0123456789ab", "Cmd": []string{"sleep", "1"},
				"Labels": map[string]string{HostLabel: "h1", RescheduleLabel: "on-node-failure"}},
			"HostConfig": map[string]any{"Memory": 1 << 20},
			"State":      map[string]any{"Running": running, "StartedAt": down.Add(-time.Hour), "FinishedAt": finished},
			"NetworkSettings": map[string]any{"Networks": map[string]any{
				"bridge": map[string]any{}, "front": map[string]any{"Aliases": []string{"0123456789ab", "www"}}}},
		})
		return b
	}
	for _, tt := range []struct {
		name     string
		running  bool
		finished time.Time
		want     bool
	}{
		{"running in the cache", true, time.Time{}, true},
		{"stopped by the engine's shutdown", false, down.Add(-5 * time.Second), true},
		{"stopped by a user long before", false, down.Add(-10 * time.Minute), false},
		{"never started", false, time.Time{}, false},
	} {
		body, name, running, err := recreateBody(hosts.Container{Inspect: inspect(tt.running, tt.finished)}, down)
		if err != nil || name != "web" || running != tt.want {
			t.Errorf("%s: name %q running %v (%v), want web %v", tt.name, name, running, err, tt.want)
		}
		s := string(body)
		if strings.Contains(s, HostLabel) || strings.Contains(s, "Hostname") || strings.Contains(s, `"bridge"`) ||
			!strings.Contains(s, `"Aliases":["www"]`) || !strings.Contains(s, `"Memory":1048576`) || !strings.Contains(s, RescheduleLabel) {
			t.Errorf("%s: body %s", tt.name, s)
		}
	}
}
