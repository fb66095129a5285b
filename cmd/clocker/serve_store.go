package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/clocker/clocker/internal/store"
)

// storeFlags say where the manager's state lives: the bbolt file in the
// data directory (one manager), or etcd (several managers of one fleet).
// The TLS and auth flags are etcdctl's.
type storeFlags struct {
	url               string
	prefix            string
	cacert, cert, key string
	user              string
	timeout           time.Duration
	flagPrefix        string // "store-" for serve, "to-" for store migrate
	spec              store.Spec
}

func (f *storeFlags) register(fs *flag.FlagSet, urlFlag, pfx string) {
	f.flagPrefix = pfx
	fs.StringVar(&f.url, urlFlag, "", "state store: etcd://HOST:PORT[,HOST:PORT…] for several managers sharing the fleet (default: the bbolt file in --data)")
	fs.StringVar(&f.prefix, pfx+"prefix", store.DefaultEtcdPrefix, "etcd key prefix of this fleet's state (fleets sharing an etcd each take their own)")
	fs.StringVar(&f.cacert, pfx+"cacert", "", "CA certificate of etcd's TLS, as etcdctl --cacert (any TLS flag: https)")
	fs.StringVar(&f.cert, pfx+"cert", "", "client certificate presented to etcd, as etcdctl --cert")
	fs.StringVar(&f.key, pfx+"key", "", "key of the etcd client certificate, as etcdctl --key")
	fs.StringVar(&f.user, pfx+"user", "", "etcd user USER:PASSWORD, as etcdctl --user")
	fs.DurationVar(&f.timeout, pfx+"timeout", 5*time.Second, "how long one etcd operation may take before the store counts as unavailable (503)")
}

func (f *storeFlags) check(urlFlag string) error {
	var err error
	if f.spec, err = store.ParseSpec(f.url); err != nil {
		return err
	}
	if !f.spec.IsEtcd() && (f.cacert != "" || f.cert != "" || f.key != "" || f.user != "") {
		return fmt.Errorf("--%scacert, --%scert, --%skey and --%suser are for an etcd --%s", f.flagPrefix, f.flagPrefix, f.flagPrefix, f.flagPrefix, urlFlag)
	}
	if (f.cert == "") != (f.key == "") {
		return fmt.Errorf("--%scert and --%skey go together", f.flagPrefix, f.flagPrefix)
	}
	if f.user != "" && !strings.Contains(f.user, ":") {
		return fmt.Errorf("--%suser: want USER:PASSWORD", f.flagPrefix)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--%stimeout must be positive", f.flagPrefix)
	}
	return nil
}

// openEtcd connects to the etcd the flags name.
func (f *storeFlags) openEtcd() (*store.Etcd, error) {
	if !f.spec.IsEtcd() {
		return nil, errors.New("not an etcd store")
	}
	user, pass, _ := strings.Cut(f.user, ":")
	return store.OpenEtcd(store.EtcdOptions{
		Endpoints: f.spec.Endpoints, Prefix: f.prefix,
		CACert: f.cacert, Cert: f.cert, Key: f.key,
		Username: user, Password: pass, Timeout: f.timeout,
	})
}

// open opens the state: etcd when named, else the bbolt file in dataDir.
// etcd is also returned alone (nil for bbolt), for leader election.
func (f *storeFlags) open(dataDir string) (store.Store, *store.Etcd, error) {
	if !f.spec.IsEtcd() {
		st, err := store.Open(dataDir)
		return st, nil, err
	}
	et, err := f.openEtcd()
	if err != nil {
		return nil, nil, err
	}
	return et, et, nil
}

// storeCmd: clocker store migrate --from DIR --to etcd://…
func storeCmd(args []string, out interface{ Write([]byte) (int, error) }) error {
	if len(args) == 0 || args[0] != "migrate" {
		return errors.New("usage: clocker store migrate --from DIR --to etcd://HOST:PORT[,…] [--to-prefix P] [--overwrite]")
	}
	fs := flag.NewFlagSet("store migrate", flag.ContinueOnError)
	from := fs.String("from", defaultDataDir(), "data directory of the single manager whose bbolt state is copied (that manager stopped)")
	overwrite := fs.Bool("overwrite", false, "replace records etcd holds already (else they stop the copy)")
	var to storeFlags
	to.register(fs, "to", "to-")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := to.check("to"); err != nil {
		return err
	}
	if !to.spec.IsEtcd() {
		return errors.New("--to etcd://HOST:PORT[,…] is required")
	}
	src, err := store.Open(*from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := to.openEtcd()
	if err != nil {
		return err
	}
	defer dst.Close()
	counts, err := store.Copy(src, dst, *overwrite)
	for _, b := range store.Buckets {
		if n := counts[string(b)]; n > 0 {
			fmt.Fprintf(out, "%-14s %d\n", b, n)
		}
	}
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	fmt.Fprintf(out, "copied %s to %s under %s\n", src, dst, dst.Prefix())
	return nil
}
