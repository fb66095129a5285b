package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/clocker/clocker/internal/errdefs"
)

// EtcdOptions say how to reach etcd, with the options etcd's own clients
// (etcdctl) take.
type EtcdOptions struct {
	Endpoints []string // HOST:PORT
	// Prefix is put before every key, so several fleets share one etcd
	// (default DefaultEtcdPrefix). Keys are PREFIX + BUCKET + "/" + KEY.
	Prefix string
	// TLS: any of these turns it on (https endpoints), as etcdctl's
	// --cacert, --cert, --key.
	CACert, Cert, Key string
	// Username and Password, as etcdctl's --user USER:PASSWORD.
	Username, Password string
	// Timeout bounds each operation (default 5s): past it the store is
	// unavailable, errdefs.ErrUnavailable.
	Timeout time.Duration
}

// DefaultEtcdPrefix is where Clocker's keys start unless told otherwise.
const DefaultEtcdPrefix = "/clocker/"

// Etcd is the state in etcd, shared by every manager of a fleet.
type Etcd struct {
	cli     *clientv3.Client
	prefix  string
	name    string
	timeout time.Duration
}

// OpenEtcd connects to etcd and checks that it answers.
func OpenEtcd(o EtcdOptions) (*Etcd, error) {
	if len(o.Endpoints) == 0 {
		return nil, fmt.Errorf("etcd: no endpoint")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	tlsOn := o.CACert != "" || o.Cert != "" || o.Key != ""
	scheme := "http://"
	spec := &clientv3.ConfigSpec{DialTimeout: o.Timeout, KeepAliveTime: 2 * time.Second, KeepAliveTimeout: 2 * time.Second}
	if tlsOn {
		scheme = "https://"
		spec.Secure = &clientv3.SecureConfig{Cacert: o.CACert, Cert: o.Cert, Key: o.Key}
	}
	if o.Username != "" {
		spec.Auth = &clientv3.AuthConfig{Username: o.Username, Password: o.Password}
	}
	for _, e := range o.Endpoints {
		spec.Endpoints = append(spec.Endpoints, scheme+e)
	}
	name := "etcd://" + strings.Join(o.Endpoints, ",")
	cfg, err := clientv3.NewClientConfig(spec, zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cfg.Logger = zap.NewNop()
	// Reconnect within a second of etcd coming back (gRPC's default backs
	// off to two minutes), so the managers resume promptly.
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: time.Second,
	}))
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, &unavailable{store: name, err: err}
	}
	s := &Etcd{cli: cli, prefix: o.Prefix, name: name, timeout: o.Timeout}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := cli.Get(ctx, s.prefix, clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, s.fail(err)
	}
	return s, nil
}

// Client is the connection, for what builds on etcd (leader election).
func (s *Etcd) Client() *clientv3.Client { return s.cli }

// Prefix is where the store's keys start.
func (s *Etcd) Prefix() string { return s.prefix }

// String names the store.
func (s *Etcd) String() string { return s.name }

// Close closes the connection.
func (s *Etcd) Close() error { return s.cli.Close() }

func (s *Etcd) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

func (s *Etcd) fail(err error) error { return &unavailable{store: s.name, err: err} }

func (s *Etcd) key(bucket []byte, key string) string {
	return s.prefix + string(bucket) + "/" + key
}

// Put stores v as JSON under key in bucket.
func (s *Etcd) Put(bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.cli.Put(ctx, s.key(bucket, key), string(data)); err != nil {
		return s.fail(err)
	}
	return nil
}

// Get decodes the value under key into v; errdefs.ErrNotFound when absent.
func (s *Etcd) Get(bucket []byte, key string, v any) error {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key(bucket, key))
	if err != nil {
		return s.fail(err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%s %q: %w", bucket, key, errdefs.ErrNotFound)
	}
	return json.Unmarshal(resp.Kvs[0].Value, v)
}

// Create stores v under key in one etcd transaction that succeeds only
// when the key has never been created since its last delete.
func (s *Etcd) Create(bucket []byte, key string, v any) error {
	return s.create(bucket, key, v, 0)
}

// CreateTTL is Create of a key that etcd removes by itself after ttl (on
// a lease of its own), for reservations that must not outlive a manager
// that dies holding them.
func (s *Etcd) CreateTTL(bucket []byte, key string, v any, ttl time.Duration) error {
	return s.create(bucket, key, v, ttl)
}

func (s *Etcd) create(bucket []byte, key string, v any, ttl time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	k := s.key(bucket, key)
	ctx, cancel := s.ctx()
	defer cancel()
	var opts []clientv3.OpOption
	var lease clientv3.LeaseID
	if ttl > 0 {
		l, err := s.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
		if err != nil {
			return s.fail(err)
		}
		lease = l.ID
		opts = append(opts, clientv3.WithLease(lease))
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(data), opts...)).
		Commit()
	if err != nil {
		return s.fail(err)
	}
	if !resp.Succeeded {
		if lease != 0 {
			_, _ = s.cli.Revoke(ctx, lease)
		}
		return conflict(bucket, key)
	}
	return nil
}

// Replace stores v under key in place of old, keeping the key's lease
// (a claim's expiry), only when the key still holds old (as JSON):
// errdefs.ErrConflict when it changed or is gone.
func (s *Etcd) Replace(bucket []byte, key string, old, v any) error {
	was, err := json.Marshal(old)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	k := s.key(bucket, key)
	return s.ifValue(bucket, key, was, clientv3.OpPut(k, string(data), clientv3.WithIgnoreLease()))
}

// DeleteIf removes key only when it still holds old (as JSON):
// errdefs.ErrConflict when it changed or is gone.
func (s *Etcd) DeleteIf(bucket []byte, key string, old any) error {
	was, err := json.Marshal(old)
	if err != nil {
		return err
	}
	return s.ifValue(bucket, key, was, clientv3.OpDelete(s.key(bucket, key)))
}

// ifValue runs op in a transaction that succeeds only when key holds was.
func (s *Etcd) ifValue(bucket []byte, key string, was []byte, op clientv3.Op) error {
	k := s.key(bucket, key)
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), ">", 0), clientv3.Compare(clientv3.Value(k), "=", string(was))).
		Then(op).
		Commit()
	if err != nil {
		return s.fail(err)
	}
	if !resp.Succeeded {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s %q changed", bucket, key))
	}
	return nil
}

// Delete removes key from bucket; a missing key is not an error.
func (s *Etcd) Delete(bucket []byte, key string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.cli.Delete(ctx, s.key(bucket, key)); err != nil {
		return s.fail(err)
	}
	return nil
}

// etcdPage is how many keys ForEach reads at a time (a variable for tests).
var etcdPage int64 = 256

// ForEach calls fn with every key and value of bucket in key order, read
// a page at a time (each page consistent in itself).
func (s *Etcd) ForEach(bucket []byte, fn func(key string, value []byte) error) error {
	base := s.prefix + string(bucket) + "/"
	end := clientv3.GetPrefixRangeEnd(base)
	from := base
	for {
		ctx, cancel := s.ctx()
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(etcdPage),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		cancel()
		if err != nil {
			return s.fail(err)
		}
		for _, kv := range resp.Kvs {
			if err := fn(strings.TrimPrefix(string(kv.Key), base), kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Snapshot is a bucket as one etcd revision holds it, for a change made
// only if nothing in the bucket has changed since (Swap): a fleet-wide
// allocation (subnets, VNIs, host slices) decided on the whole of it.
type Snapshot struct {
	// Rev is the etcd revision read.
	Rev int64
	// Values are the bucket's raw JSON values by key.
	Values map[string][]byte
	mods   map[string]int64
}

// Snapshot reads the whole of bucket at one revision. It is for small
// buckets (fleet networks), read at once, not a page at a time.
func (s *Etcd) Snapshot(bucket []byte) (Snapshot, error) {
	base := s.prefix + string(bucket) + "/"
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, base, clientv3.WithPrefix())
	if err != nil {
		return Snapshot{}, s.fail(err)
	}
	snap := Snapshot{Rev: resp.Header.Revision, Values: map[string][]byte{}, mods: map[string]int64{}}
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), base)
		snap.Values[k] = kv.Value
		snap.mods[k] = kv.ModRevision
	}
	return snap, nil
}

// Swap stores v as JSON under key in bucket (v nil: deletes key) in one
// transaction that succeeds only if no key of bucket was created or
// changed since snap was read, and key is as snap saw it (so a record
// another manager removed is not brought back). Otherwise
// errdefs.ErrConflict and nothing changes: read a new snapshot, decide
// again.
func (s *Etcd) Swap(bucket []byte, snap Snapshot, key string, v any) error {
	k := s.key(bucket, key)
	var op clientv3.Op
	if v == nil {
		op = clientv3.OpDelete(k)
	} else {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		op = clientv3.OpPut(k, string(data))
	}
	base := s.prefix + string(bucket) + "/"
	cmps := []clientv3.Cmp{
		// Every key of the bucket (none: true) last changed at or before snap.
		clientv3.Compare(clientv3.ModRevision(base).WithPrefix(), "<", snap.Rev+1),
		// The key itself as snap saw it: there with that revision, or absent.
		clientv3.Compare(clientv3.ModRevision(k), "=", snap.mods[key]),
	}
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(op).Commit()
	if err != nil {
		return s.fail(err)
	}
	if !resp.Succeeded {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s %q: changed by another manager since it was read", bucket, key))
	}
	return nil
}

// Watch calls changed (from one goroutine) once the watch is in place and
// after every batch of changes to bucket, by any manager, until ctx ends.
// A broken watch (etcd unreachable) resumes from the last revision seen;
// past a compaction it starts afresh and calls changed again, so the
// caller re-reads what it missed.
func (s *Etcd) Watch(ctx context.Context, bucket []byte, changed func()) {
	base := s.prefix + string(bucket) + "/"
	var rev int64 // the last revision seen; 0: from now on
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev+1))
		}
		for resp := range s.cli.Watch(clientv3.WithRequireLeader(ctx), base, opts...) {
			if resp.Err() != nil {
				if resp.CompactRevision > 0 {
					rev = 0 // what was missed is gone: start afresh, re-read all
				}
				break
			}
			fresh := resp.Created && rev == 0
			rev = resp.Header.Revision
			if fresh || len(resp.Events) > 0 {
				// Watching from now on: what changed before is re-read.
				changed()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
