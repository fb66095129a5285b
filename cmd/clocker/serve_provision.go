package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/store"
)

// provisionFlags are serve's flags for provisioned hosts and headroom.
type provisionFlags struct {
	provisioner     string
	options         listFlag // DRIVER.KEY=VALUE
	localHosts      int
	localSubnet     string
	localBridge     string
	headroom        int
	headroomPercent float64
	maxHosts        int
	scaleIn         bool
	scaleInAfter    time.Duration
	healAfter       time.Duration

	// Parsed by check.
	opts map[string]map[string]string
}

func (f *provisionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.provisioner, "provisioner", "local", "provisioner the headroom policy makes hosts with: "+strings.Join(provision.Names(), ", "))
	fs.Var(&f.options, "provisioner-opt", "a provisioner's option DRIVER.KEY=VALUE, e.g. ssh.user=admin (repeatable)")
	fs.IntVar(&f.localHosts, "local-hosts", 0, "start with at least N local hosts: Docker engines in network namespaces of this machine (root)")
	fs.StringVar(&f.localSubnet, "local-subnet", provision.DefaultLocalSubnet, "subnet of the local hosts' bridge")
	fs.StringVar(&f.localBridge, "local-bridge", provision.DefaultLocalBridge, "bridge of the local hosts (at most 11 characters)")
	fs.IntVar(&f.headroom, "headroom", 0, "keep at least this many container slots free (needs --max-containers-per-host); provision a host when fewer are")
	fs.Float64Var(&f.headroomPercent, "headroom-percent", 0, "keep this percentage of all container slots free, instead of --headroom")
	fs.IntVar(&f.maxHosts, "max-hosts", 0, "most hosts the headroom policy grows the fleet to (0: no limit)")
	fs.BoolVar(&f.scaleIn, "scale-in", false, "drain and remove an empty provisioned host when the free slots exceed the headroom by a host's worth")
	fs.DurationVar(&f.scaleInAfter, "scale-in-after", 2*time.Minute, "how long the fleet must have a host's worth of slots too many before one is removed")
	fs.DurationVar(&f.healAfter, "heal-after", 10*time.Second, "how long a provisioned host may be down before its engine is started again by its provisioner (0: never)")
}

// check parses the options; perHost is --max-containers-per-host.
func (f *provisionFlags) check(perHost int) error {
	f.opts = map[string]map[string]string{}
	for _, o := range f.options {
		driver, kv, ok1 := strings.Cut(o, ".")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok1 || !ok2 || k == "" {
			return fmt.Errorf("--provisioner-opt %q: want DRIVER.KEY=VALUE, e.g. ssh.user=admin", o)
		}
		if !slices.Contains(provision.Names(), driver) {
			return fmt.Errorf("--provisioner-opt %q: unknown provisioner %q (known: %s)", o, driver, strings.Join(provision.Names(), ", "))
		}
		if f.opts[driver] == nil {
			f.opts[driver] = map[string]string{}
		}
		f.opts[driver][k] = v
	}
	if f.localSubnet != provision.DefaultLocalSubnet {
		f.setOpt("local", "subnet", f.localSubnet)
	}
	if f.localBridge != provision.DefaultLocalBridge {
		f.setOpt("local", "bridge", f.localBridge)
	}
	if f.localHosts < 0 {
		return fmt.Errorf("--local-hosts %d: want 0 or more", f.localHosts)
	}
	if !slices.Contains(provision.Names(), f.provisioner) {
		return fmt.Errorf("--provisioner %q: unknown (known: %s)", f.provisioner, strings.Join(provision.Names(), ", "))
	}
	if f.headroom != 0 || f.headroomPercent != 0 { // a negative one is refused, not ignored
		if err := f.policy(perHost).Validate(); err != nil {
			return err
		}
	} else if f.maxHosts != 0 || f.scaleIn {
		return fmt.Errorf("--max-hosts and --scale-in act with --headroom or --headroom-percent")
	}
	if f.scaleInAfter <= 0 {
		return fmt.Errorf("--scale-in-after %s: must be positive", f.scaleInAfter)
	}
	if f.healAfter < 0 {
		return fmt.Errorf("--heal-after %s: want 0 (never) or more", f.healAfter)
	}
	return nil
}

func (f *provisionFlags) setOpt(driver, k, v string) {
	if f.opts[driver] == nil {
		f.opts[driver] = map[string]string{}
	}
	f.opts[driver][k] = v
}

func (f *provisionFlags) autoscale() bool { return f.headroom > 0 || f.headroomPercent > 0 }

func (f *provisionFlags) policy(perHost int) provision.HeadroomPolicy {
	return provision.HeadroomPolicy{Provisioner: f.provisioner, PerHost: perHost, Headroom: f.headroom,
		HeadroomPercent: f.headroomPercent, MaxHosts: f.maxHosts, ScaleIn: f.scaleIn, ScaleInAfter: f.scaleInAfter}
}

// wantsLocal: local hosts are asked for, so the local engine is no fallback.
func (f *provisionFlags) wantsLocal() bool {
	return f.localHosts > 0 || (f.autoscale() && f.provisioner == "local")
}

// machines builds the provisioning manager with every driver that can run
// here, re-adopts the machines made before, and makes the local hosts
// asked for. A driver that cannot run (local without root) is left out
// unless it is asked for.
func (f *provisionFlags) machines(ctx context.Context, fleet *hosts.Fleet, st store.Store, dataDir string, reg prometheus.Registerer, log *slog.Logger) (*provision.Manager, error) {
	m := provision.NewManager(fleet, st, log, provision.NewMetrics(reg))
	m.IsAgent = hosts.IsAgent
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		m.ImageSource = defaultEngine
	}
	needed := map[string]bool{}
	if f.wantsLocal() {
		needed["local"] = true
	}
	if f.autoscale() {
		needed[f.provisioner] = true
	}
	for _, name := range provision.Names() {
		p, err := provision.New(name, provision.Config{DataDir: filepath.Join(dataDir, "provision"), Options: f.opts[name], Log: log.With("provisioner", name)})
		if err != nil {
			if needed[name] || f.opts[name] != nil {
				return nil, fmt.Errorf("provisioner %s: %w", name, err)
			}
			log.Debug("provisioner not available", "provisioner", name, "err", err)
			continue
		}
		m.Use(p)
	}
	if err := m.Restore(ctx); err != nil {
		return nil, err
	}
	if missing := f.localHosts - len(m.Machines("local")); missing > 0 {
		log.Info("making local hosts", "count", missing)
		made := fanout.Each(make([]struct{}, missing), func(struct{}) (*hosts.Host, error) {
			return m.Provision(ctx, "local", provision.Request{})
		})
		if err := fanout.FirstError(made); err != nil {
			return nil, fmt.Errorf("--local-hosts: %w", err)
		}
	}
	return m, nil
}

// heal runs the healing of provisioned hosts (when asked for) until ctx
// ends: one of the leader's loops.
func (f *provisionFlags) heal(ctx context.Context, m *provision.Manager) {
	if f.healAfter > 0 && m != nil {
		m.Heal(ctx, f.healAfter)
	}
}

// autoscaler builds the headroom policy when one is asked for (else nil);
// serve starts its loop once everything is wired.
func (f *provisionFlags) autoscaler(m *provision.Manager, perHost int, log *slog.Logger) (*provision.Autoscaler, error) {
	if !f.autoscale() {
		return nil, nil
	}
	a, err := m.NewAutoscaler(f.policy(perHost))
	if err != nil {
		return nil, err
	}
	log.Info("headroom policy", "provisioner", f.provisioner, "per_host", perHost, "headroom", f.headroom,
		"headroom_percent", f.headroomPercent, "max_hosts", f.maxHosts, "scale_in", f.scaleIn)
	return a, nil
}
