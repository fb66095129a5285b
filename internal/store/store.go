// Package store keeps Clocker's own state: in one bbolt file (Bolt, the
// default for one manager) or in etcd (Etcd, for several managers sharing
// the fleet). Both implement Store; callers do not know which they have.
//
// The bucket tree (in etcd, buckets are key prefixes: PREFIX/BUCKET/KEY):
//
//	meta
//	 └ schema → uint8 version, advanced by migrations
//	hosts
//	 └ <host name> → JSON host record (package hosts)
//	networks
//	 └ <network ID> → JSON fleet network with its IPAM leases (package sdn)
//	reschedules
//	 └ <old container ID> → JSON record of a container recreated on another host (package proxy)
//	applications
//	 └ <application ID> → JSON blueprint application: plan, entities, sensors (package blueprint)
//	catalog
//	 └ <symbolic name>:<version> → JSON catalog item of blueprint types (package blueprint)
//	tasks
//	 └ <task ID> → JSON ended blueprint task, the latest few hundred (package blueprint)
//	names
//	 └ <container name> → JSON reservation while a create is under way (package proxy)
//	ports
//	 └ <proto>-<port> → JSON claim of a published port while a create is under way (package sdn/ingress)
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
	// BucketApplications holds the applications deployed from blueprints
	// (package blueprint), so a restart resumes them.
	BucketApplications = []byte("applications")
	// BucketCatalog holds the Brooklyn catalog items (package blueprint),
	// keyed by symbolic name and version.
	BucketCatalog = []byte("catalog")
	// BucketTasks holds the history of blueprint tasks (package
	// blueprint), bounded, so activities outlive a restart.
	BucketTasks = []byte("tasks")
	// BucketNames holds the container names reserved fleet-wide, so that
	// managers sharing the store never give one name twice.
	BucketNames = []byte("names")
	// BucketPorts holds the published ports claimed fleet-wide by creates
	// under way (package sdn/ingress), so that managers sharing the store
	// never give one port twice.
	BucketPorts = []byte("ports")
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
	// 4 → 5: the applications bucket.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketApplications)
		return err
	},
	// 5 → 6: the catalog and tasks buckets.
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(BucketCatalog); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(BucketTasks)
		return err
	},
	// 6 → 7: the names bucket.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketNames)
		return err
	},
	// 7 → 8: the ports bucket.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketPorts)
		return err
	},
}

// Bolt is an open state database in one bbolt file.
type Bolt struct {
	db   *bolt.DB
	path string
}

// Open opens (creating when missing) the database in dir and brings its
// schema up to date. It gives up after a few seconds when another process
// holds the file, rather than hanging.
func Open(dir string) (*Bolt, error) {
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
	s := &Bolt{db: db, path: path}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Bolt) migrate() error {
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
func (s *Bolt) SchemaVersion() (int, error) {
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
func (s *Bolt) Close() error { return s.db.Close() }

// Put stores v as JSON under key in bucket.
func (s *Bolt) Put(bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), data)
	})
}

// Get decodes the value under key into v; errdefs.ErrNotFound when absent.
func (s *Bolt) Get(bucket []byte, key string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucket).Get([]byte(key))
		if data == nil {
			return fmt.Errorf("%s %q: %w", bucket, key, errdefs.ErrNotFound)
		}
		return json.Unmarshal(data, v)
	})
}

// Create stores v as JSON under key in bucket unless the key is there
// already: then errdefs.ErrConflict and nothing changes.
func (s *Bolt) Create(bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(key)) != nil {
			return conflict(bucket, key)
		}
		return b.Put([]byte(key), data)
	})
}

// String names the store: its file.
func (s *Bolt) String() string { return "bbolt " + s.path }

// Delete removes key from bucket; deleting a missing key is not an error.
func (s *Bolt) Delete(bucket []byte, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
}

// ForEach calls fn with every key and raw JSON value of bucket, in key order.
func (s *Bolt) ForEach(bucket []byte, fn func(key string, value []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}
