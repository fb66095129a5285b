package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// impl opens a fresh, empty store; a second call in one test gives a
// second handle on the same state (a second manager).
type impl struct {
	name string
	open func(t *testing.T) func() Store
}

// etcdSrv is one etcd for the package's tests (TestMain); each test
// gets its own key prefix.
var (
	etcdSrv *etcdtest.Server
	etcdErr error
)

func TestMain(m *testing.M) {
	var dir string
	if etcdtest.Missing() == "" {
		dir, etcdErr = os.MkdirTemp("", "store-etcd")
		if etcdErr == nil {
			etcdSrv, etcdErr = etcdtest.Run(dir)
		}
	}
	code := m.Run()
	if etcdSrv != nil {
		etcdSrv.Kill()
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func sharedEtcd(t *testing.T) *etcdtest.Server {
	t.Helper()
	etcdtest.Require(t)
	if etcdErr != nil {
		t.Fatal(etcdErr)
	}
	return etcdSrv
}

var impls = []impl{
	{"bbolt", func(t *testing.T) func() Store {
		dir := t.TempDir()
		var s *Bolt
		return func() Store {
			if s == nil {
				var err error
				if s, err = Open(dir); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
			}
			return s // bbolt is one process's: the same handle
		}
	}},
	{"etcd", func(t *testing.T) func() Store {
		srv := sharedEtcd(t)
		prefix := "/test/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
		return func() Store {
			s, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: prefix, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}},
}

func forEachImpl(t *testing.T, fn func(t *testing.T, open func() Store)) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { fn(t, im.open(t)) })
	}
}

func keys(t *testing.T, s Store, bucket []byte) []string {
	t.Helper()
	var ks []string
	if err := s.ForEach(bucket, func(k string, _ []byte) error { ks = append(ks, k); return nil }); err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestConformancePutGetDelete(t *testing.T) {
	forEachImpl(t, func(t *testing.T, open func() Store) {
		s := open()
		if err := s.Put(BucketHosts, "h1", record{Name: "h1", URL: "tcp://a:1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(BucketHosts, "h1", record{Name: "h1", URL: "tcp://b:2"}); err != nil {
			t.Fatal(err)
		}
		var got record
		if err := s.Get(BucketHosts, "h1", &got); err != nil || got.URL != "tcp://b:2" {
			t.Fatalf("get = %+v, %v", got, err)
		}
		if err := s.Get(BucketNetworks, "h1", &got); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("other bucket: %v, want ErrNotFound", err)
		}
		if err := s.Delete(BucketHosts, "h1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(BucketHosts, "h1"); err != nil {
			t.Fatalf("delete of a missing key: %v", err)
		}
		if err := s.Get(BucketHosts, "h1", &got); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("after delete: %v, want ErrNotFound", err)
		}
	})
}

func TestConformanceForEachOrderAndPages(t *testing.T) {
	defer func(p int64) { etcdPage = p }(etcdPage)
	etcdPage = 3 // several pages from a few keys
	forEachImpl(t, func(t *testing.T, open func() Store) {
		s := open()
		want := []string{"a", "a/b", "b", "c:1", "c:2", "d", "e", "f"}
		for i := len(want) - 1; i >= 0; i-- {
			if err := s.Put(BucketCatalog, want[i], i); err != nil {
				t.Fatal(err)
			}
		}
		// Neighbouring buckets stay apart, whatever their names share.
		if err := s.Put(BucketTasks, "a", 0); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, s, BucketCatalog); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("keys = %v, want %v", got, want)
		}
		stop := errors.New("stop")
		n := 0
		err := s.ForEach(BucketCatalog, func(string, []byte) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("ForEach after fn's error: %v after %d", err, n)
		}
		if got := keys(t, s, BucketReschedules); len(got) != 0 {
			t.Fatalf("empty bucket: %v", got)
		}
	})
}

func TestConformanceCreate(t *testing.T) {
	forEachImpl(t, func(t *testing.T, open func() Store) {
		s := open()
		if err := s.Create(BucketNames, "web", "m1"); err != nil {
			t.Fatal(err)
		}
		err := s.Create(BucketNames, "web", "m2")
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("second create: %v, want ErrConflict", err)
		}
		var owner string
		if err := s.Get(BucketNames, "web", &owner); err != nil || owner != "m1" {
			t.Fatalf("owner = %q, %v: the conflicting create changed it", owner, err)
		}
		if err := s.Delete(BucketNames, "web"); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(BucketNames, "web", "m3"); err != nil {
			t.Fatalf("create after delete: %v", err)
		}
	})
}

// Concurrent creates of one key through several handles (managers):
// exactly one wins.
func TestConformanceCreateRace(t *testing.T) {
	forEachImpl(t, func(t *testing.T, open func() Store) {
		handles := []Store{open(), open(), open()}
		const rounds, per = 5, 4
		for r := 0; r < rounds; r++ {
			key := fmt.Sprintf("name-%d", r)
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, conflicts := 0, 0
			for i := 0; i < len(handles)*per; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := handles[i%len(handles)].Create(BucketNames, key, i)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, errdefs.ErrConflict):
						conflicts++
					default:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 || conflicts != len(handles)*per-1 {
				t.Fatalf("%s: %d wins, %d conflicts", key, wins, conflicts)
			}
		}
	})
}

// Two fleets on one etcd, under different prefixes, do not see each other.
func TestEtcdPrefixesKeepFleetsApart(t *testing.T) {
	srv := sharedEtcd(t)
	a, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/fleetA"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/fleetAB/"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Put(BucketHosts, "h", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(BucketHosts, "h", 2); err != nil {
		t.Fatalf("other fleet's key conflicts: %v", err)
	}
	if got := keys(t, b, BucketHosts); len(got) != 1 {
		t.Fatalf("fleet B sees %v", got)
	}
}

// etcd stopped: operations fail as unavailable, naming the store; etcd
// back: they work again on the same handle.
func TestEtcdUnavailableThenBack(t *testing.T) {
	srv := etcdtest.Start(t) // its own: this test stops it
	s, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(BucketHosts, "h", 1); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for _, err := range []error{s.Put(BucketHosts, "h", 2), s.Create(BucketNames, "n", 1), s.Get(BucketHosts, "h", new(int))} {
		if !errors.Is(err, errdefs.ErrUnavailable) || !IsUnavailable(err) || !strings.Contains(err.Error(), srv.Endpoint) {
			t.Fatalf("with etcd stopped: %v, want unavailable naming %s", err, srv.Endpoint)
		}
		if errdefs.Status(err) != 503 {
			t.Fatalf("status %d", errdefs.Status(err))
		}
	}
	srv.Restart(t)
	var v int
	if err := s.Get(BucketHosts, "h", &v); err != nil || v != 1 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
}

func TestParseSpec(t *testing.T) {
	for raw, want := range map[string]string{
		"":                              "[]",
		"etcd://a:2379":                 "[a:2379]",
		"etcd://a:2379,b:2379/":         "[a:2379 b:2379]",
		"etcd://[::1]:2379, 10.0.0.2:1": "[[::1]:2379 10.0.0.2:1]",
	} {
		s, err := ParseSpec(raw)
		if err != nil || fmt.Sprint(s.Endpoints) != want {
			t.Errorf("%q: %v, %v; want %s", raw, s.Endpoints, err, want)
		}
	}
	for _, bad := range []string{"etcd://", "http://a:1", "etcd://u@a:1", "etcd://a:1/x"} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Copy carries a bbolt state over to etcd whole, and refuses to overwrite
// unless told.
func TestCopyBoltToEtcd(t *testing.T) {
	srv := sharedEtcd(t)
	from, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	for i, b := range Buckets {
		if err := from.Put(b, fmt.Sprintf("k%d", i), map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	to, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/copy/"})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	counts, err := Copy(from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range Buckets {
		var v map[string]int
		if err := to.Get(b, fmt.Sprintf("k%d", i), &v); err != nil || v["n"] != i || counts[string(b)] != 1 {
			t.Fatalf("%s: %v %v (counts %v)", b, v, err, counts)
		}
	}
	if _, err := Copy(from, to, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second copy: %v, want a conflict", err)
	}
	if _, err := Copy(from, to, true); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
}

// Replace and DeleteIf act only on the value read: a claim another
// manager took since is left alone, and Replace keeps the key's lease.
func TestEtcdReplaceAndDeleteIf(t *testing.T) {
	srv := sharedEtcd(t)
	s, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/replace/", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type claim struct{ Who, ID string }
	a := claim{Who: "a"}
	if err := s.CreateTTL(BucketNames, "n", a, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	made := claim{Who: "a", ID: "c1"}
	if err := s.Replace(BucketNames, "n", claim{Who: "b"}, made); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Replace of a value not there: %v", err)
	}
	if err := s.Replace(BucketNames, "n", a, made); err != nil {
		t.Fatal(err)
	}
	var got claim
	if err := s.Get(BucketNames, "n", &got); err != nil || got != made {
		t.Fatalf("after Replace: %+v %v", got, err)
	}
	if err := s.DeleteIf(BucketNames, "n", a); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("DeleteIf of the old value: %v", err)
	}
	// The lease kept: the key still expires.
	deadline := time.Now().Add(10 * time.Second)
	for s.Get(BucketNames, "n", &got) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the replaced claim lost its expiry")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.Create(BucketNames, "m", made); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIf(BucketNames, "m", made); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(BucketNames, "m", &got); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after DeleteIf: %v", err)
	}
	if err := s.DeleteIf(BucketNames, "m", made); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("DeleteIf of a key gone: %v", err)
	}
}
