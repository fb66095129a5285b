package ingress

import (
	"fmt"
	"log/slog"
	"net"
)

// Forwards is what the manager drives, by Key: the userland Forwarder, or
// a Kernel (iptables DNAT) that may hand single forwards to one.
type Forwards interface {
	// Open holds the port (a bound socket) without forwarding it; the
	// error is the kernel's (address in use, permission denied).
	Open(Key) error
	// SetTarget forwards an open port to target (IP:port); "" stops
	// forwarding. It reports whether the port is open.
	SetTarget(k Key, target string) bool
	// Close stops forwarding and frees the port.
	Close(Key)
	// CloseAll closes every port.
	CloseAll()
	// Keys lists the open ports, ordered by protocol and port.
	Keys() []Key
	// AllStats returns the counters of every open port, read once.
	AllStats() map[Key]Stats
	// Mode is "kernel" or "userland".
	Mode() string
}

// Modes of Start.
const (
	ModeAuto     = "auto"     // the kernel when it can, else userland
	ModeKernel   = "kernel"   // the kernel or nothing
	ModeUserland = "userland" // the userland Forwarder
)

// ForwardsConfig configures Start.
type ForwardsConfig struct {
	// Mode is ModeAuto (default), ModeKernel or ModeUserland.
	Mode string
	// Instance names this manager's iptables chains; the same across its
	// restarts (so a restart rebuilds its own rules), different for two
	// managers on one machine.
	Instance string
	// Options tune the userland Forwarder.
	Options Options
}

// Start returns the forwards of ip in the mode asked for. With ModeAuto, a
// kernel that cannot be set up (no iptables, no rights, IPv6) gives the
// userland Forwarder, and why is logged.
func Start(ip net.IP, cfg ForwardsConfig) (Forwards, error) {
	log := cfg.Options.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Mode {
	case ModeUserland:
		return New(ip, cfg.Options), nil
	case ModeKernel:
		k, err := NewKernel(ip, KernelOptions{Instance: cfg.Instance, Log: log})
		if err != nil {
			return nil, err
		}
		return k, nil
	case "", ModeAuto:
		fb := New(ip, cfg.Options)
		k, err := NewKernel(ip, KernelOptions{Instance: cfg.Instance, Log: log, Fallback: fb})
		if err != nil {
			log.Warn("ingress: forwarding in userland (the kernel cannot: "+err.Error()+")", "mode", ModeUserland)
			return fb, nil
		}
		return k, nil
	default:
		return nil, fmt.Errorf("ingress mode %q: want auto, kernel or userland", cfg.Mode)
	}
}

// Mode implements Forwards.
func (f *Forwarder) Mode() string { return ModeUserland }

// AllStats implements Forwards.
func (f *Forwarder) AllStats() map[Key]Stats {
	out := map[Key]Stats{}
	for _, k := range f.Keys() {
		if st, ok := f.Stats(k); ok {
			out[k] = st
		}
	}
	return out
}

var _ Forwards = (*Forwarder)(nil)
