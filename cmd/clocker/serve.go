package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/clocker/clocker/frontdoor/tlsconf"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/reschedule"
	"github.com/clocker/clocker/scheduler"
)

// defaultEngine is the fleet's only host when none is given or stored.
const defaultEngine = "unix:///var/run/docker.sock"

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type serveConfig struct {
	listen  listFlag
	engines listFlag
	// engineTLS applies to every --engine given with it.
	engineTLS hosts.EngineTLS
	insecure  bool
	dataDir   string
	logLevel  string
	maxBody   int64
	// Placement (also from --config).
	strategy      string
	overcommit    float64
	usageInterval time.Duration
	configFile    string
	// maxPerHost is --max-containers-per-host: the chain's max-containers
	// (one setting for placement and, with provisioning, headroom).
	maxPerHost int
	// rescheduleAfter is how long a host stays down before its
	// reschedulable containers are recreated elsewhere.
	rescheduleAfter time.Duration
	// Ingress of published ports (serve_ingress.go).
	ingress ingressFlags
	// Fleet networks (serve_fleetnet.go).
	fleetnet fleetNetFlags
	// Provisioned hosts and headroom (serve_provision.go).
	provision provisionFlags
	// TLS, identities, authorization and limits (serve_frontdoor.go).
	front frontDoorFlags
	// advertise is the address other managers list this one by.
	advertise string
	// The state store: bbolt or etcd (serve_store.go).
	store storeFlags
}

// fileConfig is the --config file (YAML or JSON): settings a command line
// would otherwise carry. Flags given on the command line win.
type fileConfig struct {
	// Strategy is the placement chain, as --strategy.
	Strategy string `yaml:"strategy"`
	// Overcommit is the ratio of reservations to host totals, as --overcommit.
	Overcommit *float64 `yaml:"overcommit"`
	// UsageInterval is how often host usage is sampled, as --usage-interval.
	UsageInterval string `yaml:"usage-interval"`
}

// loadConfigFile reads a --config file; unknown keys are errors, so a typo
// does not pass silently.
func loadConfigFile(path string) (*fileConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("--config %s: %v (known keys: strategy, overcommit, usage-interval)", path, err)
	}
	return &fc, nil
}

func parseServeFlags(args []string) (*serveConfig, error) {
	cfg := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Var(&cfg.listen, "listen", "address to serve the Docker API on: tcp://HOST:PORT or unix:///PATH (repeatable; default tcp://127.0.0.1:2375)")
	fs.StringVar(&cfg.engineTLS.CACert, "engine-tlscacert", "", "CA certificate of the --engine engines' TLS (engines started with --tlsverify)")
	fs.StringVar(&cfg.engineTLS.Cert, "engine-tlscert", "", "client certificate Clocker presents to the --engine engines")
	fs.StringVar(&cfg.engineTLS.Key, "engine-tlskey", "", "key of --engine-tlscert")
	fs.Var(&cfg.engines, "engine", "a Docker engine of the fleet: [NAME=]tcp://HOST:PORT or [NAME=]unix:///PATH (repeatable; kept across restarts)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "allow plain TCP on a non-loopback address (anyone reaching it is root on every host)")
	fs.StringVar(&cfg.dataDir, "data", defaultDataDir(), "directory of Clocker's state (bbolt)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Int64Var(&cfg.maxBody, "max-body", 10<<20, "largest JSON request body in bytes (streams such as archives are not limited)")
	fs.IntVar(&cfg.maxPerHost, "max-containers-per-host", 0, "most containers a host takes (0: no limit); the same limit as max-containers=N in --strategy: give one or the other")
	fs.StringVar(&cfg.strategy, "strategy", "spread", "placement strategy chain NAME[=OPTION][,NAME…], e.g. max-containers=12,breadth-first")
	fs.Float64Var(&cfg.overcommit, "overcommit", 1.0, "reservations (-m, --cpus) may reach this ratio of each host's memory and CPUs")
	fs.DurationVar(&cfg.rescheduleAfter, "reschedule-after", 30*time.Second, "how long a host stays unhealthy before its containers created with -e reschedule:on-node-failure are recreated on another host")
	fs.DurationVar(&cfg.usageInterval, "usage-interval", 5*time.Second, "how often host CPU and memory use is sampled, for the strategies that read it")
	cfg.ingress.register(fs)
	cfg.fleetnet.register(fs)
	cfg.provision.register(fs)
	cfg.front.register(fs)
	cfg.store.register(fs, "store", "store-")
	fs.StringVar(&cfg.advertise, "advertise", "", "the address this manager is reached at, as GET /v1/fleet/managers and docker info list it (default: the first --listen)")
	fs.StringVar(&cfg.configFile, "config", "", "a YAML or JSON file with strategy, overcommit and usage-interval (flags given win)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if cfg.configFile != "" {
		fc, err := loadConfigFile(cfg.configFile)
		if err != nil {
			return nil, err
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if fc.Strategy != "" && !set["strategy"] {
			cfg.strategy = fc.Strategy
		}
		if fc.Overcommit != nil && !set["overcommit"] {
			cfg.overcommit = *fc.Overcommit
		}
		if fc.UsageInterval != "" && !set["usage-interval"] {
			d, err := time.ParseDuration(fc.UsageInterval)
			if err != nil {
				return nil, fmt.Errorf("--config %s: usage-interval: %v", cfg.configFile, err)
			}
			cfg.usageInterval = d
		}
	}
	if cfg.rescheduleAfter <= 0 {
		return nil, fmt.Errorf("--reschedule-after %s: must be positive", cfg.rescheduleAfter)
	}
	if cfg.usageInterval < hosts.MinUsageInterval {
		return nil, fmt.Errorf("--usage-interval %s: at least %s", cfg.usageInterval, hosts.MinUsageInterval)
	}
	if !(cfg.overcommit > 0) || cfg.overcommit > 1000 {
		return nil, fmt.Errorf("--overcommit %v: want a ratio above 0 (1.0: reserve no more than a host has)", cfg.overcommit)
	}
	if cfg.maxPerHost < 0 {
		return nil, fmt.Errorf("--max-containers-per-host %d: want 0 (no limit) or more", cfg.maxPerHost)
	}
	if cfg.maxPerHost > 0 {
		for _, el := range strings.Split(cfg.strategy, ",") {
			if strings.HasPrefix(strings.TrimSpace(el), "max-containers") {
				return nil, fmt.Errorf("--max-containers-per-host %d and %q in --strategy: one limit, set it once", cfg.maxPerHost, el)
			}
		}
		cfg.strategy = fmt.Sprintf("max-containers=%d,%s", cfg.maxPerHost, cfg.strategy)
	}
	// An unknown strategy or a bad option stops the start, naming the
	// known ones.
	if _, err := newStrategy(cfg); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if len(cfg.listen) == 0 {
		cfg.listen = listFlag{defaultListen}
	}
	if cfg.maxBody <= 0 {
		return nil, errors.New("--max-body must be positive")
	}
	if err := cfg.store.check("store"); err != nil {
		return nil, err
	}
	if err := cfg.front.check(); err != nil {
		return nil, err
	}
	for _, l := range cfg.listen {
		if err := checkListen(l, cfg.insecure || cfg.front.tlsOn()); err != nil {
			return nil, err
		}
	}
	if err := cfg.ingress.check(cfg.listen[0]); err != nil {
		return nil, err
	}
	if _, err := cfg.fleetnet.config(); err != nil {
		return nil, err
	}
	if err := cfg.provision.check(cfg.maxPerHost); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newStrategy(cfg *serveConfig) (*scheduler.Strategy, error) {
	s, err := scheduler.New(cfg.strategy, scheduler.WithOvercommit(cfg.overcommit))
	if err != nil {
		return nil, fmt.Errorf("--strategy %q: %w", cfg.strategy, err)
	}
	return s, nil
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/clocker"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "clocker")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "clocker")
}

// checkListen refuses addresses Clocker cannot or should not serve on;
// exposed is --insecure or TLS.
func checkListen(raw string, exposed bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", raw, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("--listen %q: want unix:///PATH", raw)
		}
		return nil
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || port == "" {
			return fmt.Errorf("--listen %q: want tcp://HOST:PORT", raw)
		}
		if !exposed && !isLoopback(host) {
			return fmt.Errorf("--listen %q is not a loopback address: serving the Docker API there without TLS would expose root on every host of the fleet to anyone who can reach it; serve TLS (--tlsverify) or pass --insecure to do it anyway", raw)
		}
		return nil
	default:
		return fmt.Errorf("--listen %q: scheme must be tcp:// or unix://", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseEngineFlag splits [NAME=]URL.
func parseEngineFlag(v string) hosts.Record {
	if name, u, ok := strings.Cut(v, "="); ok && !strings.Contains(name, "://") {
		return hosts.Record{Name: name, URL: u}
	}
	return hosts.Record{URL: v}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func serve(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntil(ctx, args)
}

// serveUntil builds the manager from the flags, starts its loops once
// everything is wired, and serves until ctx ends.
func serveUntil(ctx context.Context, args []string) error {
	cfg, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	rawStore, etcdStore, err := cfg.store.open(cfg.dataDir)
	if err != nil {
		return err
	}
	defer rawStore.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st := store.Instrumented(rawStore, reg)
	log.Info("state store", "store", rawStore.String())
	managers := cfg.store.group(etcdStore, cfg.advertise, cfg.listen[0], reg, log)
	fleet := hosts.NewFleet(st, log, hosts.NewMetrics(reg))
	defer fleet.Close()
	if etcdStore != nil {
		// Names are claimed in etcd too: unique across the managers.
		fleet.ShareNames(etcdStore, managers.Self().ID, nameClaimTTL)
	}

	if err := joinHosts(ctx, fleet, cfg.engines, cfg.engineTLS, &cfg.provision, log); err != nil {
		return err
	}
	if etcdStore != nil {
		// Hosts another manager adds or removes through the fleet API are
		// followed here too.
		go etcdStore.Watch(ctx, store.BucketHosts, func() {
			if err := fleet.SyncStored(ctx); err != nil {
				log.Warn("hosts: re-reading the store", "err", err)
			}
		})
	}
	machines, err := cfg.provision.machines(ctx, fleet, st, cfg.dataDir, reg, log)
	if err != nil {
		return err
	}

	strategy, err := newStrategy(cfg)
	if err != nil {
		return err
	}
	if strategy.NeedsUsage() {
		fleet.SampleUsage(ctx, cfg.usageInterval)
	}
	log.Info("placement", "strategy", strategy.Name, "overcommit", strategy.Overcommit)
	front, err := cfg.front.build(ctx, cfg.maxBody, log)
	if err != nil {
		return err
	}
	defer front.Close()
	srv := proxy.NewServer(fleet, strategy, log, cfg.maxBody, reg)
	srv.Machines = machines
	srv.Managers = managers
	if srv.Nets, err = cfg.fleetnet.controller(ctx, st, etcdStore, fleet, log, reg); err != nil {
		return err
	}

	var listeners []net.Listener
	closeListeners := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	for _, l := range cfg.listen {
		ln, err := listen(l, front.tls)
		if err != nil {
			closeListeners()
			return err
		}
		listeners = append(listeners, ln)
	}
	// Give the caches a moment to fill so the first `docker ps` is whole
	// and the ingress finds the ports the containers hold.
	syncCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := fleet.WaitSynced(syncCtx); err != nil {
		log.Warn("not every host answered at start; serving anyway", "err", err)
	}
	cancel()
	srv.WarmPlacement()

	// Build everything the server holds before its handler...
	if srv.Ingress, err = cfg.ingress.table(fleet, reg, log); err != nil {
		closeListeners()
		return err
	}
	if etcdStore != nil && srv.Ingress != nil {
		// Published ports are claimed in etcd too: one container per
		// port across the managers.
		srv.Ingress.Share(etcdStore, managers.Self().ID, nameClaimTTL)
	}
	inproc, err := proxy.NewInProcess()
	if err != nil {
		srv.Ingress.Close()
		closeListeners()
		return err
	}
	defer inproc.Close()
	// Blueprints: Brooklyn's API, a client of the front door.
	apps := mountBlueprints(srv, inproc, st, log)
	if managers.Replicated() {
		apps.SetActing(false) // until this manager leads (leaderLoops)
	}
	defer apps.Close()
	// The web console at /ui/, a reader of the same.
	mountConsole(ctx, srv, inproc.Client(), reg, cfg.maxPerHost, log)
	// One handler serves every listener: TCP and unix behind the front
	// door's chain (identities, limits, authorization), and the in-memory
	// one through which Clocker's own callers (rescheduling, blueprints)
	// use the API behind the built-in rules only. A manager fenced from
	// etcd refuses changes on both. A replica sends the clients of the
	// application layer and the console to the leader.
	handler := fenceChanges(managers, srv.Handler())
	httpSrv := front.cfg.HTTPServer(front.cfg.Wrap(fenceChanges(managers, toLeader(managers, srv.Handler()))))
	inprocSrv := &http.Server{Handler: front.cfg.WrapInProcess(handler), ReadHeaderTimeout: 30 * time.Second}
	rescheduler, err := reschedule.New(fleet, inproc.Client(), st, cfg.rescheduleAfter, log)
	if err != nil {
		srv.Ingress.Close()
		closeListeners()
		return err
	}
	if etcdStore != nil {
		// The leader's moves hide their stale copies at every manager.
		go etcdStore.Watch(ctx, store.BucketReschedules, func() {
			if err := rescheduler.HideStored(); err != nil {
				log.Warn("rescheduling: reading stored moves", "err", err)
			}
		})
	}
	autoscaler, err := cfg.provision.autoscaler(machines, cfg.maxPerHost, log)
	if err != nil {
		srv.Ingress.Close()
		closeListeners()
		return err
	}
	// ...then start the loops: the ingress first (every manager's own,
	// at its own address), so that a reschedule at start-up publishes
	// through it; the fleet's control loops run on the leader only.
	if srv.Ingress != nil {
		go srv.Ingress.Run(ctx)
	}
	leading := &leaderLoops{
		rescheduler: rescheduler, autoscaler: autoscaler, nets: srv.Nets, apps: apps,
		heal: func(ctx context.Context) { cfg.provision.heal(ctx, machines) }, log: log,
	}
	// The only manager (bbolt) leads from the start: as before there were
	// several, the agents are in place before the front door answers and
	// the stored applications are back as it starts to (a restarted serve
	// answers for them at once).
	if !managers.Replicated() {
		leading.deployAgents(ctx)
	}

	errs := make(chan error, len(listeners)+1)
	for i, ln := range listeners {
		log.Info("serving the Docker API", "listen", cfg.listen[i], "hosts", len(fleet.Hosts()))
		go func() { errs <- httpSrv.Serve(ln) }()
	}
	go func() { errs <- inprocSrv.Serve(inproc.Listener()) }()
	// SIGHUP re-reads certificates and users; connections stay.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				front.reload(log)
			}
		}
	}()
	// With the front door served, the control loops start when this
	// manager leads (at once with bbolt): the stored applications carry on.
	go managers.Run(ctx, leading.run)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		srv.Ingress.Wait(5 * time.Second) // kernel forwards are rules that would outlive the process
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
		_ = inprocSrv.Shutdown(sctx)
		return nil
	case err := <-errs:
		return err
	}
}

// joinHosts brings back the stored hosts, adds those given with --engine,
// and when the fleet would be empty and no local hosts are asked for,
// falls back to the local engine, else (as root, with none) to a local host.
func joinHosts(ctx context.Context, fleet *hosts.Fleet, engines []string, tlsFiles hosts.EngineTLS, prov *provisionFlags, log *slog.Logger) error {
	stored, err := fleet.StoredRecords()
	if err != nil {
		return fmt.Errorf("reading stored hosts: %w", err)
	}
	for _, rec := range stored {
		if _, err := fleet.Add(ctx, rec, false); err != nil {
			return fmt.Errorf("stored host %s: %w", rec.Name, err)
		}
	}
	for _, e := range engines {
		rec := parseEngineFlag(e)
		rec.TLS = tlsFiles
		ep, err := hosts.ParseEndpoint(rec.URL)
		if err != nil {
			return fmt.Errorf("--engine: %w", err)
		}
		if known := storedByURL(stored, ep.URL); known != nil && (rec.Name == "" || rec.Name == known.Name) {
			continue // given again: already back from the store
		}
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		h, err := fleet.Add(actx, rec, true)
		cancel()
		if err != nil {
			return fmt.Errorf("--engine %s: %w", e, err)
		}
		log.Info("host joined", "host", h.Name, "url", h.URL)
	}
	if len(fleet.Hosts()) == 0 && !prov.wantsLocal() {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		h, err := fleet.Add(actx, hosts.Record{URL: defaultEngine, Provisioner: "default"}, false)
		cancel()
		if err == nil {
			log.Info("no hosts configured: serving the local engine", "host", h.Name)
			return nil
		}
		if os.Geteuid() != 0 {
			return fmt.Errorf("no --engine given and the local engine (%s) does not answer: %w", defaultEngine, err)
		}
		log.Info("no hosts configured and no local engine: starting a local host", "engine_err", err)
		prov.localHosts = max(prov.localHosts, 1)
	}
	return nil
}

func storedByURL(stored []hosts.Record, u string) *hosts.Record {
	for i := range stored {
		if stored[i].URL == u {
			return &stored[i]
		}
	}
	return nil
}

// listen opens a --listen address: TCP behind TLS when tlsSrv is set (as
// dockerd, a unix socket stays plain: its file mode guards it).
func listen(raw string, tlsSrv *tlsconf.Server) (net.Listener, error) {
	u, _ := url.Parse(raw)
	if u.Scheme == "unix" {
		if err := os.Remove(u.Path); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("--listen %s: %w", raw, err)
		}
		ln, err := net.Listen("unix", u.Path)
		if err != nil {
			return nil, fmt.Errorf("--listen %s: %w", raw, err)
		}
		_ = os.Chmod(u.Path, 0o660)
		// As dockerd: the docker group may use the socket, where it exists.
		if g, err := user.LookupGroup("docker"); err == nil {
			if gid, err := strconv.Atoi(g.Gid); err == nil {
				_ = os.Chown(u.Path, -1, gid)
			}
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", raw, err)
	}
	if tlsSrv != nil {
		ln = tls.NewListener(ln, tlsSrv.Config())
	}
	return ln, nil
}
