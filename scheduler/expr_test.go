package scheduler

import (
	"slices"
	"strings"
	"testing"
)

func TestParseExpr(t *testing.T) {
	tests := []struct {
		in, want string
		soft     bool
		matches  []string
		misses   []string
		wantErr  string
	}{
		{in: "node==h1", want: "node==h1", matches: []string{"h1"}, misses: []string{"h10", "H1"}},
		{in: "node!=h1", want: "node!=h1", matches: []string{"h1"}},
		{in: "storage==~ssd", want: "storage==~ssd", soft: true, matches: []string{"ssd"}},
		{in: "storage!=~ssd", want: "storage!=~ssd", soft: true},
		{in: "node==web-*", want: "node==web-*", matches: []string{"web-1", "web-"}, misses: []string{"xweb-1"}},
		{in: "node==h?", matches: []string{"h1"}, misses: []string{"h12"}, want: "node==h?"},
		{in: "node==a.b", want: "node==a.b", matches: []string{"a.b"}, misses: []string{"axb"}},
		{in: "zone==/^z[0-9]+$/", want: "zone==/^z[0-9]+$/", matches: []string{"z12"}, misses: []string{"zz"}},
		{in: " com.example.tier == front ", want: "com.example.tier==front", matches: []string{"front"}},
		{in: "node=h1", wantErr: "one of the operators ==, != (soft: ==~, !=~) is expected"},
		{in: "==h1", wantErr: `key "" is invalid`},
		{in: "no de==h1", wantErr: `key "no de" is invalid`},
		{in: "node==", wantErr: `value "" is invalid`},
		{in: "node==h1;rm", wantErr: `value "h1;rm" is invalid`},
		{in: "node==/(/", wantErr: "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseExpr(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.String() != tt.want || e.Soft != tt.soft {
				t.Fatalf("parsed %q as %q soft=%v", tt.in, e.String(), e.Soft)
			}
			for _, m := range tt.matches {
				if !e.match(m) {
					t.Errorf("%s does not match %q", tt.in, m)
				}
			}
			for _, m := range tt.misses {
				if e.match(m) {
					t.Errorf("%s matches %q", tt.in, m)
				}
			}
		})
	}
}

func TestParsePlacement(t *testing.T) {
	env := []string{"A=1", "constraint:node==h1", "affinity:container!=db", "constraint:storage==~ssd", "B=constraint:x"}
	labels := map[string]string{
		LabelConstraints: `["zone==z1"]`,
		LabelAffinities:  `["image==redis"]`,
		LabelAffinity:    "NOT EMPTY; NAME web*",
		LabelStrategy:    "binpack",
	}
	p, clean, err := ParsePlacement(env, labels)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(clean, []string{"A=1", "B=constraint:x"}) {
		t.Fatalf("clean env = %q", clean)
	}
	var cs, as []string
	for _, e := range p.Constraints {
		cs = append(cs, e.String())
	}
	for _, e := range p.Affinities {
		as = append(as, e.String())
	}
	if !slices.Equal(cs, []string{"node==h1", "storage==~ssd", "zone==z1"}) || !slices.Equal(as, []string{"container!=db", "image==redis"}) {
		t.Fatalf("constraints %q affinities %q", cs, as)
	}
	if len(p.Rules) != 2 || p.Rules[0].String() != "NOT EMPTY" || p.Rules[1].String() != "NAME web*" {
		t.Fatalf("rules = %v", p.Rules)
	}
	if p.Chain == nil || p.Chain.String() != "binpack" {
		t.Fatalf("chain = %v", p.Chain)
	}

	// Nothing to remove: the same slice comes back.
	plain := []string{"A=1"}
	if _, c, err := ParsePlacement(plain, nil); err != nil || &c[0] != &plain[0] {
		t.Fatalf("env without placement entries was copied (%v)", err)
	}

	bad := []struct {
		env     []string
		labels  map[string]string
		wantErr string
	}{
		{env: []string{"constraint:node=h1"}, wantErr: `invalid constraint: expression "node=h1"`},
		{env: []string{"affinity:container"}, wantErr: "invalid affinity"},
		{env: []string{"affinity:node==h1"}, wantErr: "use constraint:node"},
		{labels: map[string]string{LabelConstraints: "node==h1"}, wantErr: "want a JSON array"},
		{labels: map[string]string{LabelAffinities: `["container"]`}, wantErr: "invalid affinity in label com.docker.swarm.affinities"},
		{labels: map[string]string{LabelStrategy: "fastest"}, wantErr: `invalid label io.clocker.strategy: unknown placement strategy "fastest"`},
		{labels: map[string]string{LabelAffinity: "NEAR db"}, wantErr: "unknown type"},
	}
	for _, b := range bad {
		if _, _, err := ParsePlacement(b.env, b.labels); err == nil || !strings.Contains(err.Error(), b.wantErr) {
			t.Errorf("ParsePlacement(%q, %v) err = %v, want %q", b.env, b.labels, err, b.wantErr)
		}
	}
}

func TestRules(t *testing.T) {
	n := up("h1", items(
		Container{ID: "abc123", Name: "web1", Image: "nginx:1.25", Group: "shop"},
	))
	empty := up("h2")
	tests := []struct {
		rule      string
		req       Request
		on, empty bool
	}{
		{rule: "EMPTY", on: false, empty: true},
		{rule: "NOT EMPTY", on: true, empty: false},
		{rule: "TYPE nginx", on: true},
		{rule: "TYPE", req: Request{Image: "nginx:latest"}, on: true},
		{rule: "NOT TYPE nginx", on: false, empty: true},
		{rule: "NAME web*", on: true},
		{rule: "ID abc", on: true},
		{rule: "ID abd", on: false},
		{rule: "APPLICATION shop", on: true},
		{rule: "APPLICATION", req: Request{Group: "shop"}, on: true},
		{rule: "APPLICATION", req: Request{}, on: false},
		{rule: "not application blog", on: true, empty: true},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.rule)
		if err != nil {
			t.Fatalf("%s: %v", tt.rule, err)
		}
		if got := r.Holds(&tt.req, &n); got != tt.on {
			t.Errorf("%q on a busy host = %v, want %v", tt.rule, got, tt.on)
		}
		if got := r.Holds(&tt.req, &empty); got != tt.empty {
			t.Errorf("%q on an empty host = %v, want %v", tt.rule, got, tt.empty)
		}
	}
	for _, bad := range []string{"", "NOT", "NAME", "ID", "EMPTY x", "TYPE a b", "NAME [", "SIZE 3"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}
