package ingress

import (
	"context"
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
	// ID and Host are the container's once its create succeeded (done):
	// the claim of a container removed within the claim's life is stale,
	// and the next create that asks for the port drops it.
	ID   string `json:",omitempty"`
	Host string `json:",omitempty"`
}

func sharedKey(k Key) string { return k.Proto + "-" + strconv.Itoa(int(k.Port)) }

// claimShared claims k for the container name in the shared store; t.mu
// is held. Held by another manager's create: ErrConflict naming it. A
// claim of this manager's own is renewed: this manager's table, which
// knows its own creates, has found the port free.
func (t *Table) claimShared(k Key, name string, c *claim) error {
	if t.shared == nil {
		return nil
	}
	rec := sharedClaim{Manager: t.sharedOwner, Container: name, At: time.Now().UTC()}
	for try := 0; ; try++ {
		err := t.shared.CreateTTL(store.BucketPorts, sharedKey(k), rec, t.sharedTTL)
		if err == nil {
			c.shared[k] = rec
		}
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
		case try < 3 && t.claimStale(prev):
			if t.shared.DeleteIf(store.BucketPorts, sharedKey(k), prev) == nil {
				continue
			}
		}
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %q, being created through manager %s", prev.Container, prev.Manager))
	}
}

// claimStale tells whether prev's container was made and is gone since.
func (t *Table) claimStale(prev sharedClaim) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return t.fleet.ClaimStale(ctx, prev.Host, prev.ID)
}

// nameShared names the container a create made in its shared claims
// (c's keys), so that a create after its removal need not wait for them
// to run out; t.mu is not held.
func (t *Table) nameShared(c *claim) {
	if t.shared == nil || len(c.shared) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, ctr, err := t.fleet.Resolve(ctx, c.who.name)
	if err != nil {
		return
	}
	for k, rec := range c.shared {
		made := rec
		made.ID, made.Host = ctr.Summary.ID, h.Name
		if err := t.shared.Replace(store.BucketPorts, sharedKey(k), rec, made); err != nil {
			t.log.Debug("ingress: naming the container in its port claim", "port", k, "err", err)
		}
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
