package engineapi

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/hosts"
)

func ctr(state string, nanoCPUs, mem int64) hosts.Container {
	return hosts.Container{Summary: container.Summary{State: container.ContainerState(state)}, NanoCPUs: nanoCPUs, Memory: mem}
}

func TestMergeInfo(t *testing.T) {
	base := `{"ID":"x","Containers":99,"Images":99,"NCPU":1,"Name":"h1","Labels":["disk=ssd"],"Driver":"overlay2"}`
	tests := []struct {
		name  string
		hosts []InfoHost
		// totals: Containers, Running, Paused, Stopped, Images, NCPU, MemTotal
		want   [7]int64
		status [][2]string // the host lines after Role, Strategy, Filters, Nodes
	}{
		{name: "sums the healthy hosts",
			hosts: []InfoHost{
				{Name: "h1", Addr: "10.0.0.1:2375", Healthy: true, Facts: hosts.Facts{Info: json.RawMessage(`{"Images":2}`), NCPU: 2, MemTotal: 1 << 30, Labels: []string{"disk=ssd"}, Version: "20.10.24"},
					Containers: []hosts.Container{ctr("running", 5e8, 64<<20), ctr("paused", 0, 0), ctr("restarting", 0, 0)}},
				{Name: "h2", Addr: "unix:///run/d.sock", Healthy: true, Facts: hosts.Facts{Info: json.RawMessage(`{"Images":1}`), NCPU: 4, MemTotal: 3 << 30, Version: "24.0.7"},
					Containers: []hosts.Container{ctr("created", 0, 0), ctr("exited", 1e9, 0)}},
			},
			want: [7]int64{5, 2, 1, 2, 3, 6, 4 << 30},
			status: [][2]string{
				{" h1", "10.0.0.1:2375"}, {"  └ Status", "Healthy"}, {"  └ Containers", "3 (2 Running, 1 Paused, 0 Stopped)"},
				{"  └ Reserved CPUs", "0.5 / 2"}, {"  └ Reserved Memory", "64MiB / 1GiB"}, {"  └ Labels", "disk=ssd"},
				{"  └ Error", ""}, {"  └ ServerVersion", "20.10.24"},
				{" h2", "unix:///run/d.sock"}, {"  └ Status", "Healthy"}, {"  └ Containers", "2 (0 Running, 0 Paused, 2 Stopped)"},
				{"  └ Reserved CPUs", "1 / 4"}, {"  └ Reserved Memory", "0B / 3GiB"}, {"  └ Labels", ""},
				{"  └ Error", ""}, {"  └ ServerVersion", "24.0.7"},
			}},
		{name: "an unhealthy host is listed, not summed",
			hosts: []InfoHost{
				{Name: "h1", Addr: "a:1", Healthy: true, Facts: hosts.Facts{Info: json.RawMessage(`{"Images":1}`), NCPU: 1, MemTotal: 100},
					Containers: []hosts.Container{ctr("running", 0, 0)}},
				{Name: "h2", Addr: "b:1", Err: "connection refused", Facts: hosts.Facts{Info: json.RawMessage(`{"Images":7}`), NCPU: 8, MemTotal: 800},
					Containers: []hosts.Container{ctr("running", 0, 0)}},
			},
			want: [7]int64{1, 1, 0, 0, 1, 1, 100},
			status: [][2]string{
				{" h1", "a:1"}, {"  └ Status", "Healthy"}, {"  └ Containers", "1 (1 Running, 0 Paused, 0 Stopped)"},
				{"  └ Reserved CPUs", "0 / 1"}, {"  └ Reserved Memory", "0B / 100B"}, {"  └ Labels", ""},
				{"  └ Error", ""}, {"  └ ServerVersion", ""},
				{" h2", "b:1"}, {"  └ Status", "Unhealthy"}, {"  └ Containers", "1 (1 Running, 0 Paused, 0 Stopped)"},
				{"  └ Reserved CPUs", "0 / 8"}, {"  └ Reserved Memory", "0B / 800B"}, {"  └ Labels", ""},
				{"  └ Error", "connection refused"}, {"  └ ServerVersion", ""},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := MergeInfo([]byte(base), InfoFleet{Name: "mgr", OperatingSystem: "Clocker x (2 hosts)", Strategy: "spread", Filters: "health, port"}, tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(v)
			var got struct {
				Containers, ContainersRunning, ContainersPaused, ContainersStopped, Images, NCPU int
				MemTotal                                                                         int64
				SystemStatus                                                                     [][2]string
				Name, OperatingSystem, Driver                                                    string
				Labels                                                                           []string
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			totals := [7]int64{int64(got.Containers), int64(got.ContainersRunning), int64(got.ContainersPaused), int64(got.ContainersStopped), int64(got.Images), int64(got.NCPU), got.MemTotal}
			if totals != tt.want {
				t.Errorf("totals %v, want %v", totals, tt.want)
			}
			head := [][2]string{{"Role", "primary"}, {"Strategy", "spread"}, {"Filters", "health, port"}, {"Nodes", "2"}}
			if want := append(head, tt.status...); !slices.Equal(got.SystemStatus, want) {
				t.Errorf("SystemStatus\n got %q\nwant %q", got.SystemStatus, want)
			}
			if got.Name != "mgr" || got.OperatingSystem != "Clocker x (2 hosts)" || got.Driver != "overlay2" || got.Labels == nil || len(got.Labels) != 0 {
				t.Errorf("Name %q OperatingSystem %q Driver %q Labels %v: want the fleet's, the base's other fields kept, no labels", got.Name, got.OperatingSystem, got.Driver, got.Labels)
			}
		})
	}
	// The fleet's own count of distinct images, when known, wins over the
	// hosts' sum.
	five := 5
	if v, err := MergeInfo([]byte(base), InfoFleet{Images: &five}, tests[0].hosts); err != nil || v["Images"] != 5 {
		t.Errorf("Images %v (%v), want 5", v["Images"], err)
	}
	if _, err := MergeInfo([]byte("{"), InfoFleet{}, nil); err == nil {
		t.Error("a malformed base answer: no error")
	}
}

func TestFleetVersion(t *testing.T) {
	base := `{"Version":"24.0.7","ApiVersion":"1.43","MinAPIVersion":"1.12","Os":"linux","Components":[{"Name":"Engine","Version":"24.0.7","Details":{"ApiVersion":"1.43","MinAPIVersion":"1.12"}},{"Name":"containerd","Details":{"ApiVersion":"x"}}]}`
	tests := []struct {
		name   string
		others []string
		want   string
	}{
		{"no other engine", nil, "24.0.7"},
		{"an older engine's version wins", []string{"25.0.1", "20.10.24+dfsg1", ""}, "20.10.24+dfsg1"},
		{"newer engines change nothing", []string{"24.0.8", "26.1.0-rc1"}, "24.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := FleetVersion([]byte(base), tt.others, "1.41", "1.17", "Clocker x")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(v)
			var got struct {
				Version, ApiVersion, MinAPIVersion, Os string
				Platform                               struct{ Name string }
				Components                             []struct {
					Name    string
					Details map[string]string
				}
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Version != tt.want || got.ApiVersion != "1.41" || got.MinAPIVersion != "1.17" || got.Os != "linux" || got.Platform.Name != "Clocker x" {
				t.Errorf("got %+v, want Version %s, the fleet's API versions and platform, Os kept", got, tt.want)
			}
			if d := got.Components[0].Details; d["ApiVersion"] != "1.41" || d["MinAPIVersion"] != "1.17" {
				t.Errorf("Engine component details %v, want the fleet's API versions", d)
			}
			if d := got.Components[1].Details; d["ApiVersion"] != "x" {
				t.Errorf("containerd component details %v, want them kept", d)
			}
		})
	}
}
