package placement

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/scheduler"
)

func TestParseRequest(t *testing.T) {
	var spec container.CreateRequest
	raw := `{"Image":"redis","Env":["constraint:zone==z1","X=1"],"Labels":{"com.docker.compose.project":"shop"},
		"HostConfig":{"Memory":1073741824,"NanoCpus":1500000000,"CpuShares":2,
		"PortBindings":{"80/tcp":[{"HostPort":"8080"},{"HostPort":"8080","HostIp":"127.0.0.1"}],"53/udp":[{"HostPort":"53"}],"90/tcp":[{"HostPort":""}],"91/tcp":[{"HostPort":"9000-9010"}]}}}`
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	req, env, changed, err := ParseRequest("web", &spec)
	if err != nil {
		t.Fatal(err)
	}
	if !changed || !slices.Equal(env, []string{"X=1"}) {
		t.Fatalf("env %q changed=%v", env, changed)
	}
	slices.SortFunc(req.Ports, func(a, b scheduler.Port) int { return int(a.Port) - int(b.Port) })
	if req.Kind != scheduler.KindContainer || req.Name != "web" || req.Image != "redis" || req.Memory != 1<<30 || req.NanoCPUs != 1.5e9 || req.Group != "shop" ||
		len(req.Constraints) != 1 || !slices.Equal(req.Ports, []scheduler.Port{{Proto: "udp", Port: 53}, {Proto: "tcp", Port: 8080}}) {
		t.Fatalf("request = %+v", req)
	}
	spec.HostConfig.NetworkMode = "host"
	if req, _, _, _ := ParseRequest("web", &spec); len(req.Ports) != 0 {
		t.Fatalf("host network mode publishes nothing: %v", req.Ports)
	}
	for _, bad := range []func(hc *container.HostConfig){
		func(hc *container.HostConfig) { hc.Memory = -1 },
		func(hc *container.HostConfig) { hc.NanoCPUs = -1 },
		func(hc *container.HostConfig) { hc.CPUShares = -1 },
	} {
		s := spec
		hc := *spec.HostConfig
		bad(&hc)
		s.HostConfig = &hc
		if _, _, _, err := ParseRequest("web", &s); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("negative resource: %v", err)
		}
	}
	spec.Env = []string{"constraint:zone=z1"}
	if _, _, _, err := ParseRequest("web", &spec); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("malformed constraint: %v", err)
	}
}

// CPU shares are a weight, not CPUs: only --cpus and --cpu-quota reserve.
func TestParseRequestCPUs(t *testing.T) {
	tests := []struct {
		name string
		hc   container.HostConfig
		want int64
	}{
		{name: "-c 512 reserves nothing", hc: container.HostConfig{Resources: container.Resources{CPUShares: 512}}},
		{name: "-c 2 reserves nothing", hc: container.HostConfig{Resources: container.Resources{CPUShares: 2}}},
		{name: "--cpus", hc: container.HostConfig{Resources: container.Resources{NanoCPUs: 1.5e9, CPUShares: 512}}, want: 1.5e9},
		{name: "--cpu-quota with the default period", hc: container.HostConfig{Resources: container.Resources{CPUQuota: 50000}}, want: 5e8},
		{name: "--cpu-quota over --cpu-period", hc: container.HostConfig{Resources: container.Resources{CPUQuota: 300000, CPUPeriod: 50000}}, want: 6e9},
		{name: "--cpu-quota -1 is no limit", hc: container.HostConfig{Resources: container.Resources{CPUQuota: -1}}},
		{name: "--cpu-period alone", hc: container.HostConfig{Resources: container.Resources{CPUPeriod: 50000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := tt.hc
			req, _, _, err := ParseRequest("web", &container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &hc})
			if err != nil {
				t.Fatal(err)
			}
			if req.NanoCPUs != tt.want {
				t.Fatalf("NanoCPUs = %d, want %d", req.NanoCPUs, tt.want)
			}
		})
	}
}

func TestPins(t *testing.T) {
	tf := newTestFleet(t,
		fakeengine.Options{Name: "h1", Images: []string{"busybox"}, Volumes: []string{"data"}},
		fakeengine.Options{Name: "h2", Images: []string{"busybox"}, Networks: []string{"back"}},
	)
	tf.add("h2", fakeengine.Spec{Name: "db"})
	tests := []struct {
		name     string
		hc       container.HostConfig
		want     []scheduler.Pin
		wantCode int
	}{
		{name: "nothing", hc: container.HostConfig{}},
		{name: "--volumes-from", hc: container.HostConfig{VolumesFrom: []string{"db:ro"}},
			want: []scheduler.Pin{{Host: "h2", Reason: "container db (--volumes-from)"}}},
		{name: "--link pins nothing (a preference)", hc: container.HostConfig{Links: []string{"/db:database"}}},
		{name: "a shared namespace", hc: container.HostConfig{NetworkMode: "container:db", PidMode: "container:db"},
			want: []scheduler.Pin{{Host: "h2", Reason: "container db (shared namespace)"}, {Host: "h2", Reason: "container db (shared namespace)"}}},
		{name: "a named volume", hc: container.HostConfig{Binds: []string{"data:/data", "/srv:/srv", "./x:/x"}},
			want: []scheduler.Pin{{Host: "h1", Reason: "volume data"}}},
		{name: "a volume no host has yet", hc: container.HostConfig{Binds: []string{"new:/new"}}},
		{name: "a user network is not pinned here", hc: container.HostConfig{NetworkMode: "back"}},
		{name: "a container nowhere", hc: container.HostConfig{VolumesFrom: []string{"nosuch"}}, wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &tt.hc}
			pins, err := Pins(context.Background(), tf.fleet, spec)
			if tt.wantCode != 0 {
				if errdefs.Status(err) != tt.wantCode {
					t.Fatalf("error %v, want status %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pins, tt.want) {
				t.Errorf("pins %+v, want %+v", pins, tt.want)
			}
		})
	}
}

// Links on the default bridge prefer the linked containers' hosts (soft
// constraints, one per host); on a user network they are names only. A
// link to no container is the engine's 400.
func TestLinkPreferences(t *testing.T) {
	tf := newTestFleet(t,
		fakeengine.Options{Name: "h1", Images: []string{"busybox"}},
		fakeengine.Options{Name: "h2", Images: []string{"busybox"}},
	)
	tf.add("h1", fakeengine.Spec{Name: "aa"})
	tf.add("h2", fakeengine.Spec{Name: "bb"})
	tf.add("h2", fakeengine.Spec{Name: "cc"})
	tests := []struct {
		name     string
		hc       container.HostConfig
		want     []string
		wantCode int
	}{
		{name: "none", hc: container.HostConfig{}},
		{name: "one", hc: container.HostConfig{Links: []string{"/bb:x"}}, want: []string{"node==~h2"}},
		{name: "two hosts", hc: container.HostConfig{NetworkMode: "bridge", Links: []string{"bb:x", "aa", "cc:z"}},
			want: []string{"node==~h2", "node==~h1"}},
		{name: "a user network", hc: container.HostConfig{NetworkMode: "app", Links: []string{"bb:x", "notyet:y"}}},
		{name: "no such container", hc: container.HostConfig{Links: []string{"nosuch:x"}}, wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &tt.hc}
			prefs, err := LinkPreferences(context.Background(), tf.fleet, spec)
			if tt.wantCode != 0 {
				if errdefs.Status(err) != tt.wantCode || !strings.Contains(err.Error(), "could not get container for nosuch") {
					t.Fatalf("error %v, want status %d and the engine's message", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range prefs {
				got = append(got, e.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("preferences %v, want %v", got, tt.want)
			}
		})
	}
}
