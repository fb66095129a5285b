package blueprint

import (
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/clocker/clocker/internal/errdefs"
)

// With --tenants the catalog has two layers. The fleet's (the built-in
// BOM and what admins add) is every tenant's to use and none's to change;
// the items a tenant adds are its own: listed, resolved and deletable by
// it alone, so that no tenant can see, replace or delete the blueprints
// another deploys from. A tenant's item with the id of a fleet item hides
// that one in the tenant's view. Admins (and Clocker itself) see and
// change the fleet's catalog only.

// tenantCatalogs are the tenants' own catalogs, by owner.
type tenantCatalogs struct {
	mu      sync.Mutex
	byOwner map[string]*catalog
}

// tenantPrefix starts the store key of each of owner's items ("@OWNER/",
// OWNER path-escaped): no symbolic name starts with '@'.
func tenantPrefix(owner string) string { return "@" + url.PathEscape(owner) + "/" }

// tenantOfKey is the owner of a stored tenant item's key.
func tenantOfKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "@")
	if !ok {
		return "", false
	}
	esc, _, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	owner, err := url.PathUnescape(esc)
	return owner, err == nil
}

// catalogFor is the catalog owner adds to and deletes from (its own; the
// fleet's for "") and the view it lists and deploys from.
func (m *Manager) catalogFor(owner string) (own, view *catalog) {
	if owner == "" {
		return m.catalog, m.catalog
	}
	m.tenantCat.mu.Lock()
	own = m.tenantCat.byOwner[owner]
	if own == nil {
		own = &catalog{st: m.st, log: m.log, prefix: tenantPrefix(owner), items: map[string]*CatalogItem{}}
		m.tenantCat.byOwner[owner] = own
	}
	m.tenantCat.mu.Unlock()
	return own, overlay(m.catalog, own)
}

// overlay is a view of base's items with over's on top (no store).
func overlay(base, over *catalog) *catalog {
	v := &catalog{items: map[string]*CatalogItem{}}
	for _, c := range []*catalog{base, over} {
		c.mu.RLock()
		for k, it := range c.items {
			v.items[k] = it
		}
		c.mu.RUnlock()
	}
	return v
}

// checkItemOver is checkItem for an item a tenant adds: its blueprint
// resolves in the tenant's view as it would be (next: the tenant's own
// items with the new ones).
func (m *Manager) checkItemOver(owner string) func(*CatalogItem, *catalog) error {
	if owner == "" {
		return m.checkItem
	}
	return func(it *CatalogItem, next *catalog) error {
		return m.checkItem(it, overlay(m.catalog, next))
	}
}

// removeItem deletes it from owner's own catalog; a tenant may not
// delete the fleet's items.
func (m *Manager) removeItem(owner string, it *CatalogItem) error {
	own, _ := m.catalogFor(owner)
	own.mu.RLock()
	mine := own.items[it.ID()] == it
	own.mu.RUnlock()
	if !mine {
		return errdefs.New(errdefs.ErrForbidden, fmt.Sprintf("Catalog item '%s' is the fleet's: only an administrator can delete it", it.ID()))
	}
	return own.remove(it)
}

// reloadCatalogs reads the catalogs again from the store (another
// manager, leading before this one, may have changed them); the built-in
// BOM is not loaded again.
func (m *Manager) reloadCatalogs() {
	fleet, tenants, _ := readCatalogs(m.st, m.log)
	m.catalog.mu.Lock()
	m.catalog.items = fleet.items
	m.catalog.mu.Unlock()
	m.tenantCat.mu.Lock()
	m.tenantCat.byOwner = tenants
	m.tenantCat.mu.Unlock()
}
