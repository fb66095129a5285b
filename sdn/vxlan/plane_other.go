//go:build !linux

package vxlan

import (
	"errors"
	"net/netip"
)

// errUnsupported: VXLAN devices are a Linux facility.
var errUnsupported = errors.New("vxlan: only supported on Linux")

// Plane changes VXLAN devices; on this system every method fails.
type Plane struct{}

// Open fails: VXLAN devices are a Linux facility.
func Open(nsPath string) (*Plane, error) { return nil, errUnsupported }

// Close does nothing.
func (p *Plane) Close() error { return nil }

// Ensure fails.
func (p *Plane) Ensure(d Device) (Change, error) { return Unchanged, errUnsupported }

// Delete fails.
func (p *Plane) Delete(name string) error { return errUnsupported }

// Peers fails.
func (p *Plane) Peers(name string) ([]netip.Addr, error) { return nil, errUnsupported }

// SetPeers fails.
func (p *Plane) SetPeers(name string, peers []netip.Addr) (added, removed []netip.Addr, err error) {
	return nil, nil, errUnsupported
}

// List fails.
func (p *Plane) List() ([]State, error) { return nil, errUnsupported }
