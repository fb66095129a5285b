package provision

import (
	"context"
	"errors"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

// The pool option lets the headroom policy make ssh hosts: a request
// without a target takes the first machine no host uses.
func TestSSHPool(t *testing.T) {
	p, err := New("ssh", Config{DataDir: t.TempDir(), Options: map[string]string{"pool": "10.0.0.5, admin@10.0.0.6:2222"}})
	if err != nil {
		t.Fatal(err)
	}
	s := p.(*SSH)
	if got := s.takeFromPool("ssh1"); got != "root@10.0.0.5:22" {
		t.Fatalf("first: %q", got)
	}
	if got := s.takeFromPool("ssh2"); got != "admin@10.0.0.6:2222" {
		t.Fatalf("second: %q", got)
	}
	if got := s.takeFromPool("ssh3"); got != "" {
		t.Fatalf("an empty pool gave %q", got)
	}
	s.release("root@10.0.0.5:22") // ssh1 destroyed
	if got := s.takeFromPool("ssh3"); got != "root@10.0.0.5:22" {
		t.Fatalf("after a release: %q", got)
	}
	if s.claim("admin@10.0.0.6:2222", "other") {
		t.Fatal("a target taken twice")
	}
	if _, err := p.Create(context.Background(), Request{Name: "ssh4"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("no target and no free pool machine: %v", err)
	}
	if _, err := New("ssh", Config{DataDir: t.TempDir(), Options: map[string]string{"pool": "root@"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("a bad pool entry: %v", err)
	}
}
