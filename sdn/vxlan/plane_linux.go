//go:build linux

package vxlan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// zeroMAC is the FDB address that matches unknown unicast, broadcast and
// multicast: every such frame goes to each destination listed for it.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// Plane changes VXLAN devices and their forwarding entries in one network
// namespace. It is safe for use by one goroutine at a time.
type Plane struct {
	h *netlink.Handle
}

// Open returns a Plane acting in the network namespace at nsPath (e.g.
// /var/run/netns/h1), or in the process's own namespace when nsPath is
// empty. Close it when done.
func Open(nsPath string) (*Plane, error) {
	if nsPath == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return &Plane{h: h}, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	return &Plane{h: h}, nil
}

// Close releases the netlink socket.
func (p *Plane) Close() error {
	p.h.Close()
	return nil
}

// Ensure makes the device exist as d describes, enslaved to d.Bridge and
// up. Attributes the kernel cannot change on a live device (VNI, port,
// local address, underlay, learning) are fixed by replacing the device;
// MTU, bridge, alias and state are set in place. FDB entries are not
// touched (see SetPeers), except that a replaced device loses them.
func (p *Plane) Ensure(d Device) (Change, error) {
	d = d.withDefaults()
	if err := d.validate(); err != nil {
		return Unchanged, err
	}
	br, err := p.h.LinkByName(d.Bridge)
	if err != nil {
		if isNotFound(err) {
			return Unchanged, fmt.Errorf("vxlan %s: %q: %w", d.Name, d.Bridge, ErrNoBridge)
		}
		return Unchanged, fmt.Errorf("vxlan %s: bridge %q: %w", d.Name, d.Bridge, err)
	}
	if br.Type() != "bridge" {
		return Unchanged, fmt.Errorf("vxlan %s: %q is a %s, not a bridge: %w", d.Name, d.Bridge, br.Type(), ErrNoBridge)
	}
	under, err := p.underlay(d)
	if err != nil {
		return Unchanged, err
	}

	change := Unchanged
	link, err := p.h.LinkByName(d.Name)
	switch {
	case err != nil && !isNotFound(err):
		return Unchanged, fmt.Errorf("vxlan %s: %w", d.Name, err)
	case err == nil && !sameFixed(link, d, under.Attrs().Index):
		if err := p.h.LinkDel(link); err != nil {
			return Unchanged, fmt.Errorf("vxlan %s: replace: %w", d.Name, err)
		}
		change = Recreated
		link = nil
	case err != nil:
		change = Created
		link = nil
	}
	if link == nil {
		la := netlink.NewLinkAttrs()
		la.Name = d.Name
		la.MTU = d.MTU
		nl := &netlink.Vxlan{
			LinkAttrs:    la,
			VxlanId:      int(d.VNI),
			VtepDevIndex: under.Attrs().Index,
			SrcAddr:      net.IP(d.Local.AsSlice()),
			Port:         d.Port,
			Learning:     false,
		}
		if err := p.h.LinkAdd(nl); err != nil {
			return Unchanged, fmt.Errorf("vxlan %s: create: %w", d.Name, err)
		}
		if link, err = p.h.LinkByName(d.Name); err != nil {
			return Unchanged, fmt.Errorf("vxlan %s: read back: %w", d.Name, err)
		}
	}

	set := func(what string, fn func() error) error {
		if err := fn(); err != nil {
			return fmt.Errorf("vxlan %s: set %s: %w", d.Name, what, err)
		}
		if change == Unchanged {
			change = Updated
		}
		return nil
	}
	a := link.Attrs()
	if a.MTU != d.MTU {
		if err := set("mtu", func() error { return p.h.LinkSetMTU(link, d.MTU) }); err != nil {
			return change, err
		}
	}
	if a.MasterIndex != br.Attrs().Index {
		if err := set("master", func() error { return p.h.LinkSetMasterByIndex(link, br.Attrs().Index) }); err != nil {
			return change, err
		}
	}
	if a.Alias != d.Alias {
		if err := set("alias", func() error { return p.h.LinkSetAlias(link, d.Alias) }); err != nil {
			return change, err
		}
	}
	if a.Flags&net.FlagUp == 0 {
		if err := set("up", func() error { return p.h.LinkSetUp(link) }); err != nil {
			return change, err
		}
	}
	return change, nil
}

// underlay finds the interface the tunnel runs over.
func (p *Plane) underlay(d Device) (netlink.Link, error) {
	if d.Underlay != "" {
		l, err := p.h.LinkByName(d.Underlay)
		if err != nil {
			return nil, fmt.Errorf("vxlan %s: underlay %q: %w", d.Name, d.Underlay, err)
		}
		return l, nil
	}
	addrs, err := p.h.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("vxlan %s: list addresses: %w", d.Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == d.Local {
			l, err := p.h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("vxlan %s: underlay of %v: %w", d.Name, d.Local, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("vxlan %s: no interface holds the local address %v", d.Name, d.Local)
}

// sameFixed reports whether link is a VXLAN device whose fixed attributes
// are those of d.
func sameFixed(link netlink.Link, d Device, underIndex int) bool {
	v, ok := link.(*netlink.Vxlan)
	if !ok {
		return false
	}
	src, _ := netip.AddrFromSlice(v.SrcAddr)
	return uint32(v.VxlanId) == d.VNI && v.Port == d.Port && src.Unmap() == d.Local &&
		v.VtepDevIndex == underIndex && !v.Learning && !v.FlowBased
}

// Delete removes the device (and with it its FDB entries); deleting a
// device that does not exist is not an error.
func (p *Plane) Delete(name string) error {
	link, err := p.h.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("vxlan %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Vxlan); !ok {
		return fmt.Errorf("vxlan %s: is a %s, not a vxlan device; left alone", name, link.Type())
	}
	if err := p.h.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("vxlan %s: delete: %w", name, err)
	}
	return nil
}

// Peers reads the destinations of the device's all-zeros FDB entries from
// the kernel, in order.
func (p *Plane) Peers(name string) ([]netip.Addr, error) {
	link, err := p.vxlan(name)
	if err != nil {
		return nil, err
	}
	return p.peers(link.Attrs().Index)
}

func (p *Plane) peers(index int) ([]netip.Addr, error) {
	ns, err := p.h.NeighList(index, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("fdb of link %d: %w", index, err)
	}
	var out []netip.Addr
	for _, n := range ns {
		if n.Flags&netlink.NTF_SELF == 0 || !isZeroMAC(n.HardwareAddr) {
			continue
		}
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// SetPeers makes the device's all-zeros FDB entries point at exactly
// peers: it appends the missing ones and deletes the stale ones, and
// reports both. Entries already right are left in place, so traffic to
// them never stops.
func (p *Plane) SetPeers(name string, peers []netip.Addr) (added, removed []netip.Addr, err error) {
	link, err := p.vxlan(name)
	if err != nil {
		return nil, nil, err
	}
	idx := link.Attrs().Index
	have, err := p.peers(idx)
	if err != nil {
		return nil, nil, err
	}
	want := make(map[netip.Addr]bool, len(peers))
	for _, a := range peers {
		a = a.Unmap()
		if !a.Is4() {
			return nil, nil, fmt.Errorf("vxlan %s: peer %v is not IPv4", name, a)
		}
		want[a] = true
	}
	for _, a := range have {
		if want[a] {
			delete(want, a)
			continue
		}
		if err := p.h.NeighDel(fdbEntry(idx, a)); err != nil && !isNotFound(err) {
			return added, removed, fmt.Errorf("vxlan %s: remove peer %v: %w", name, a, err)
		}
		removed = append(removed, a)
	}
	missing := make([]netip.Addr, 0, len(want))
	for a := range want {
		missing = append(missing, a)
	}
	slices.SortFunc(missing, netip.Addr.Compare)
	for _, a := range missing {
		if err := p.h.NeighAppend(fdbEntry(idx, a)); err != nil {
			return added, removed, fmt.Errorf("vxlan %s: add peer %v: %w", name, a, err)
		}
		added = append(added, a)
	}
	return added, removed, nil
}

func fdbEntry(index int, peer netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    index,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_SELF,
		State:        netlink.NUD_PERMANENT | netlink.NUD_NOARP,
		HardwareAddr: zeroMAC,
		IP:           net.IP(peer.AsSlice()),
	}
}

// List reads every VXLAN device in the namespace back from the kernel,
// with its peers, in name order.
func (p *Plane) List() ([]State, error) {
	links, err := p.h.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list links: %w", err)
	}
	byIndex := make(map[int]string, len(links))
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	var out []State
	for _, l := range links {
		v, ok := l.(*netlink.Vxlan)
		if !ok {
			continue
		}
		src, _ := netip.AddrFromSlice(v.SrcAddr)
		st := State{
			Device: Device{
				Name:     v.Name,
				VNI:      uint32(v.VxlanId),
				Local:    src.Unmap(),
				Underlay: byIndex[v.VtepDevIndex],
				Port:     v.Port,
				MTU:      v.MTU,
				Bridge:   byIndex[v.MasterIndex],
				Alias:    v.Alias,
			},
			Index:    v.Index,
			Learning: v.Learning,
			Up:       v.Flags&net.FlagUp != 0,
		}
		if st.Peers, err = p.peers(v.Index); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (p *Plane) vxlan(name string) (netlink.Link, error) {
	link, err := p.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("vxlan %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Vxlan); !ok {
		return nil, fmt.Errorf("vxlan %s: is a %s, not a vxlan device", name, link.Type())
	}
	return link, nil
}

func isZeroMAC(m net.HardwareAddr) bool {
	if len(m) != 6 {
		return false
	}
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}
