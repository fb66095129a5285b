// Package vxlan is the host data plane of Clocker's built-in SDN provider:
// VXLAN devices enslaved to a bridge, and the forwarding (FDB) entries that
// send the bridge's unknown and broadcast traffic to every peer host.
//
// On a host, for one network:
//
//	containers ── bridge (Docker's, e.g. ckb-0123456789a)
//	                 │ master
//	              VXLAN device ckv-0123456789a: id VNI, dstport 4789,
//	              local <host addr>, dev <underlay>, nolearning, MTU 1450
//	                 │ FDB (NTF_SELF, AF_BRIDGE)
//	                 ├ 00:00:00:00:00:00 dst <peer 1>
//	                 └ 00:00:00:00:00:00 dst <peer 2>
//
// Every operation reads the kernel's state first and changes only what
// differs, so a restarted agent re-learns what it made and never duplicates
// it. The package knows nothing of fleet networks (package sdn adapts).
package vxlan

import (
	"errors"
	"fmt"
	"net/netip"
)

// Defaults of a Device.
const (
	DefaultPort = 4789
	DefaultMTU  = 1450
)

// ErrNoBridge is returned by Ensure when the device's bridge does not exist
// (the engine creates it with the network).
var ErrNoBridge = errors.New("bridge not found")

// Device describes a VXLAN device as it must be.
type Device struct {
	// Name of the link (at most 15 bytes).
	Name string
	// VNI is the VXLAN segment ID (1 … 2^24-1).
	VNI uint32
	// Local is the source address of the tunnel: this host's address on
	// the underlay.
	Local netip.Addr
	// Underlay names the interface the tunnel runs over. Empty means the
	// interface that holds Local.
	Underlay string
	// Port is the UDP destination port. Zero means DefaultPort.
	Port int
	// MTU of the device. Zero means DefaultMTU.
	MTU int
	// Bridge is the bridge the device is enslaved to; it must exist.
	Bridge string
	// Alias is stored in the link's ifalias so that an owner can find its
	// devices again (List reports it).
	Alias string
}

func (d Device) withDefaults() Device {
	if d.Port == 0 {
		d.Port = DefaultPort
	}
	if d.MTU == 0 {
		d.MTU = DefaultMTU
	}
	return d
}

func (d Device) validate() error {
	switch {
	case d.Name == "" || len(d.Name) > 15:
		return fmt.Errorf("vxlan device name %q: want 1 to 15 bytes", d.Name)
	case d.VNI == 0 || d.VNI >= 1<<24:
		return fmt.Errorf("vxlan %s: VNI %d out of range 1…16777215", d.Name, d.VNI)
	case !d.Local.Is4():
		return fmt.Errorf("vxlan %s: local address %v is not IPv4", d.Name, d.Local)
	case d.Bridge == "":
		return fmt.Errorf("vxlan %s: no bridge", d.Name)
	case d.Port <= 0 || d.Port > 65535:
		return fmt.Errorf("vxlan %s: port %d", d.Name, d.Port)
	case d.MTU < 68:
		return fmt.Errorf("vxlan %s: MTU %d", d.Name, d.MTU)
	}
	return nil
}

// Change says what Ensure did.
type Change string

// What Ensure can do.
const (
	// Unchanged: the device was already as described.
	Unchanged Change = "unchanged"
	// Created: there was no device of that name.
	Created Change = "created"
	// Recreated: a device of that name had other fixed attributes (VNI,
	// port, local address, underlay, learning, or was no VXLAN device) and
	// was replaced; its FDB entries went with it.
	Recreated Change = "recreated"
	// Updated: MTU, bridge, alias or state were set on the existing device.
	Updated Change = "updated"
)

// State is a VXLAN device as read back from the kernel.
type State struct {
	Device
	// Index is the link's index.
	Index int
	// Learning is true when the device learns remote addresses (Clocker's
	// devices never do).
	Learning bool
	// Up is true when the link is administratively up.
	Up bool
	// Peers are the destinations of the all-zeros FDB entries, in order.
	Peers []netip.Addr
}
