package scheduler

import (
	"errors"
	"strings"
	"testing"
)

func TestSpreadPlace(t *testing.T) {
	tests := []struct {
		name      string
		req       Request
		nodes     []Node
		want      string
		wantErr   string
		imageMiss bool
	}{
		{
			name:  "fewest containers wins",
			nodes: []Node{{Name: "h1", Healthy: true, HasImage: true, Containers: 3}, {Name: "h2", Healthy: true, HasImage: true, Containers: 1}, {Name: "h3", Healthy: true, HasImage: true, Containers: 2}},
			want:  "h2",
		},
		{
			name:  "ties go to the first host",
			nodes: []Node{{Name: "h1", Healthy: true, HasImage: true}, {Name: "h2", Healthy: true, HasImage: true}},
			want:  "h1",
		},
		{
			name:  "unhealthy hosts are skipped",
			nodes: []Node{{Name: "h1", Healthy: false, HasImage: true}, {Name: "h2", Healthy: true, HasImage: true, Containers: 9}},
			want:  "h2",
		},
		{
			name:  "only hosts with the image",
			nodes: []Node{{Name: "h1", Healthy: true}, {Name: "h2", Healthy: true, HasImage: true, Containers: 9}},
			want:  "h2",
		},
		{
			name:      "image nowhere is image missing",
			req:       Request{Image: "redis"},
			nodes:     []Node{{Name: "h1", Healthy: true}, {Name: "h2", Healthy: false}},
			wantErr:   "h1: image redis not present",
			imageMiss: true,
		},
		{
			name:  "pinned to a host",
			req:   Request{Pins: []Pin{{Host: "h3", Reason: "volume data"}}},
			nodes: []Node{{Name: "h1", Healthy: true, HasImage: true}, {Name: "h3", Healthy: true, HasImage: true, Containers: 5}},
			want:  "h3",
		},
		{
			name:    "pinned host down",
			req:     Request{Pins: []Pin{{Host: "h3", Reason: "volume data"}}},
			nodes:   []Node{{Name: "h1", Healthy: true, HasImage: true}, {Name: "h3", Healthy: false, HasImage: true}},
			wantErr: "h3: unhealthy",
		},
		{
			name:    "two pins on different hosts",
			req:     Request{Pins: []Pin{{Host: "h1", Reason: "volume data"}, {Host: "h2", Reason: "container db (--link)"}}},
			nodes:   []Node{{Name: "h1", Healthy: true, HasImage: true}, {Name: "h2", Healthy: true, HasImage: true}},
			wantErr: "volume data is on host h1 but container db (--link) is on host h2",
		},
		{
			name:    "empty fleet",
			wantErr: "the fleet has no hosts",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewSpread().Place(tt.req, tt.nodes)
			if tt.wantErr != "" {
				var nf *NoHostFitsError
				if !errors.As(err, &nf) {
					t.Fatalf("err = %v, want NoHostFitsError", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
				}
				if nf.ImageMissing != tt.imageMiss {
					t.Fatalf("ImageMissing = %v, want %v", nf.ImageMissing, tt.imageMiss)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("placed on %s, want %s", got, tt.want)
			}
		})
	}
}

func TestUnknownStrategy(t *testing.T) {
	if _, err := New("nope"); err == nil || !strings.Contains(err.Error(), "spread") {
		t.Fatalf("err = %v, want one naming the known strategies", err)
	}
	if s, err := New("spread"); err != nil || s.Name != "spread" {
		t.Fatalf("New(spread) = %v, %v", s, err)
	}
}

func TestAllowFilter(t *testing.T) {
	node := func(name string) Node { return Node{Name: name, Healthy: true, HasImage: true} }
	fleet := []Node{node("h1"), node("h2"), node("h3")}
	tests := []struct {
		name    string
		allow   []Allow
		want    string
		wantErr string
	}{
		{name: "no sets: any host", want: "h1"},
		{name: "one set", allow: []Allow{{Hosts: map[string]bool{"h3": true}, Reason: "address 10.0.0.40 is h3's"}}, want: "h3"},
		{name: "every set must hold the host", allow: []Allow{
			{Hosts: map[string]bool{"h2": true, "h3": true}, Reason: "a"},
			{Hosts: map[string]bool{"h3": true}, Reason: "b"},
		}, want: "h3"},
		{name: "no host in every set", allow: []Allow{
			{Hosts: map[string]bool{"h1": true}, Reason: "address 10.0.0.10 is h1's"},
			{Hosts: map[string]bool{"h2": true}, Reason: "address 10.1.0.40 is h2's"},
		}, wantErr: "h1: address 10.1.0.40 is h2's; h2: address 10.0.0.10 is h1's; h3: address 10.0.0.10 is h1's"},
		{name: "an empty set allows none", allow: []Allow{{Reason: "no host hands it out"}}, wantErr: "h2: no host hands it out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewSpread().Explain(&Request{Allow: tt.allow}, fleet)
			if tt.wantErr != "" {
				var nf *NoHostFitsError
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a NoHostFitsError containing %q", err, tt.wantErr)
				}
				for _, r := range nf.Rejections {
					if r.Filter != FilterAllow {
						t.Errorf("%s turned down by %s, want %s", r.Host, r.Filter, FilterAllow)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Hosts[0].Host; got != tt.want {
				t.Fatalf("placed on %s, want %s", got, tt.want)
			}
		})
	}
}
