package scheduler

import "testing"

// FuzzParseExpr: an expression that parses prints as one that parses to
// the same expression.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"node==h1", "node!=h2", "zone==~eu-*", "region!=~/us-(east|west)/", "group==web", "image==busybox:latest",
		"container!=db", "storage==ssd", "", "==", "a==", "==b", "node===x", "a==b==c", "node==/[/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			return
		}
		again, err := ParseExpr(e.String())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", s, e.String(), err)
		}
		if again.String() != e.String() {
			t.Fatalf("%q → %q → %q", s, e.String(), again.String())
		}
	})
}

// FuzzParsePlacement: constraint and affinity entries of a create's env
// and labels parse or are refused, never panic.
func FuzzParsePlacement(f *testing.F) {
	for _, s := range []string{
		"constraint:node==h1", "affinity:container==web", "affinity:image!=busybox", "constraint:zone==~eu",
		"reschedule:on-node-failure", "PATH=/bin", "constraint:", "affinity:==",
	} {
		f.Add(s, `[{"node":"h1"}]`)
	}
	f.Fuzz(func(t *testing.T, env, label string) {
		_, _, _ = ParsePlacement([]string{env}, map[string]string{"com.docker.swarm.constraints": label, "com.docker.swarm.affinities": label})
	})
}

// FuzzParseRules: placement rule lists.
func FuzzParseRules(f *testing.F) {
	for _, s := range []string{"max-containers=12,breadth-first", "spread", "binpack", "random", "x=", ",,", "max-containers=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseRules(s)
	})
}
