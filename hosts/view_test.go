package hosts

import (
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/internal/labels"
)

func TestEndpointAddrIP(t *testing.T) {
	tests := []struct {
		url, addr, ip string
	}{
		{"tcp://10.0.0.5:2375", "10.0.0.5:2375", "10.0.0.5"},
		{"tcp://[fd00::5]:2375", "[fd00::5]:2375", "fd00::5"},
		{"unix:///var/run/docker.sock", "unix:///var/run/docker.sock", "127.0.0.1"},
	}
	for _, tt := range tests {
		ep, err := ParseEndpoint(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Addr() != tt.addr || ep.IP() != tt.ip {
			t.Errorf("%s: Addr %q IP %q, want %q %q", tt.url, ep.Addr(), ep.IP(), tt.addr, tt.ip)
		}
	}
}

func TestUserContainersAndReservations(t *testing.T) {
	cs := []Container{
		{Summary: container.Summary{ID: "a"}, NanoCPUs: 5e8, Memory: 10},
		{Summary: container.Summary{ID: "agent", Labels: map[string]string{labels.Agent: "1"}}, NanoCPUs: 1e9, Memory: 100},
		{Summary: container.Summary{ID: "b"}, Memory: 20},
	}
	users := UserContainers(cs)
	if len(users) != 2 || users[0].Summary.ID != "a" || users[1].Summary.ID != "b" {
		t.Fatalf("UserContainers = %v, want a and b", users)
	}
	if cpu, mem := Reservations(users); cpu != 5e8 || mem != 30 {
		t.Errorf("Reservations = %d, %d, want 5e8, 30", cpu, mem)
	}
	if !IsAgent(&cs[1]) || IsAgent(&cs[0]) {
		t.Error("IsAgent: want only the labelled container")
	}
}

func TestFactsEngineLabels(t *testing.T) {
	got := Facts{Labels: []string{"zone=a", "ssd", "k=v=w"}}.EngineLabels()
	if len(got) != 3 || got["zone"] != "a" || got["ssd"] != "" || got["k"] != "v=w" {
		t.Errorf("EngineLabels = %v", got)
	}
}
