package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// Property tests: seeded random fleets and request streams; each seed is a
// case, so a failure names the seed that reproduces it.

// TestNeverOvercommits places random requests until the fleet is full and
// checks that no host's reservations pass its totals × the ratio, nor its
// containerslots.
func TestNeverOvercommits(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		ratio := []float64{1, 1.5, 0.5}[rng.IntN(3)]
		s, err := New([]string{"spread", "binpack", "random", "least-containers"}[rng.IntN(4)], WithOvercommit(ratio))
		if err != nil {
			t.Fatal(err)
		}
		nodes := make([]Node, 1+rng.IntN(8))
		for i := range nodes {
			nodes[i] = up(fmt.Sprintf("h%d", i), func(n *Node) {
				n.NCPU = 1 + rng.IntN(8)
				n.MemTotal = int64(1+rng.IntN(16)) << 30
				if rng.IntN(3) == 0 {
					n.Labels[SlotsLabel] = fmt.Sprint(rng.IntN(6))
				}
			})
		}
		for range 300 {
			req := Request{Memory: int64(rng.IntN(4)) << 29, NanoCPUs: int64(rng.IntN(3)) * 5e8}
			h, err := s.Place(req, nodes)
			if err != nil {
				continue
			}
			for i := range nodes {
				n := &nodes[i]
				if n.Name != h {
					continue
				}
				n.ReservedMemory += req.Memory
				n.ReservedNanoCPUs += req.NanoCPUs
				n.Containers++
				n.Running++
				if n.ReservedMemory > int64(float64(n.MemTotal)*ratio) || n.ReservedNanoCPUs > int64(float64(n.NCPU)*1e9*ratio) {
					t.Fatalf("seed %d: %s over-committed: %+v (ratio %v)", seed, h, n, ratio)
				}
				if sl, ok := n.Labels[SlotsLabel]; ok {
					if slots, _ := strconv.Atoi(sl); n.Containers > slots {
						t.Fatalf("seed %d: %s holds %d containers over %s=%d", seed, h, n.Containers, SlotsLabel, slots)
					}
				}
			}
		}
	}
}

// TestHardConstraintsHold: whatever the fleet, a placed container's host
// meets every hard constraint and affinity of the request.
func TestHardConstraintsHold(t *testing.T) {
	zones := []string{"z1", "z2", "z3"}
	disks := []string{"ssd", "disk"}
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		nodes := make([]Node, 1+rng.IntN(10))
		for i := range nodes {
			nodes[i] = up(fmt.Sprintf("h%d", i), labels("zone", zones[rng.IntN(3)]))
			if rng.IntN(2) == 0 {
				nodes[i].Labels["storage"] = disks[rng.IntN(2)]
			}
			for k := rng.IntN(3); k > 0; k-- {
				items(Container{Name: fmt.Sprintf("c%d", rng.IntN(5)), Image: []string{"redis", "nginx"}[rng.IntN(2)]})(&nodes[i])
			}
		}
		var exprs []string
		for k := 1 + rng.IntN(3); k > 0; k-- {
			op := []string{"==", "!="}[rng.IntN(2)]
			switch rng.IntN(4) {
			case 0:
				exprs = append(exprs, "zone"+op+zones[rng.IntN(3)])
			case 1:
				exprs = append(exprs, "storage"+op+disks[rng.IntN(2)])
			case 2:
				exprs = append(exprs, fmt.Sprintf("node%sh%d", op, rng.IntN(10)))
			default:
				exprs = append(exprs, "node"+op+"/^h[0-4]$/")
			}
		}
		var req Request
		for _, x := range exprs {
			e, err := ParseExpr(x)
			if err != nil {
				t.Fatal(err)
			}
			req.Constraints = append(req.Constraints, e)
		}
		if rng.IntN(2) == 0 {
			e, _ := ParseExpr(fmt.Sprintf("container%sc%d", []string{"==", "!="}[rng.IntN(2)], rng.IntN(5)))
			req.Affinities = append(req.Affinities, e)
		}
		h, err := NewSpread().Place(req, nodes)
		// Check against an independent oracle written from the spec.
		fits := map[string]bool{}
		for i := range nodes {
			n := &nodes[i]
			ok := true
			for _, e := range req.Constraints {
				var v string
				var has bool
				if e.Key == "node" {
					v, has = n.Name, true
				} else {
					v, has = n.Labels[e.Key]
				}
				m := has && e.re.MatchString(v)
				ok = ok && m != e.Negate
			}
			for _, e := range req.Affinities {
				m := false
				for _, c := range n.Items {
					m = m || c.Name == e.Value
				}
				ok = ok && m != e.Negate
			}
			fits[n.Name] = ok
		}
		if err != nil {
			for n, ok := range fits {
				if ok {
					t.Fatalf("seed %d: %v, yet %s meets %q", seed, err, n, exprs)
				}
			}
			continue
		}
		if !fits[h] {
			t.Fatalf("seed %d: placed on %s which does not meet %q", seed, h, exprs)
		}
	}
}

// TestSpreadKeepsCountsLevel: on equal hosts, spread keeps the container
// counts within one of each other, whatever is stopped.
func TestSpreadKeepsCountsLevel(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		s := NewSpread()
		nodes := make([]Node, 2+rng.IntN(20))
		for i := range nodes {
			nodes[i] = up(fmt.Sprintf("h%d", i))
		}
		for k := 0; k < 200; k++ {
			h, err := s.Place(Request{}, nodes)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := 1<<30, 0
			for i := range nodes {
				if nodes[i].Name == h {
					nodes[i].Running++
					nodes[i].Containers++
				}
				lo, hi = min(lo, nodes[i].Running), max(hi, nodes[i].Running)
			}
			if hi-lo > 1 {
				t.Fatalf("seed %d after %d placements: running counts range %d..%d", seed, k+1, lo, hi)
			}
		}
	}
}
