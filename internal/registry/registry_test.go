package registry

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

func TestRegistry(t *testing.T) {
	r := New[func() int]("widget")
	if err := r.Register("b", func() int { return 2 }); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("a", func() int { return 1 }); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("a", func() int { return 3 }); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `widget "a" is already registered`) {
		t.Fatalf("taken name: %v", err)
	}
	if err := r.Register("c", nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("nil constructor: %v", err)
	}
	if err := r.Register("", func() int { return 0 }); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("names: %v", got)
	}
	if f, err := r.Get("b"); err != nil || f() != 2 {
		t.Fatalf("get b: %v", err)
	}
	if _, err := r.Get("z"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `unknown widget "z" (known: a, b)`) {
		t.Fatalf("unknown: %v", err)
	}
	r.Unregister("a")
	if got := r.Names(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after unregister: %v", got)
	}
}
