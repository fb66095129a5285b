package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Table maps fleet names (container names, network aliases, compose
// service names) to addresses. The agent writes it as containers come and
// go; the server reads it for every query. It is safe for concurrent use.
//
// Names are matched without case and without a trailing dot.
type Table struct {
	mu      sync.RWMutex
	names   map[string][]netip.Addr
	reverse map[netip.Addr][]string
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{names: map[string][]netip.Addr{}, reverse: map[netip.Addr][]string{}}
}

// Normalize is the form names are kept in: lower case, no trailing dot.
func Normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Set makes name resolve to addrs (replacing what it had). Setting a name
// to no address removes it.
func (t *Table) Set(name string, addrs ...netip.Addr) {
	name = Normalize(name)
	if name == "" {
		return
	}
	clean := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			clean = append(clean, a.Unmap())
		}
	}
	slices.SortFunc(clean, netip.Addr.Compare)
	clean = slices.Compact(clean)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(name)
	if len(clean) == 0 {
		return
	}
	t.names[name] = clean
	for _, a := range clean {
		t.reverse[a] = append(t.reverse[a], name)
	}
}

// Remove forgets name; removing an unknown name does nothing.
func (t *Table) Remove(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(Normalize(name))
}

func (t *Table) removeLocked(name string) {
	for _, a := range t.names[name] {
		rest := slices.DeleteFunc(t.reverse[a], func(n string) bool { return n == name })
		if len(rest) == 0 {
			delete(t.reverse, a)
		} else {
			t.reverse[a] = rest
		}
	}
	delete(t.names, name)
}

// Replace makes the table hold exactly records: what an agent does when
// it (re)learns the whole state from the manager.
func (t *Table) Replace(records map[string][]netip.Addr) {
	fresh := NewTable()
	for name, addrs := range records {
		fresh.Set(name, addrs...)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.names, t.reverse = fresh.names, fresh.reverse
}

// Lookup returns the addresses of name (a copy), and whether it is known.
func (t *Table) Lookup(name string) ([]netip.Addr, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	a, ok := t.names[Normalize(name)]
	return slices.Clone(a), ok
}

// Names returns the names that resolve to addr, in order.
func (t *Table) Names(addr netip.Addr) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := slices.Clone(t.reverse[addr.Unmap()])
	slices.Sort(n)
	return n
}

// Len is the number of names.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.names)
}
