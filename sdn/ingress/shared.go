package ingress

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Share makes every port a create claims claimed in st too (etcd, shared
// by the fleet's managers), so that two managers never give one published
// port to two containers created at once. The claim of a create that
// succeeded is kept for ttl, long enough for every manager's cache to show
// the container holding the port (then each manager's table refuses it by
// itself); that of a create that failed is dropped at once.
func (t *Table) Share(st hosts.NameStore, owner string, ttl time.Duration) {
	t.mu.Lock()
	t.shared, t.sharedOwner, t.sharedTTL = st, owner, ttl
	t.mu.Unlock()
}

// sharedClaim is a port's record in the shared store.
type sharedClaim struct {
	Manager   string
	Container string
	At        time.Time
}

func sharedKey(k Key) string { return k.Proto + "-" + strconv.Itoa(int(k.Port)) }

// claimShared claims k for the container name in the shared store; t.mu
// is held. Held by another manager's create: ErrConflict naming it. A
// claim of this manager's own is renewed: this manager's table, which
// knows its own creates, has found the port free.
func (t *Table) claimShared(k Key, name string) error {
	if t.shared == nil {
		return nil
	}
	rec := sharedClaim{Manager: t.sharedOwner, Container: name, At: time.Now().UTC()}
	for try := 0; ; try++ {
		err := t.shared.CreateTTL(store.BucketPorts, sharedKey(k), rec, t.sharedTTL)
		if !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		var prev sharedClaim
		switch err := t.shared.Get(store.BucketPorts, sharedKey(k), &prev); {
		case errors.Is(err, errdefs.ErrNotFound) && try < 3:
			continue // expired or dropped meanwhile
		case err != nil && !errors.Is(err, errdefs.ErrNotFound):
			return err
		case prev.Manager == t.sharedOwner && try < 3:
			if err := t.shared.Delete(store.BucketPorts, sharedKey(k)); err != nil {
				return err
			}
			continue
		}
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %q, being created through manager %s", prev.Container, prev.Manager))
	}
}

// dropShared gives back the shared claims of a create that failed; t.mu
// is held.
func (t *Table) dropShared(keys []Key) {
	if t.shared == nil {
		return
	}
	for _, k := range keys {
		if err := t.shared.Delete(store.BucketPorts, sharedKey(k)); err != nil {
			t.log.Warn("ingress: dropping a port claim", "port", k, "err", err)
		}
	}
}
