// Package provision makes and unmakes Docker hosts for the fleet.
//
// A Provisioner is a driver registered by name (as containerd and Caddy
// register plugins): `static` for engines given by address, `local` for
// engines in network namespaces of this machine, `ssh` for Linux machines
// reached over SSH and turned into TLS-protected Docker hosts. The Manager
// drives them: it records every machine in bbolt before and after it is
// made (so a crash half-way leaves a record to re-adopt or clean), joins the
// machine's engine to the fleet, seeds it with the fleet's images, and on a
// restart re-adopts what it made instead of making it again.
//
//	Manager.Provision ─► store {pending} ─► driver.Create ─► engine answers
//	  ─► images copied from the fleet ─► store {ready} ─► fleet.Add
//	Manager.Restore (at start) ─► driver.Adopt for each stored machine
//	Manager.Destroy ─► fleet.Remove ─► driver.Destroy ─► store delete
//
// # A cloud driver, on paper
//
// An AWS or GCP driver fits the same interface; what it would need:
//   - Create: the instance type, image (an AMI / image family with Docker
//     preinstalled, or a plain Linux image plus the ssh driver's install
//     step run through cloud-init user data), region and zone (which become
//     the host's `region`/`zone` labels for geographic placement), subnet
//     and security group allowing the manager to reach TCP 2376 and the
//     hosts to reach each other on UDP 4789 (VXLAN). It would generate the
//     engine's TLS certificates from the fleet CA (as the ssh driver does)
//     and pass them in user data, tag the instance with the fleet ID and
//     host name, wait until the instance runs and the engine answers over
//     TLS, and return the instance ID, private address and zone as its
//     Machine.State.
//   - Adopt: describe the instance by ID (or by the fleet tag when the ID
//     was not recorded before a crash): running → reuse; stopped → start;
//     gone → report it so the manager forgets the host.
//   - Destroy: terminate by ID; idempotent when already gone.
//   - Credentials come from the SDK's default chain (environment, instance
//     role), never from Clocker's store. Quotas and API errors surface as
//     the Manager's provisioning errors and a metric; the autoscaler backs
//     off rather than retrying in a loop.
//
// Nothing in the interface is specific to one machine: Create may take
// minutes, so the Manager never holds a lock across it.
package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/registry"
)

// Provisioner makes Docker hosts of one kind.
type Provisioner interface {
	// Name is the registered name, recorded with every machine it makes.
	Name() string
	// Create makes a new host named req.Name and returns how to reach its
	// engine (Record: URL, TLS files, labels) and the driver's own state.
	// The engine need not answer yet: the Manager waits for it.
	Create(ctx context.Context, req Request) (Machine, error)
	// Adopt takes back a machine made before a restart of the manager:
	// the engine is started again if it is not running. It must not make
	// a second machine.
	Adopt(ctx context.Context, m Machine) (Machine, error)
	// Destroy undoes Create. It is idempotent: a machine already gone is
	// not an error.
	Destroy(ctx context.Context, m Machine) error
}

// Request asks a provisioner for a host.
type Request struct {
	// Name is the host's name in the fleet, chosen by the Manager.
	Name string
	// Target is driver-specific: for ssh, the machine to turn into a host
	// (user@address[:port]); empty for drivers that make machines.
	Target string
	// Labels become the host's labels in the fleet.
	Labels map[string]string
}

// Machine is a host a provisioner made, as stored in bbolt.
type Machine struct {
	Name        string
	Provisioner string
	// Record is how the fleet reaches the engine.
	Record hosts.Record
	// State is the driver's own record (namespace, address, pid file,
	// SSH target, certificate paths...).
	State json.RawMessage `json:",omitempty"`
	// Ready is false while the machine is being made: a restart then
	// finishes or undoes it.
	Ready bool
}

// Config is what every driver is built with.
type Config struct {
	// DataDir is where the driver may keep files (certificates, engine
	// data roots); it is under the manager's --data.
	DataDir string
	// Options are the driver's settings (e.g. subnet=10.213.0.0/24); each
	// driver rejects the keys it does not know.
	Options map[string]string
	Log     *slog.Logger
}

// Factory builds a driver from its configuration.
type Factory func(Config) (Provisioner, error)

// drivers are the registered provisioners.
var drivers = registry.New[Factory]("provisioner")

// Register adds a driver; a name can be registered once.
func Register(name string, f Factory) error { return drivers.Register(name, f) }

// mustRegister is for the built-in drivers.
func mustRegister(name string, f Factory) {
	if err := Register(name, f); err != nil {
		panic(err)
	}
}

// Names lists the registered drivers in order.
func Names() []string { return drivers.Names() }

// New builds the driver registered under name.
func New(name string, cfg Config) (Provisioner, error) {
	f, err := drivers.Get(name)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return f(cfg)
}

// checkOptions rejects option keys a driver does not know.
func checkOptions(driver string, opts map[string]string, known ...string) error {
	for k := range opts {
		if !slices.Contains(known, k) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner %s: unknown option %q (known: %s)", driver, k, strings.Join(known, ", ")))
		}
	}
	return nil
}
