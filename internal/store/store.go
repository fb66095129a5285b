// Package store keeps Clocker's own state in one bbolt file.
//
// The bucket tree:
//
//	meta
//	 └ schema → uint8 version, advanced by migrations
//	hosts
//	 └ <host name> → JSON host record (package hosts)
//	networks
//	 └ <network ID> → JSON fleet network with its IPAM leases (package sdn)
//	reschedules
//	 └ <old container ID> → JSON record of a container recreated on another host (package proxy)
//
// Values are JSON so that a record can grow fields without a migration;
// migrations are for changes of shape.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/clocker/clocker/internal/errdefs"
)

// Bucket names. Keep them as []byte variables, as bbolt wants.
var (
	bucketMeta  = []byte("meta")
	keySchema   = []byte("schema")
	BucketHosts = []byte("hosts")
	// BucketNetworks holds fleet networks, keyed by network ID (package sdn/ipam).
	BucketNetworks = []byte("networks")
	// BucketReschedules holds containers recreated elsewhere after their
	// host failed, keyed by the stale copy's ID, until it is removed.
	BucketReschedules = []byte("reschedules")
	// BucketMachines holds the hosts provisioners made, keyed by host name
	// (package hosts/provision), so a restart re-adopts them.
	BucketMachines = []byte("machines")
)

// FileName is the database file inside the data directory.
const FileName = "clocker.db"

// migration moves the database from version (its index) to index+1.
type migration func(tx *bolt.Tx) error

// migrations in order; the database's schema version is how many ran.
var migrations = []migration{
	// 0 → 1: the hosts bucket.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketHosts)
		return err
	},
	// 1 → 2: the networks bucket (fleet networks and their IPAM leases).
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketNetworks)
		return err
	},
	// 2 → 3: the reschedules bucket.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketReschedules)
		return err
	},
	// 3 → 4: the machines bucket.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketMachines)
		return err
	},
}

// Store is an open state database.
type Store struct {
	db *bolt.DB
}

// Open opens (creating when missing) the database in dir and brings its
// schema up to date. It gives up after a few seconds when another process
// holds the file, rather than hanging.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 3 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: another clocker holds it", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		version := 0
		if v := meta.Get(keySchema); len(v) == 1 {
			version = int(v[0])
		}
		if version > len(migrations) {
			return fmt.Errorf("state schema %d is newer than this clocker knows (%d)", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if err := migrations[i](tx); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		return meta.Put(keySchema, []byte{byte(len(migrations))})
	})
}

// SchemaVersion reports how many migrations the database has had.
func (s *Store) SchemaVersion() (int, error) {
	var v int
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keySchema); len(b) == 1 {
			v = int(b[0])
		}
		return nil
	})
	return v, err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Put stores v as JSON under key in bucket.
func (s *Store) Put(bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), data)
	})
}

// Get decodes the value under key into v; errdefs.ErrNotFound when absent.
func (s *Store) Get(bucket []byte, key string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucket).Get([]byte(key))
		if data == nil {
			return fmt.Errorf("%s %q: %w", bucket, key, errdefs.ErrNotFound)
		}
		return json.Unmarshal(data, v)
	})
}

// Delete removes key from bucket; deleting a missing key is not an error.
func (s *Store) Delete(bucket []byte, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
}

// ForEach calls fn with every key and raw JSON value of bucket, in key order.
func (s *Store) ForEach(bucket []byte, fn func(key string, value []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}
