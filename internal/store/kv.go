package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/clocker/clocker/internal/errdefs"
)

// Store is Clocker's state: JSON values under string keys in named
// buckets. Every method is safe for concurrent use. An implementation
// whose backend cannot be reached answers with an error that is
// errdefs.ErrUnavailable and names the store.
type Store interface {
	// Put stores v as JSON under key in bucket.
	Put(bucket []byte, key string, v any) error
	// Get decodes the value under key into v; errdefs.ErrNotFound when absent.
	Get(bucket []byte, key string, v any) error
	// Create stores v as JSON under key unless the key exists: then
	// errdefs.ErrConflict and nothing changes. Among concurrent creates
	// of one key, through any number of processes sharing the store,
	// exactly one succeeds.
	Create(bucket []byte, key string, v any) error
	// Delete removes key from bucket; a missing key is not an error.
	Delete(bucket []byte, key string) error
	// ForEach calls fn with every key and raw JSON value of bucket, in
	// key order.
	ForEach(bucket []byte, fn func(key string, value []byte) error) error
	// Close releases the store.
	Close() error
	// String names the store for messages: "bbolt FILE" or "etcd://…".
	String() string
}

var (
	_ Store = (*Bolt)(nil)
	_ Store = (*Etcd)(nil)
)

func conflict(bucket []byte, key string) error {
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s %q exists already", bucket, key))
}

// unavailable is a store that could not be reached: errdefs.ErrUnavailable
// (503 to clients) and the cause.
type unavailable struct {
	store string
	err   error
}

func (u *unavailable) Error() string {
	return fmt.Sprintf("state store %s unavailable: %v", u.store, u.err)
}

func (u *unavailable) Unwrap() []error { return []error{errdefs.ErrUnavailable, u.err} }

// IsUnavailable reports whether err says the store could not be reached.
func IsUnavailable(err error) bool {
	var u *unavailable
	return errors.As(err, &u)
}

// Spec is where the state lives, as --store gives it: empty for the bbolt
// file in the data directory, or etcd://HOST:PORT[,HOST:PORT…].
type Spec struct {
	// Endpoints of etcd; none: bbolt.
	Endpoints []string
}

// ParseSpec reads a --store value.
func ParseSpec(raw string) (Spec, error) {
	if raw == "" || raw == "bbolt" {
		return Spec{}, nil
	}
	rest, ok := strings.CutPrefix(raw, "etcd://")
	if !ok {
		return Spec{}, fmt.Errorf("--store %q: want etcd://HOST:PORT[,HOST:PORT…] (or nothing for the bbolt file in the data directory)", raw)
	}
	rest = strings.TrimSuffix(rest, "/")
	var eps []string
	for _, hp := range strings.Split(rest, ",") {
		hp = strings.TrimSpace(hp)
		if hp == "" {
			continue
		}
		if _, err := url.Parse("http://" + hp); err != nil || strings.ContainsAny(hp, "/?#@") {
			return Spec{}, fmt.Errorf("--store %q: endpoint %q: want HOST:PORT", raw, hp)
		}
		eps = append(eps, hp)
	}
	if len(eps) == 0 {
		return Spec{}, fmt.Errorf("--store %q: no endpoint", raw)
	}
	return Spec{Endpoints: eps}, nil
}

// IsEtcd reports whether the spec names etcd.
func (s Spec) IsEtcd() bool { return len(s.Endpoints) > 0 }

func isNotFound(err error) bool { return errors.Is(err, errdefs.ErrNotFound) }
func isConflict(err error) bool { return errors.Is(err, errdefs.ErrConflict) }

// Buckets are every bucket of Clocker's state, for copying it whole.
var Buckets = [][]byte{
	BucketHosts, BucketNetworks, BucketReschedules, BucketMachines,
	BucketApplications, BucketCatalog, BucketTasks, BucketNames, BucketPorts,
}
