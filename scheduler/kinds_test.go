package scheduler

import (
	"strings"
	"testing"
)

func objects(k int) func(*Node)    { return func(n *Node) { n.Objects = k } }
func project(k int) func(*Node)    { return func(n *Node) { n.ProjectObjects = k } }
func baseImages(k int) func(*Node) { return func(n *Node) { n.BaseImages = k } }

func TestKindRankers(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		req      Request
		nodes    []Node
		want     string
		wantErr  string
	}{
		{name: "volume: the compose project's host", strategy: "spread", req: Request{Kind: KindVolume, Project: "p"},
			nodes: []Node{up("h1"), up("h2", running(5), project(1)), up("h3", running(2), project(3))}, want: "h3"},
		{name: "network: the compose project's host", strategy: "spread", req: Request{Kind: KindNetwork, Project: "p"},
			nodes: []Node{up("h1"), up("h2", running(4), project(2))}, want: "h2"},
		{name: "no project: spread", strategy: "spread", req: Request{Kind: KindVolume},
			nodes: []Node{up("h1", running(1), project(4)), up("h2")}, want: "h2"},
		{name: "project nowhere yet: spread", strategy: "spread", req: Request{Kind: KindVolume, Project: "p"},
			nodes: []Node{up("h1", running(1)), up("h2")}, want: "h2"},
		{name: "equally busy: fewest objects", strategy: "spread", req: Request{Kind: KindVolume},
			nodes: []Node{up("h1", running(1)), up("h2", objects(2)), up("h3", objects(1)), up("h4", objects(3))}, want: "h3"},
		{name: "busier beats fewer objects", strategy: "spread", req: Request{Kind: KindNetwork},
			nodes: []Node{up("h1", running(1)), up("h2", running(2), objects(0))}, want: "h1"},
		{name: "binpack: fullest, then fewest objects", strategy: "binpack", req: Request{Kind: KindVolume},
			nodes: []Node{up("h1", running(1)), up("h2", running(3), objects(4)), up("h3", running(3), objects(1))}, want: "h3"},
		{name: "the project's host filtered out: another", strategy: "max-containers=3,spread", req: Request{Kind: KindVolume, Project: "p"},
			nodes: []Node{up("h1", running(1)), up("h2", running(3), project(3))}, want: "h1"},
		{name: "a pin beats the project", strategy: "spread", req: Request{Kind: KindVolume, Project: "p", Pins: []Pin{{Host: "h1", Reason: "the volume"}}},
			nodes: []Node{up("h1"), up("h2", project(3))}, want: "h1"},
		{name: "no image filter for a volume", strategy: "spread", req: Request{Kind: KindVolume},
			nodes: []Node{up("h1", func(n *Node) { n.HasImage = false })}, want: "h1"},
		{name: "build: the host with the base images", strategy: "spread", req: Request{Kind: KindBuild, BaseImages: []string{"golang:1", "alpine"}},
			nodes: []Node{up("h1"), up("h2", running(9), baseImages(1)), up("h3", running(9), baseImages(2))}, want: "h3"},
		{name: "build: among equal hosts, the chain", strategy: "spread", req: Request{Kind: KindBuild, BaseImages: []string{"alpine"}},
			nodes: []Node{up("h1", running(3), baseImages(1)), up("h2", running(1), baseImages(1)), up("h3", baseImages(0))}, want: "h2"},
		{name: "build: base images nowhere", strategy: "spread", req: Request{Kind: KindBuild, BaseImages: []string{"alpine"}},
			nodes: []Node{up("h1", running(3), func(n *Node) { n.HasImage = false }), up("h2", running(1), func(n *Node) { n.HasImage = false })}, want: "h2"},
		{name: "build: an unhealthy host holding them", strategy: "spread", req: Request{Kind: KindBuild, BaseImages: []string{"alpine"}},
			nodes: []Node{up("h1", baseImages(1), func(n *Node) { n.Healthy = false }), up("h2", running(1))}, want: "h2"},
		{name: "build: no host", strategy: "spread", req: Request{Kind: KindBuild},
			nodes: []Node{up("h1", func(n *Node) { n.Healthy = false })}, wantErr: "h1: unhealthy"},
		{name: "container: locality fields are ignored", strategy: "spread", req: Request{Project: "p", BaseImages: []string{"alpine"}},
			nodes: []Node{up("h1", running(1), project(5), baseImages(1)), up("h2", objects(9))}, want: "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.Decide(&tt.req, tt.nodes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Hosts[0].Host != tt.want {
				t.Errorf("placed on %s, want %s (%+v)", d.Hosts[0].Host, tt.want, d.Hosts)
			}
		})
	}
}

func TestKindRankersInScores(t *testing.T) {
	s, err := New("spread")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		kind        Kind
		first, last string
	}{
		{KindContainer, "spread:reserved", "spread:containers"},
		{KindVolume, RankerProject, RankerObjects},
		{KindNetwork, RankerProject, RankerObjects},
		{KindBuild, RankerBaseImages, "spread:containers"},
	} {
		d, err := s.Explain(&Request{Kind: tt.kind}, []Node{up("h1")})
		if err != nil {
			t.Fatal(err)
		}
		sc := d.Hosts[0].Scores
		if sc[0].Ranker != tt.first || sc[len(sc)-1].Ranker != tt.last {
			t.Errorf("%s: rankers %+v", tt.kind, sc)
		}
	}
	// A container's own chain keeps the kind's rankers around it.
	own, _ := ParseChain("binpack")
	d, _ := s.Explain(&Request{Kind: KindVolume, Chain: own}, []Node{up("h1")})
	if sc := d.Hosts[0].Scores; sc[0].Ranker != RankerProject || sc[1].Ranker != "binpack:reserved" {
		t.Errorf("own chain: %+v", sc)
	}
	if KindBuild.String() != "build" || Kind(9).String() != "Kind(9)" {
		t.Error("Kind.String")
	}
}
