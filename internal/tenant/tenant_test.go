package tenant

import (
	"context"
	"testing"

	"github.com/clocker/clocker/internal/labels"
)

func TestKeys(t *testing.T) {
	for _, c := range []struct{ name, key string }{
		{"alice", "alice"},
		{"bob-2.example", "bob-2.example"},
		{"Alice", "X416c696365"}, // upper case: never a plain key
		{"a_b", "X615f62"},       // '_' ends a key: never in one
		{"-x", "X2d78"},          // the engine's names start with a letter or digit
		{"alice@corp", "X616c69636540636f7270"},
	} {
		if got := KeyOf(c.name); got != c.key {
			t.Errorf("KeyOf(%q) = %q, want %q", c.name, got, c.key)
		}
	}
}

func TestNamesMapBothWays(t *testing.T) {
	a, b := New("alice"), New("bob")
	if got := a.EngineName("web"); got != "alice_web" {
		t.Fatalf("EngineName = %q", got)
	}
	if got := a.EngineName("/web"); got != "/alice_web" {
		t.Fatalf("EngineName(/web) = %q", got)
	}
	if a.EngineName("web") == b.EngineName("web") {
		t.Fatal("two tenants' web meet on the engines")
	}
	for _, n := range []string{"web", "my_app_1", "x.y-z"} {
		if got := a.ShownName(a.EngineName(n)); got != n {
			t.Errorf("round trip of %q: %q", n, got)
		}
		if got := a.ShownName("/" + a.EngineName(n)); got != "/"+n {
			t.Errorf("round trip of /%q: %q", n, got)
		}
	}
	if got := a.ShownPath("/alice_web/alice_db"); got != "/web/db" {
		t.Errorf("ShownPath = %q", got)
	}
	if got := a.ShownName("bob_web"); got != "bob_web" {
		t.Errorf("another's name changed: %q", got)
	}
	if got := a.EngineName(""); got != "" {
		t.Errorf("empty name: %q", got)
	}
}

// A key holds no '_': no tenant's names start with another's prefix.
func TestPrefixesDoNotOverlap(t *testing.T) {
	a, ab := New("a"), New("a_b")
	if ab.HasPrefix(a.EngineName("b_web")) || a.HasPrefix(ab.EngineName("web")) {
		t.Fatal("prefixes overlap")
	}
	if !a.HasPrefix("/a_web") || a.HasPrefix("ab_web") {
		t.Fatal("HasPrefix")
	}
}

func TestOwns(t *testing.T) {
	a := New("alice")
	if !a.Owns(map[string]string{labels.Owner: "alice"}, "x") || a.Owns(map[string]string{labels.Owner: "bob"}, "alice_x") {
		t.Fatal("the label decides")
	}
	if !a.Owns(nil, "alice_vol") || a.Owns(nil, "bob_vol") {
		t.Fatal("without the label, the prefix decides")
	}
	if a.OwnsLabels(nil) {
		t.Fatal("a container without the label is nobody's")
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("scope without one")
	}
	s, ok := FromContext(NewContext(context.Background(), New("bob")))
	if !ok || s.Name != "bob" || s.Key != "bob" {
		t.Fatalf("scope %+v %v", s, ok)
	}
}
