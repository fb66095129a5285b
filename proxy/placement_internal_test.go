package proxy

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/scheduler"
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

func TestPlacementRequest(t *testing.T) {
	var spec container.CreateRequest
	raw := `{"Image":"redis","Env":["constraint:zone==z1","X=1"],"Labels":{"com.docker.compose.project":"shop"},
		"HostConfig":{"Memory":1073741824,"NanoCpus":1500000000,"CpuShares":2,
		"PortBindings":{"80/tcp":[{"HostPort":"8080"},{"HostPort":"8080","HostIp":"127.0.0.1"}],"53/udp":[{"HostPort":"53"}],"90/tcp":[{"HostPort":""}],"91/tcp":[{"HostPort":"9000-9010"}]}}}`
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	req, env, changed, err := placementRequest("web", &spec)
	if err != nil {
		t.Fatal(err)
	}
	if !changed || !slices.Equal(env, []string{"X=1"}) {
		t.Fatalf("env %q changed=%v", env, changed)
	}
	slices.SortFunc(req.Ports, func(a, b scheduler.Port) int { return int(a.Port) - int(b.Port) })
	if req.Name != "web" || req.Image != "redis" || req.Memory != 1<<30 || req.CPUs() != 1.5e9 || req.Group != "shop" ||
		len(req.Constraints) != 1 || !slices.Equal(req.Ports, []scheduler.Port{{Proto: "udp", Port: 53}, {Proto: "tcp", Port: 8080}}) {
		t.Fatalf("request = %+v", req)
	}
	spec.HostConfig.NetworkMode = "host"
	if req, _, _, _ := placementRequest("web", &spec); len(req.Ports) != 0 {
		t.Fatalf("host network mode publishes nothing: %v", req.Ports)
	}
	spec.HostConfig.Memory = -1
	if _, _, _, err := placementRequest("web", &spec); err == nil {
		t.Fatal("negative memory accepted")
	}
}
