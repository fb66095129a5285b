package scheduler

import (
	"errors"
	"strings"
	"testing"
)

// up is a healthy node holding the image.
func up(name string, mod ...func(*Node)) Node {
	n := Node{Name: name, Healthy: true, HasImage: true, NCPU: 4, MemTotal: 8 << 30, Labels: map[string]string{}}
	for _, m := range mod {
		m(&n)
	}
	return n
}

// webReplica labels a replica of compose service shop/web.
var webReplica = map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}

// holds has a container, a replica of replicaOf ("" for none), hold tcp
// port p.
func holds(p uint16, replicaOf string) func(*Node) {
	return func(n *Node) { n.HoldPort(Port{Proto: "tcp", Port: p}, replicaOf) }
}

func running(k int) func(*Node) { return func(n *Node) { n.Running, n.Containers = k, k } }
func labels(kv ...string) func(*Node) {
	return func(n *Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}
func items(cs ...Container) func(*Node) {
	return func(n *Node) { n.Items = append(n.Items, cs...); n.Containers += len(cs); n.Running += len(cs) }
}

// checkPlace places req and wants host want, or (wantErr set) a
// NoHostFitsError containing wantErr.
func checkPlace(t *testing.T, s *Strategy, req Request, nodes []Node, want, wantErr string) {
	t.Helper()
	got, err := s.Place(req, nodes)
	if wantErr != "" {
		var nf *NoHostFitsError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want a NoHostFitsError containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("placed on %s, want %s", got, want)
	}
}

func TestStrategies(t *testing.T) {
	gib := int64(1 << 30)
	tests := []struct {
		name     string
		strategy string
		req      Request
		nodes    []Node
		want     string // first choice
		wantErr  string // part of the NoHostFitsError
	}{
		{name: "spread: fewest running", strategy: "spread",
			nodes: []Node{up("h1", running(3)), up("h2", running(1)), up("h3", running(2))}, want: "h2"},
		{name: "spread: stopped containers are not load", strategy: "breadth-first",
			nodes: []Node{up("h1", func(n *Node) { n.Running, n.Containers = 2, 2 }), up("h2", func(n *Node) { n.Running, n.Containers = 1, 9 })}, want: "h2"},
		{name: "spread: reservations first", strategy: "spread", req: Request{Memory: gib},
			nodes: []Node{up("h1", func(n *Node) { n.ReservedMemory = 4 * gib }), up("h2", running(5))}, want: "h2"},
		{name: "binpack: fullest that fits", strategy: "binpack", req: Request{Memory: 2 * gib},
			nodes: []Node{up("h1", func(n *Node) { n.ReservedMemory = 7 * gib }), up("h2", func(n *Node) { n.ReservedMemory = 5 * gib }), up("h3")}, want: "h2"},
		{name: "depth-first: most running when unreserved", strategy: "depth-first",
			nodes: []Node{up("h1", running(1)), up("h2", running(4)), up("h3", running(2))}, want: "h2"},
		{name: "least-containers counts stopped ones", strategy: "least-containers",
			nodes: []Node{up("h1", func(n *Node) { n.Containers = 5 }), up("h2", running(2))}, want: "h2"},
		{name: "lowest-cpu-usage", strategy: "lowest-cpu-usage",
			nodes: []Node{up("h1", func(n *Node) { n.Usage = Usage{Known: true, CPU: 0.7} }), up("h2", func(n *Node) { n.Usage = Usage{Known: true, CPU: 0.2} }), up("h3")}, want: "h2"},
		{name: "least-memory uses samples", strategy: "least-memory",
			nodes: []Node{up("h1", func(n *Node) { n.Usage = Usage{Known: true, Memory: 6 * gib} }), up("h2", func(n *Node) { n.Usage = Usage{Known: true, Memory: 1 * gib} })}, want: "h2"},
		{name: "least-memory falls back to reservations", strategy: "least-memory",
			nodes: []Node{up("h1", func(n *Node) { n.ReservedMemory = 3 * gib }), up("h2", func(n *Node) { n.ReservedMemory = 1 * gib })}, want: "h2"},
		{name: "max-containers", strategy: "max-containers=2,spread",
			nodes: []Node{up("h1", running(2)), up("h2", running(3))}, wantErr: "h1: 2 containers, max-containers=2; h2: 3 containers, max-containers=2"},
		{name: "max-containers counts pending", strategy: "max-containers=2",
			nodes: []Node{up("h1", func(n *Node) { n.Containers, n.Pending = 2, 2 }), up("h2", running(1))}, want: "h2"},
		{name: "max-cpu-usage", strategy: "max-cpu-usage=80%",
			nodes: []Node{up("h1", func(n *Node) { n.Usage = Usage{Known: true, CPU: 0.9} }), up("h2", func(n *Node) { n.Usage = Usage{Known: true, CPU: 0.5} })}, want: "h2"},
		{name: "label present", strategy: "label=gpu,spread",
			nodes: []Node{up("h1"), up("h2", labels("gpu", "1"), running(4))}, want: "h2"},
		{name: "label value", strategy: "label=storage=ssd",
			nodes: []Node{up("h1", labels("storage", "disk")), up("h2")}, wantErr: "h1: engine label storage=disk, not ssd; h2: engine label storage missing"},
		{name: "hostname regex with a comma", strategy: "hostname=^h{2,3}$,spread",
			nodes: []Node{up("h"), up("hh", running(3))}, want: "hh"},
		{name: "group together", strategy: "group,spread", req: Request{Group: "shop"},
			nodes: []Node{up("h1"), up("h2", items(Container{Name: "db", Group: "shop"}))}, want: "h2"},
		{name: "group exclusive keeps groups apart", strategy: "group=exclusive", req: Request{Group: "blog"},
			nodes: []Node{up("h1", items(Container{Name: "db", Group: "shop"})), up("h2", items(Container{Name: "x", Group: "blog"}))}, want: "h2"},
		{name: "group exclusive refuses shared hosts", strategy: "group=exclusive", req: Request{Group: "blog"},
			nodes: []Node{up("h1", items(Container{Name: "db", Group: "shop"}))}, wantErr: `h1: runs containers of group "shop"`},
		{name: "geographic require zone", strategy: "geographic=zone:z2",
			nodes: []Node{up("h1", labels("zone", "z1")), up("h2", labels("zone", "z2"), running(5))}, want: "h2"},
		{name: "geographic prefer region", strategy: "geographic=prefer-region:eu,spread",
			nodes: []Node{up("h1", labels("region", "us")), up("h2", labels("region", "eu"), running(5))}, want: "h2"},
		{name: "geographic spreads a group across zones", strategy: "geographic,spread", req: Request{Group: "web"},
			nodes: []Node{
				up("h1", labels("zone", "z1"), items(Container{Group: "web"})),
				up("h2", labels("zone", "z1")),
				up("h3", labels("zone", "z2"), running(3)),
			}, want: "h3"},
		{name: "affinity rule NOT EMPTY", strategy: "affinity=NOT EMPTY",
			nodes: []Node{up("h1"), up("h2", running(1))}, want: "h2"},
		{name: "affinity rule TYPE", strategy: "affinity=TYPE redis,spread",
			nodes: []Node{up("h1"), up("h2", items(Container{Image: "redis:7"}))}, want: "h2"},
		{name: "random picks a feasible host", strategy: "label=ok,random",
			nodes: []Node{up("h1"), up("h2", labels("ok", "1"))}, want: "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			checkPlace(t, s, tt.req, tt.nodes, tt.want, tt.wantErr)
		})
	}
}

func TestAlwaysOnFilters(t *testing.T) {
	gib := int64(1 << 30)
	mustExpr := func(s string) Expr {
		e, err := ParseExpr(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name    string
		opts    []Option
		req     Request
		nodes   []Node
		want    string
		wantErr string
		status  string // "unhealthy", "image" or "" (conflict)
	}{
		{name: "draining and provisioning hosts take nothing",
			nodes:   []Node{up("h1", func(n *Node) { n.Draining = true }), up("h2", func(n *Node) { n.Provisioning = true })},
			wantErr: "h1: draining; h2: still being provisioned", status: "unhealthy"},
		{name: "no healthy host", nodes: []Node{{Name: "h1"}, {Name: "h2"}}, wantErr: "h1: unhealthy; h2: unhealthy", status: "unhealthy"},
		{name: "memory free", req: Request{Memory: 11 * gib},
			nodes: []Node{up("h1", func(n *Node) { n.MemTotal, n.ReservedMemory = 16*gib, 13*gib })}, wantErr: "h1: memory 11GiB requested, 3GiB free"},
		{name: "memory with overcommit", opts: []Option{WithOvercommit(2)}, req: Request{Memory: 11 * gib},
			nodes: []Node{up("h1", func(n *Node) { n.MemTotal, n.ReservedMemory = 16*gib, 13*gib })}, want: "h1"},
		{name: "cpus", req: Request{NanoCPUs: 3e9},
			nodes: []Node{up("h1", func(n *Node) { n.ReservedNanoCPUs = 2e9 }), up("h2", func(n *Node) { n.ReservedNanoCPUs = 1e9 })}, want: "h2"},
		{name: "cpus not free", req: Request{NanoCPUs: 3e9},
			nodes: []Node{up("h1", func(n *Node) { n.ReservedNanoCPUs = 2e9 })}, wantErr: "h1: 3 CPUs requested, 2 free"},
		{name: "containerslots", nodes: []Node{up("h1", labels(SlotsLabel, "2"), running(2)), up("h2", labels(SlotsLabel, "3"), running(2))}, want: "h2"},
		{name: "host port in use",
			req:   Request{Ports: []Port{{Proto: "tcp", Port: 8080}}},
			nodes: []Node{up("h1", func(n *Node) { n.Ports = map[Port]struct{}{{Proto: "tcp", Port: 8080}: {}} }), up("h2", running(9))}, want: "h2"},
		{name: "a port held by the service's own replica: its replacement may share the host",
			req:   Request{Ports: []Port{{Proto: "tcp", Port: 8080}}, Labels: webReplica},
			nodes: []Node{up("h1", holds(8080, "shop/web"))}, want: "h1"},
		{name: "a port held by another service's replica",
			req:     Request{Ports: []Port{{Proto: "tcp", Port: 8080}}, Labels: webReplica},
			nodes:   []Node{up("h1", holds(8080, "shop/api"))},
			wantErr: "h1: host port 8080/tcp already in use"},
		{name: "a port held by the service's replica and by another container",
			req:     Request{Ports: []Port{{Proto: "tcp", Port: 8080}}, Labels: webReplica},
			nodes:   []Node{up("h1", holds(8080, "shop/web"), holds(8080, ""))},
			wantErr: "h1: host port 8080/tcp already in use"},
		{name: "a compose run container does not replace the replica",
			req:     Request{Ports: []Port{{Proto: "tcp", Port: 8080}}, Labels: map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "com.docker.compose.oneoff": "True"}},
			nodes:   []Node{up("h1", holds(8080, "shop/web"))},
			wantErr: "h1: host port 8080/tcp already in use"},
		{name: "udp and tcp ports differ",
			req:   Request{Ports: []Port{{Proto: "udp", Port: 53}}},
			nodes: []Node{up("h1", func(n *Node) { n.Ports = map[Port]struct{}{{Proto: "tcp", Port: 53}: {}} })}, want: "h1"},
		{name: "constraint node", req: Request{Constraints: []Expr{mustExpr("node==h2")}}, nodes: []Node{up("h1"), up("h2", running(9))}, want: "h2"},
		{name: "constraint label not met", req: Request{Constraints: []Expr{mustExpr("storage==ssd")}},
			nodes: []Node{up("h1", labels("storage", "disk")), up("h2")}, wantErr: "h1: constraint storage==ssd not met; h2: constraint storage==ssd not met"},
		{name: "negative constraint", req: Request{Constraints: []Expr{mustExpr("node!=h1")}}, nodes: []Node{up("h1"), up("h2", running(9))}, want: "h2"},
		{name: "glob constraint", req: Request{Constraints: []Expr{mustExpr("node==web-*")}}, nodes: []Node{up("db-1"), up("web-1", running(9))}, want: "web-1"},
		{name: "regex constraint", req: Request{Constraints: []Expr{mustExpr("zone==/^z[23]$/")}},
			nodes: []Node{up("h1", labels("zone", "z1")), up("h2", labels("zone", "z3"), running(9))}, want: "h2"},
		{name: "soft constraint met somewhere", req: Request{Constraints: []Expr{mustExpr("storage==~ssd")}},
			nodes: []Node{up("h1"), up("h2", labels("storage", "ssd"), running(9))}, want: "h2"},
		{name: "soft constraint met nowhere is ignored", req: Request{Constraints: []Expr{mustExpr("storage==~nvme")}},
			nodes: []Node{up("h1", running(1)), up("h2")}, want: "h2"},
		{name: "affinity container", req: Request{Affinities: []Expr{mustExpr("container==db")}},
			nodes: []Node{up("h1"), up("h2", items(Container{Name: "db", ID: "abcdef1234567890"}), running(9))}, want: "h2"},
		{name: "anti-affinity container", req: Request{Affinities: []Expr{mustExpr("container!=db")}},
			nodes: []Node{up("h1", items(Container{Name: "db"})), up("h2", running(9))}, want: "h2"},
		{name: "affinity by ID prefix", req: Request{Affinities: []Expr{mustExpr("container==abcdef123456")}},
			nodes: []Node{up("h1"), up("h2", items(Container{Name: "db", ID: "abcdef1234567890"}), running(9))}, want: "h2"},
		{name: "affinity image", req: Request{Affinities: []Expr{mustExpr("image==redis")}},
			nodes: []Node{up("h1"), up("h2", items(Container{Image: "redis:7"}), running(9))}, want: "h2"},
		{name: "affinity container label", req: Request{Affinities: []Expr{mustExpr("tier==front")}},
			nodes: []Node{up("h1"), up("h2", items(Container{Labels: map[string]string{"tier": "front"}}), running(9))}, want: "h2"},
		{name: "clocker rule from the request", req: Request{Rules: []Rule{{Not: true, Type: RuleName, Param: "db*"}}},
			nodes: []Node{up("h1", items(Container{Name: "db1"})), up("h2", running(9))}, want: "h2"},
		{name: "pins", req: Request{Pins: []Pin{{Host: "h2", Reason: "volume v"}}}, nodes: []Node{up("h1"), up("h2", running(9))}, want: "h2"},
		{name: "image only missing", req: Request{Image: "redis"},
			nodes: []Node{up("h1", func(n *Node) { n.HasImage = false }), {Name: "h2"}}, wantErr: "h1: image redis not present", status: "image"},
		{name: "image missing but memory short too is a conflict", req: Request{Image: "redis", Memory: 100 * gib},
			nodes: []Node{up("h1", func(n *Node) { n.HasImage = false })}, wantErr: "memory 100GiB requested", status: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New("spread", tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Place(tt.req, tt.nodes)
			if tt.wantErr != "" {
				var nf *NoHostFitsError
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a NoHostFitsError containing %q", err, tt.wantErr)
				}
				if nf.NoHealthy != (tt.status == "unhealthy") || nf.ImageMissing != (tt.status == "image") {
					t.Fatalf("NoHealthy=%v ImageMissing=%v, want status %q", nf.NoHealthy, nf.ImageMissing, tt.status)
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

func TestParseChain(t *testing.T) {
	tests := []struct {
		spec, wantErr, wantName string
	}{
		{spec: "spread", wantName: "spread"},
		{spec: "max-containers=12,breadth-first", wantName: "max-containers=12,breadth-first"},
		{spec: " binpack ", wantName: "binpack"},
		{spec: "hostname=^a{1,2}$,random", wantName: "hostname=^a{1,2}$,random"},
		{spec: "", wantErr: "empty placement strategy"},
		{spec: "fastest", wantErr: `unknown placement strategy "fastest" (known: affinity, binpack (depth-first), breadth-first`},
		{spec: "spread,nope", wantErr: `unknown placement strategy "nope"`},
		{spec: "max-containers", wantErr: "needs an option: max-containers=N"},
		{spec: "max-containers=0", wantErr: "not a positive number"},
		{spec: "max-containers=x", wantErr: "not a positive number"},
		{spec: "spread=3", wantErr: "takes no option"},
		{spec: "max-cpu-usage=2", wantErr: "not a CPU share"},
		{spec: "hostname=(", wantErr: "missing closing )"},
		{spec: "group=together", wantErr: `unknown option "together"`},
		{spec: "geographic=moon:1", wantErr: `unknown option "moon:1"`},
		{spec: "affinity=SIZE big", wantErr: "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := New(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != tt.wantName {
				t.Fatalf("Name = %q, want %q", s.Name, tt.wantName)
			}
		})
	}
	if _, err := New("spread", WithOvercommit(0)); err == nil {
		t.Fatal("overcommit 0 accepted")
	}
	if s, _ := New("max-containers=3,lowest-cpu-usage"); !s.NeedsUsage() {
		t.Fatal("lowest-cpu-usage does not ask for usage samples")
	}
	if s, _ := New("spread"); s.NeedsUsage() {
		t.Fatal("spread asks for usage samples")
	}
}

func TestSpreadRoundRobinAmongEquals(t *testing.T) {
	s := NewSpread()
	nodes := []Node{up("h1"), up("h2"), up("h3")}
	seen := map[string]int{}
	for range 6 {
		h, err := s.Place(Request{}, nodes)
		if err != nil {
			t.Fatal(err)
		}
		seen[h]++
	}
	for _, n := range nodes {
		if seen[n.Name] != 2 {
			t.Fatalf("placements on equal hosts = %v, want 2 each", seen)
		}
	}
	// A dry run does not take a turn.
	d1, _ := s.Explain(&Request{}, nodes)
	d2, _ := s.Explain(&Request{}, nodes)
	if d1.Hosts[0].Host != d2.Hosts[0].Host {
		t.Fatal("Explain moved the round-robin")
	}
}

func TestContainerChainAddsFiltersReplacesRankers(t *testing.T) {
	s, _ := New("max-containers=3,spread")
	c, err := ParseChain("binpack")
	if err != nil {
		t.Fatal(err)
	}
	nodes := []Node{up("h1", running(1)), up("h2", running(2)), up("h3", running(3))}
	got, err := s.Place(Request{Chain: c}, nodes)
	if err != nil || got != "h2" {
		t.Fatalf("binpack under the fleet's max-containers=3 chose %q (%v), want h2", got, err)
	}
	d, _ := s.Explain(&Request{Chain: c}, nodes)
	if d.Strategy != "binpack" || len(d.Rejected) != 1 || d.Rejected[0].Filter != FilterMaxContainers {
		t.Fatalf("decision = %+v", d)
	}
}

func TestDecisionExplains(t *testing.T) {
	s, _ := New("spread")
	d, err := s.Explain(&Request{Memory: 1 << 40}, []Node{up("h1"), {Name: "h2"}})
	var nf *NoHostFitsError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v", err)
	}
	if len(d.Rejected) != 2 || d.Rejected[0].Filter != FilterResources || d.Rejected[1].Filter != FilterHealth {
		t.Fatalf("rejections = %+v", d.Rejected)
	}
	if r := nf.Reasons(); r[FilterResources] != 1 || r[FilterHealth] != 1 {
		t.Fatalf("reasons = %v", r)
	}
	d, err = s.Explain(&Request{}, []Node{up("h1", running(2)), up("h2")})
	if err != nil || len(d.Hosts) != 2 || d.Hosts[0].Host != "h2" || len(d.Hosts[0].Scores) != 3 || d.Hosts[0].Scores[1].Value != 0 || d.Hosts[1].Scores[1].Value != -2 {
		t.Fatalf("decision = %+v, %v", d, err)
	}
}

func TestLongNoHostFitsMessageIsBounded(t *testing.T) {
	nodes := make([]Node, 1000)
	for i := range nodes {
		nodes[i] = Node{Name: "h" + strings.Repeat("x", 3)}
	}
	_, err := NewSpread().Place(Request{}, nodes)
	if err == nil || len(err.Error()) > 2000 || !strings.Contains(err.Error(), "and 970 more hosts (970 by health)") {
		t.Fatalf("err = %v", err)
	}
}
