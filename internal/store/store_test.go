package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/clocker/clocker/internal/errdefs"
)

type record struct {
	Name string
	URL  string
}

func TestPutGetDeleteSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(BucketHosts, "h1", record{Name: "h1", URL: "tcp://10.0.0.1:2375"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(BucketHosts, "h2", record{Name: "h2", URL: "unix:///run/h2.sock"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got record
	if err := s.Get(BucketHosts, "h1", &got); err != nil {
		t.Fatal(err)
	}
	if got.URL != "tcp://10.0.0.1:2375" {
		t.Fatalf("h1 = %+v", got)
	}
	var keys []string
	if err := s.ForEach(BucketHosts, func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "h1" || keys[1] != "h2" {
		t.Fatalf("keys = %v", keys)
	}
	if err := s.Delete(BucketHosts, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(BucketHosts, "h1", &got); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
}

func TestMigrationsRunOnceAndRecordVersion(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.SchemaVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v != len(migrations) {
			t.Fatalf("open %d: schema %d, want %d", i, v, len(migrations))
		}
		s.Close()
	}
}

func TestOpenHeldByAnotherFailsFast(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir); err == nil {
		t.Fatal("second open of a held database succeeded")
	}
}

// A database written by a clocker that knew only the hosts bucket (schema 1)
// gains the networks, reschedules and machines buckets on open and keeps its hosts.
func TestMigrationAddsNetworksBucket(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keySchema, []byte{1}); err != nil {
			return err
		}
		hosts, err := tx.CreateBucket(BucketHosts)
		if err != nil {
			return err
		}
		return hosts.Put([]byte("h1"), []byte(`{"Name":"h1","URL":"tcp://10.0.0.1:2375"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != len(migrations) {
		t.Fatalf("schema %d after migration, want %d", v, len(migrations))
	}
	var h record
	if err := s.Get(BucketHosts, "h1", &h); err != nil || h.URL != "tcp://10.0.0.1:2375" {
		t.Fatalf("host after migration: %+v, %v", h, err)
	}
	if err := s.Put(BucketNetworks, "n1", record{Name: "net"}); err != nil {
		t.Fatalf("networks bucket: %v", err)
	}
	var n record
	if err := s.Get(BucketNetworks, "n1", &n); err != nil || n.Name != "net" {
		t.Fatalf("network: %+v, %v", n, err)
	}
	if err := s.Put(BucketReschedules, "c1", record{Name: "web"}); err != nil {
		t.Fatalf("reschedules bucket: %v", err)
	}
	if err := s.Put(BucketMachines, "local1", record{Name: "local1"}); err != nil {
		t.Fatalf("machines bucket: %v", err)
	}
}
