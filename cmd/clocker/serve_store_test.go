package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

func TestServeStoreFlags(t *testing.T) {
	cfg, err := parseServeFlags([]string{"--store", "etcd://127.0.0.1:2379,127.0.0.2:2379", "--store-prefix", "/fleet-a/", "--store-user", "root:pw"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.store.spec.Endpoints, ","); got != "127.0.0.1:2379,127.0.0.2:2379" {
		t.Fatalf("endpoints %s", got)
	}
	for _, bad := range [][]string{
		{"--store", "consul://x:1"},
		{"--store-cacert", "/ca.pem"}, // TLS for a bbolt store
		{"--store", "etcd://a:1", "--store-cert", "/c.pem"},
		{"--store", "etcd://a:1", "--store-user", "nopassword"},
	} {
		if _, err := parseServeFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// clocker store migrate copies a single manager's hosts to etcd, where a
// manager on --store etcd:// finds them.
func TestStoreMigrate(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	b, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(store.BucketHosts, "h1", hosts.Record{Name: "h1", URL: "tcp://10.0.0.1:2375"}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var out bytes.Buffer
	if err := storeCmd([]string{"migrate", "--from", dir, "--to", "etcd://" + srv.Endpoint, "--to-prefix", "/m/"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "hosts          1") {
		t.Fatalf("output:\n%s", out.String())
	}
	if err := storeCmd([]string{"migrate", "--from", dir, "--to", "etcd://" + srv.Endpoint, "--to-prefix", "/m/"}, &out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second migrate: %v, want a conflict", err)
	}
	var f storeFlags
	f.prefix, f.timeout = "/m/", 5e9
	f.spec, _ = store.ParseSpec("etcd://" + srv.Endpoint)
	st, _, err := f.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rec hosts.Record
	if err := st.Get(store.BucketHosts, "h1", &rec); err != nil || rec.URL != "tcp://10.0.0.1:2375" {
		t.Fatalf("h1 in etcd: %+v, %v", rec, err)
	}
}
