package dns

import (
	"net/netip"
	"sync/atomic"
)

// TableFor is t whoever asks: a Table is the Scope of one view.
func (t *Table) TableFor(netip.Addr) *Table { return t }

// Subnet is a network whose own addresses see its table: a querier inside
// a fleet network's subnet is on that network, known to the manager or
// not yet (a container that just started).
type Subnet struct {
	Prefix netip.Prefix
	Table  *Table
}

// Views is a Scope that answers each querier from the view it was given
// for that address, or else from the table of the subnet holding it, or
// with no fleet names at all. The agent swaps a whole new set in with
// Set; queries never wait for that.
type Views struct {
	cur atomic.Pointer[viewSet]
}

type viewSet struct {
	clients map[netip.Addr]*Table
	subnets []Subnet
}

// Set replaces every view: clients maps querier addresses to their
// tables, subnets are tried in order for the other queriers.
func (v *Views) Set(clients map[netip.Addr]*Table, subnets []Subnet) {
	v.cur.Store(&viewSet{clients: clients, subnets: subnets})
}

// TableFor is src's view, nil when it has none.
func (v *Views) TableFor(src netip.Addr) *Table {
	vs := v.cur.Load()
	if vs == nil {
		return nil
	}
	if t, ok := vs.clients[src]; ok {
		return t
	}
	for _, s := range vs.subnets {
		if s.Prefix.Contains(src) {
			return s.Table
		}
	}
	return nil
}
