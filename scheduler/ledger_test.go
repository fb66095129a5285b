package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// fleetOf copies nodes, as each decision gets a fresh copy of the shared
// snapshot.
func fleetOf(nodes []Node) []Node { return slices.Clone(nodes) }

func TestLedgerNoDoubleBooking(t *testing.T) {
	gib := int64(1 << 30)
	tests := []struct {
		name    string
		req     Request
		nodes   []Node
		clients int
		perHost int // how many creates each host takes before none fits
	}{
		{name: "a published port, once per host", req: Request{Ports: []Port{{"tcp", 8080}}},
			nodes: []Node{up("h1"), up("h2"), up("h3")}, clients: 40, perHost: 1},
		{name: "memory, without overcommit", req: Request{Memory: 3 * gib},
			nodes: []Node{up("h1"), up("h2")}, clients: 40, perHost: 2},
		{name: "CPUs", req: Request{NanoCPUs: 1e9},
			nodes: []Node{up("h1"), up("h2"), up("h3")}, clients: 40, perHost: 4},
		{name: "max-containers counts what is pending", req: Request{},
			nodes: []Node{up("h1", running(1)), up("h2")}, clients: 40, perHost: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := "spread"
			if tt.perHost < 0 {
				chain = "max-containers=3,spread"
			}
			s, err := New(chain)
			if err != nil {
				t.Fatal(err)
			}
			l := NewLedger()
			var (
				mu    sync.Mutex
				got   = map[string]int{}
				held  []*Reservation
				wg    sync.WaitGroup
				start = make(chan struct{})
			)
			for i := 0; i < tt.clients; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					req := tt.req
					req.Name = fmt.Sprintf("c%d", i)
					d, r, err := l.Decide(s, &req, fleetOf(tt.nodes))
					var nf *NoHostFitsError
					if err != nil && !errors.As(err, &nf) {
						t.Errorf("decide: %v", err)
					}
					if err != nil {
						if r != nil {
							t.Error("a reservation without a host")
						}
						return
					}
					if r.Host() != d.Hosts[0].Host {
						t.Errorf("reserved %s, decided %s", r.Host(), d.Hosts[0].Host)
					}
					mu.Lock()
					got[r.Host()]++
					held = append(held, r)
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			want := map[string]int{}
			for _, n := range tt.nodes {
				want[n.Name] = tt.perHost
				if tt.perHost < 0 {
					want[n.Name] = 3 - n.Containers
				}
			}
			for h, k := range want {
				if got[h] != k || l.Pending(h) != k {
					t.Errorf("%s took %d (pending %d), want %d: %v", h, got[h], l.Pending(h), k, got)
				}
			}
			for _, r := range held {
				l.Release(r)
				l.Release(r) // twice: nothing more
			}
			l.Release(nil)
			for h := range want {
				if n := l.Pending(h); n != 0 {
					t.Errorf("%s: %d pending after release", h, n)
				}
			}
			// Released, the room is there again.
			if _, r, err := l.Decide(s, &Request{Name: "again", Ports: tt.req.Ports, Memory: tt.req.Memory, NanoCPUs: tt.req.NanoCPUs}, fleetOf(tt.nodes)); err != nil || r == nil {
				t.Errorf("after release: %v", err)
			}
		})
	}
}

func TestLedgerFold(t *testing.T) {
	snapPorts := map[Port]struct{}{{"tcp", 22}: {}}
	snapItems := []Container{{Name: "old"}}
	snapshot := []Node{
		up("h1", func(n *Node) { n.Ports, n.Items, n.Containers, n.Running = snapPorts, snapItems, 1, 1 }),
		up("h2"),
	}
	l := NewLedger()
	r1 := l.Reserve("h1", &Request{Name: "web", Image: "nginx", Memory: 1 << 20, NanoCPUs: 5e8, Ports: []Port{{"tcp", 80}}, Group: "shop"})
	l.Reserve("h1", &Request{Name: "old", Memory: 1 << 20}) // the snapshot shows it already
	l.Reserve("gone", &Request{Name: "x"})                  // a host not in the nodes

	nodes := fleetOf(snapshot)
	l.Fold(nodes)
	h1 := nodes[0]
	if h1.Pending != 1 || h1.Containers != 2 || h1.Running != 2 || h1.ReservedMemory != 1<<20 || h1.ReservedNanoCPUs != 5e8 {
		t.Errorf("h1 folded: %+v", h1)
	}
	if _, ok := h1.Ports[Port{"tcp", 80}]; !ok || len(h1.Ports) != 2 {
		t.Errorf("h1 ports %v", h1.Ports)
	}
	if len(h1.Items) != 2 || h1.Items[1].Name != "web" || h1.Items[1].Group != "shop" || h1.Items[1].Image != "nginx" {
		t.Errorf("h1 items %+v", h1.Items)
	}
	if nodes[1].Pending != 0 || nodes[1].Containers != 0 {
		t.Errorf("h2 changed: %+v", nodes[1])
	}
	// The snapshot the nodes were copied from is untouched.
	if len(snapPorts) != 1 || len(snapItems) != 1 || snapshot[0].Pending != 0 || len(snapshot[0].Items) != 1 {
		t.Errorf("snapshot changed: ports %v items %v", snapPorts, snapItems)
	}
	l.Release(r1)
	nodes = fleetOf(snapshot)
	l.Fold(nodes)
	if nodes[0].Pending != 0 || nodes[0].Containers != 1 {
		t.Errorf("after release: %+v", nodes[0])
	}
}

func TestLedgerExplainReservesNothing(t *testing.T) {
	s := NewSpread()
	l := NewLedger()
	l.Reserve("h1", &Request{Name: "a"})
	d, err := l.Explain(s, &Request{Name: "b"}, []Node{up("h1"), up("h2")})
	if err != nil || d.Hosts[0].Host != "h2" {
		t.Fatalf("explain: %v %+v", err, d)
	}
	if l.Pending("h2") != 0 || l.Pending("h1") != 1 {
		t.Errorf("pending h1 %d h2 %d", l.Pending("h1"), l.Pending("h2"))
	}
}

// A pending create of another service on a port only a service's
// replicas held makes it no longer the service's to take over; the
// snapshot's maps stay as they were.
func TestLedgerFoldPortReplicas(t *testing.T) {
	snapshot := []Node{up("h1", holds(8080, "shop/web"), holds(9090, "shop/web"))}
	snapReplicas := snapshot[0].PortReplicas
	l := NewLedger()
	l.Reserve("h1", &Request{Name: "api", Ports: []Port{{"tcp", 8080}},
		Labels: map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}})
	nodes := fleetOf(snapshot)
	l.Fold(nodes)
	if got := nodes[0].PortReplicas; len(got) != 1 || got[Port{"tcp", 9090}] != "shop/web" {
		t.Errorf("folded port replicas %v, want 9090 alone shop/web's", got)
	}
	if len(snapReplicas) != 2 {
		t.Errorf("the snapshot's port replicas changed: %v", snapReplicas)
	}
	s, err := New("spread")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Place(Request{Ports: []Port{{"tcp", 8080}}, Labels: webReplica}, nodes); err == nil {
		t.Error("placed web on 8080 beside a pending api create")
	}
	if _, err := s.Place(Request{Ports: []Port{{"tcp", 9090}}, Labels: webReplica}, nodes); err != nil {
		t.Errorf("web's replacement on 9090: %v", err)
	}
}
