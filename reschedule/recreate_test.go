package reschedule

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
)

// The create keeps the config, drops what belongs to the old host and
// copy, and says the container ran when it ran at the failure: running in
// the cache (a crash), or stopped just before it (an engine shutting down
// stops its containers first), not when a user stopped it long before.
func TestRecreate(t *testing.T) {
	down := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	inspect := func(running bool, finished time.Time) []byte {
		b, _ := json.Marshal(map[string]any{
			"Id": "0123456789abcdef", "Name": "/web",
			"Config": map[string]any{"Image": "busybox", "Hostname": "0123456789ab", "Cmd": []string{"sleep", "1"},
				"Labels": map[string]string{labels.Host: "h1", labels.Reschedule: "on-node-failure"}},
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
		t.Run(tt.name, func(t *testing.T) {
			opts, running, err := recreate(hosts.Container{Inspect: inspect(tt.running, tt.finished)}, down)
			if err != nil || opts.Name != "web" || running != tt.want {
				t.Fatalf("name %q running %v (%v), want web %v", opts.Name, running, err, tt.want)
			}
			cfg := opts.Config
			if cfg.Image != "busybox" || cfg.Hostname != "" || !reflect.DeepEqual(cfg.Cmd, []string{"sleep", "1"}) ||
				!reflect.DeepEqual(cfg.Labels, map[string]string{labels.Reschedule: "on-node-failure"}) {
				t.Errorf("config %+v", cfg)
			}
			if opts.HostConfig == nil || opts.HostConfig.Memory != 1<<20 {
				t.Errorf("host config %+v", opts.HostConfig)
			}
			eps := opts.NetworkingConfig.EndpointsConfig
			if len(eps) != 1 || eps["front"] == nil || !reflect.DeepEqual(eps["front"].Aliases, []string{"www"}) {
				t.Errorf("endpoints %+v, want front with alias www only", eps)
			}
		})
	}
}
