package scheduler

import (
	"fmt"
	"testing"
)

// benchFleet is n hosts of 30 containers each, with labels, ports and
// reservations, as the proxy's snapshot gives them.
func benchFleet(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		node := Node{
			Name: fmt.Sprintf("host-%04d", i), Healthy: true, HasImage: true,
			NCPU: 16, MemTotal: 64 << 30,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3), "storage": "ssd"},
			Ports:  map[Port]struct{}{},
			Items:  make([]Container, 30),
		}
		for j := range node.Items {
			node.Items[j] = Container{ID: fmt.Sprintf("%064d", i*30+j), Name: fmt.Sprintf("c-%d-%d", i, j), Image: "busybox:latest",
				Labels: map[string]string{"app": fmt.Sprint(j % 5)}, Group: fmt.Sprintf("app%d", j%5)}
			node.Ports[Port{Proto: "tcp", Port: uint16(20000 + j)}] = struct{}{}
		}
		node.Running, node.Containers = 30, 30
		node.ReservedMemory = int64(i%7) << 30
		node.ReservedNanoCPUs = int64(i%5) * 1e9
		nodes[i] = node
	}
	return nodes
}

// BenchmarkPlace is one placement decision over a fleet of 30 containers a
// host: the default chain with a memory reservation, a port and a
// constraint, and a chain with an affinity (which reads every container).
func BenchmarkPlace(b *testing.B) {
	zone, _ := ParseExpr("zone!=z2")
	aff, _ := ParseExpr("container!=c-1-1")
	for _, hosts := range []int{10, 100, 1000} {
		nodes := benchFleet(hosts)
		for _, tc := range []struct {
			name, chain string
			req         Request
		}{
			{"spread", "spread", Request{Image: "busybox", Memory: 256 << 20, Ports: []Port{{"tcp", 8080}}, Constraints: []Expr{zone}}},
			{"affinity", "max-containers=40,binpack", Request{Image: "busybox", Affinities: []Expr{aff}}},
		} {
			s, err := New(tc.chain)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/hosts=%d", tc.name, hosts), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := tc.req
					if _, err := s.Place(req, nodes); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLedgerDecide is a decision with its reservation over a fleet
// holding pending creates on a tenth of its hosts (each given back at
// once, so the ledger stays as it was).
func BenchmarkLedgerDecide(b *testing.B) {
	for _, hosts := range []int{100, 1000} {
		nodes := benchFleet(hosts)
		s := NewSpread()
		l := NewLedger()
		for i := 0; i < hosts; i += 10 {
			l.Reserve(nodes[i].Name, &Request{Name: fmt.Sprintf("pending-%d", i), Memory: 64 << 20, Ports: []Port{{"tcp", 9000}}})
		}
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]Node, len(nodes))
			for b.Loop() {
				copy(buf, nodes)
				_, r, err := l.Decide(s, &Request{Image: "busybox", Memory: 256 << 20, Ports: []Port{{"tcp", 8080}}}, buf)
				if err != nil {
					b.Fatal(err)
				}
				l.Release(r)
			}
		})
	}
}
