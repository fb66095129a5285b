package blueprint

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Item types of Brooklyn's catalog.
const (
	ItemTemplate    = "template"
	ItemEntity      = "entity"
	ItemApplication = "application"
	ItemPolicy      = "policy"
	ItemEnricher    = "enricher"
	ItemLocation    = "location"
)

// defaultVersion is the version of an item that names none (Brooklyn's).
const defaultVersion = "0.0.0-SNAPSHOT"

// builtinBOM maps well-known Brooklyn entity types onto container
// images; it is loaded into the catalog at start, where it is listed and
// can be replaced or deleted like any item.
//
//go:embed catalog.bom
var builtinBOM []byte

// builtinKey marks, in the catalog bucket, which built-in BOM was last
// loaded: a restart loads it again only when Clocker ships a new one, so
// deleted or replaced built-in items stay as the user left them.
const builtinKey = "!builtin"

// CatalogItem is one type of the catalog: a blueprint registered under
// a symbolic name and version.
type CatalogItem struct {
	SymbolicName string `json:"symbolicName"`
	Version      string `json:"version"`
	ItemType     string `json:"itemType"`
	Name         string `json:"name,omitempty"`
	Description  string `json:"description,omitempty"`
	IconURL      string `json:"iconUrl,omitempty"`
	Tags         []any  `json:"tags,omitempty"`
	Deprecated   bool   `json:"deprecated,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	// PlanYAML is the item's blueprint (its item: value) as YAML.
	PlanYAML string `json:"planYaml"`
	// plan is PlanYAML decoded.
	plan any
}

// ID is Brooklyn's item id: symbolic name and version.
func (it *CatalogItem) ID() string { return it.SymbolicName + ":" + it.Version }

func (it *CatalogItem) isEntityLike() bool {
	return it.ItemType == ItemEntity || it.ItemType == ItemApplication || it.ItemType == ItemTemplate
}

func (it *CatalogItem) isAdjunct() bool {
	return it.ItemType == ItemPolicy || it.ItemType == ItemEnricher
}

// catalog holds the items, persisted in the store's catalog bucket under
// prefix+ID: the fleet's catalog with no prefix, a tenant's under its
// tenantPrefix (catalog_tenants.go). A catalog without a store is a view.
type catalog struct {
	st     store.Store
	log    *slog.Logger
	prefix string

	mu    sync.RWMutex
	items map[string]*CatalogItem // by ID()
}

// loadCatalog reads the stored items — the fleet's, and each tenant's
// own — and loads the built-in BOM into the fleet's when the store has
// not had this one yet.
func loadCatalog(st store.Store, log *slog.Logger, check func(*CatalogItem, *catalog) error) (*catalog, map[string]*catalog) {
	c, tenants, seen := readCatalogs(st, log)
	sum := fmt.Sprintf("%x", len(builtinBOM)) + ":" + strconv.FormatUint(uint64(hashBytes(builtinBOM)), 16)
	if seen == sum {
		return c, tenants
	}
	items, err := parseBOM(builtinBOM)
	if err == nil {
		_, _, err = c.add(items, check)
	}
	if err != nil {
		// A fault of Clocker's own BOM: the unit tests catch it.
		log.Error("blueprint: built-in catalog refused", "err", err)
		return c, tenants
	}
	if st != nil {
		if err := st.Put(store.BucketCatalog, builtinKey, sum); err != nil {
			log.Warn("blueprint: storing the catalog", "err", err)
		}
	}
	return c, tenants
}

// readCatalogs reads the stored items: the fleet's catalog, each
// tenant's by owner, and which built-in BOM was last loaded.
func readCatalogs(st store.Store, log *slog.Logger) (fleet *catalog, tenants map[string]*catalog, seen string) {
	fleet, tenants = &catalog{st: st, log: log, items: map[string]*CatalogItem{}}, map[string]*catalog{}
	if st == nil {
		return fleet, tenants, ""
	}
	err := st.ForEach(store.BucketCatalog, func(key string, value []byte) error {
		if key == builtinKey {
			_ = json.Unmarshal(value, &seen)
			return nil
		}
		var it CatalogItem
		if err := json.Unmarshal(value, &it); err != nil {
			log.Warn("blueprint: unreadable catalog item", "id", key, "err", err)
			return nil
		}
		if err := yaml.Unmarshal([]byte(it.PlanYAML), &it.plan); err != nil {
			log.Warn("blueprint: unreadable catalog item plan", "id", key, "err", err)
			return nil
		}
		c := fleet
		if owner, ok := tenantOfKey(key); ok {
			if c = tenants[owner]; c == nil {
				c = &catalog{st: st, log: log, prefix: tenantPrefix(owner), items: map[string]*CatalogItem{}}
				tenants[owner] = c
			}
		}
		c.items[it.ID()] = &it
		return nil
	})
	if err != nil {
		log.Warn("blueprint: reading the catalog", "err", err)
	}
	return fleet, tenants, seen
}

func hashBytes(b []byte) uint32 {
	h := uint32(2166136261)
	for _, x := range b {
		h = (h ^ uint32(x)) * 16777619
	}
	return h
}

// parseBOM reads a brooklyn.catalog: document into its items (not yet
// checked against the types Clocker runs).
func parseBOM(src []byte) ([]*CatalogItem, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(src, &node); err != nil {
		return nil, invalid("malformed YAML: %v", err)
	}
	doc, err := decodeKeepingVersions(&node)
	if err != nil {
		return nil, invalid("malformed YAML: %v", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, invalid("a catalog BOM is a YAML map with brooklyn.catalog")
	}
	meta, ok := top["brooklyn.catalog"].(map[string]any)
	if !ok {
		return nil, invalid("no brooklyn.catalog map: a catalog BOM has brooklyn.catalog with item or items")
	}
	// A blueprint beside brooklyn.catalog is its item (Brooklyn's older form).
	if _, has := top["services"]; has && meta["item"] == nil && meta["items"] == nil {
		rest := map[string]any{}
		for k, v := range top {
			if k != "brooklyn.catalog" {
				rest[k] = v
			}
		}
		meta = copyMap(meta)
		meta["item"] = rest
	}
	var out []*CatalogItem
	if err := collectItems(meta, map[string]any{}, "brooklyn.catalog", &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, invalid("brooklyn.catalog has no item or items")
	}
	seen := map[string]bool{}
	for _, it := range out {
		if seen[it.ID()] {
			return nil, invalid("%s is given twice in the BOM", it.ID())
		}
		seen[it.ID()] = true
	}
	return out, nil
}

// decodeKeepingVersions decodes YAML as yaml.Unmarshal into any does,
// but a version key keeps its text: version: 1.0 is "1.0", not 1.
func decodeKeepingVersions(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return decodeKeepingVersions(n.Content[0])
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			var k string
			if err := n.Content[i].Decode(&k); err != nil {
				return nil, err
			}
			if v := n.Content[i+1]; k == "version" && v.Kind == yaml.ScalarNode {
				out[k] = v.Value
				continue
			}
			v, err := decodeKeepingVersions(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := decodeKeepingVersions(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.AliasNode:
		return decodeKeepingVersions(n.Alias)
	}
	var v any
	err := n.Decode(&v)
	return v, err
}

func invalid(format string, a ...any) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(format, a...))
}

// inherited are the metadata keys items take from the brooklyn.catalog
// level (or list) above them.
var inherited = []string{"version", "itemType", "description", "iconUrl", "tags", "deprecated", "disabled"}

var symbolicNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)
var versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)

func collectItems(meta, parent map[string]any, where string, out *[]*CatalogItem) error {
	merged := map[string]any{}
	for _, k := range inherited {
		if v, ok := parent[k]; ok {
			merged[k] = v
		}
	}
	for k, v := range meta {
		merged[k] = v
	}
	if raw, ok := meta["items"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return invalid("%s.items must be a list", where)
		}
		for i, e := range list {
			w := fmt.Sprintf("%s.items[%d]", where, i)
			m, ok := e.(map[string]any)
			if !ok {
				return invalid("%s: want a map with id and item", w)
			}
			if inner, ok := m["brooklyn.catalog"].(map[string]any); ok {
				m = inner
			}
			if err := collectItems(m, merged, w, out); err != nil {
				return err
			}
		}
		if _, has := meta["item"]; !has {
			return nil
		}
	}
	item, ok := merged["item"]
	if !ok || item == nil {
		return invalid("%s: no item (the blueprint of the type)", where)
	}
	it := &CatalogItem{plan: item}
	str := func(k string) (string, error) {
		v, ok := merged[k]
		if !ok || v == nil {
			return "", nil
		}
		switch t := v.(type) {
		case string:
			return t, nil
		case int, float64:
			if k == "version" {
				return fmt.Sprint(t), nil
			}
		}
		return "", invalid("%s: %s must be a string", where, k)
	}
	var err error
	id, err := str("id")
	if err != nil {
		return err
	}
	if id == "" {
		if id, err = str("symbolicName"); err != nil {
			return err
		}
	}
	if id == "" {
		return invalid("%s: no id (the symbolic name blueprints give as type)", where)
	}
	version, err := str("version")
	if err != nil {
		return err
	}
	if name, v, has := strings.Cut(id, ":"); has {
		if version != "" && version != v {
			return invalid("%s: id %s names version %s but version is %s", where, id, v, version)
		}
		id, version = name, v
	}
	if version == "" {
		version = defaultVersion
	}
	if !symbolicNameRE.MatchString(id) {
		return invalid("%s: id %q: letters, digits, '.', '_' and '-' only", where, id)
	}
	if !versionRE.MatchString(version) {
		return invalid("%s: version %q: letters, digits, '.', '_' and '-' only", where, version)
	}
	it.SymbolicName, it.Version = id, version
	if it.ItemType, err = str("itemType"); err != nil {
		return err
	}
	if it.Name, err = str("name"); err != nil {
		return err
	}
	if it.Name == "" {
		if m, ok := item.(map[string]any); ok {
			it.Name, _ = m["name"].(string)
		}
	}
	if it.Description, err = str("description"); err != nil {
		return err
	}
	if it.IconURL, err = str("iconUrl"); err != nil {
		return err
	}
	if t, ok := merged["tags"]; ok && t != nil {
		if it.Tags, ok = t.([]any); !ok {
			return invalid("%s: tags must be a list", where)
		}
	}
	it.Deprecated, _ = merged["deprecated"].(bool)
	it.Disabled, _ = merged["disabled"].(bool)
	m, isMap := item.(map[string]any)
	switch it.ItemType {
	case "":
		if !isMap {
			return invalid("%s (%s): item must be a map with type or services", where, id)
		}
		if _, has := m["services"]; has {
			it.ItemType = ItemTemplate
		} else {
			it.ItemType = ItemEntity
		}
	case ItemTemplate, ItemEntity, ItemApplication, ItemPolicy, ItemEnricher:
		if !isMap {
			return invalid("%s (%s): item must be a map", where, id)
		}
	case ItemLocation:
	default:
		return invalid("%s (%s): itemType %q: one of template, entity, application, policy, enricher, location", where, id, it.ItemType)
	}
	if isMap && it.ItemType != ItemLocation {
		_, hasType := m["type"].(string)
		_, hasServices := m["services"]
		if it.isAdjunct() && !hasType {
			return invalid("%s (%s): a %s item needs a type", where, id, it.ItemType)
		}
		if !hasType && !hasServices {
			return invalid("%s (%s): item needs a type or services", where, id)
		}
	}
	b, err := yaml.Marshal(item)
	if err != nil {
		return invalid("%s (%s): %v", where, id, err)
	}
	it.PlanYAML = string(b)
	*out = append(*out, it)
	return nil
}

// add checks and stores items, all or none: an item already there with
// the same content is kept (unchanged), a different one replaces it only
// when its version is a SNAPSHOT. check tests an item's blueprint against
// the catalog as it would be. It reports the items added or replaced and
// those unchanged.
func (c *catalog) add(items []*CatalogItem, check func(*CatalogItem, *catalog) error) (added, unchanged []*CatalogItem, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := &catalog{items: make(map[string]*CatalogItem, len(c.items)+len(items))}
	for k, v := range c.items {
		next.items[k] = v
	}
	for _, it := range items {
		old := c.items[it.ID()]
		if old != nil && sameItem(old, it) {
			unchanged = append(unchanged, old)
			continue
		}
		if old != nil && !strings.HasSuffix(it.Version, "SNAPSHOT") {
			return nil, nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s is in the catalog with a different blueprint: delete it first or give a new version", it.ID()))
		}
		next.items[it.ID()] = it
		added = append(added, it)
	}
	if check != nil {
		for _, it := range added {
			if err := check(it, next); err != nil {
				return nil, nil, invalid("catalog item %s: %v", it.ID(), strings.TrimPrefix(err.Error(), "invalid blueprint: "))
			}
		}
	}
	for _, it := range added {
		if c.st != nil {
			if err := c.st.Put(store.BucketCatalog, c.prefix+it.ID(), it); err != nil {
				return nil, nil, err
			}
		}
		c.items[it.ID()] = it
	}
	return added, unchanged, nil
}

func sameItem(a, b *CatalogItem) bool {
	x, y := *a, *b
	x.plan, y.plan = nil, nil
	return reflect.DeepEqual(x, y)
}

// remove deletes one item.
func (c *catalog) remove(it *CatalogItem) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != nil {
		if err := c.st.Delete(store.BucketCatalog, c.prefix+it.ID()); err != nil {
			return err
		}
	}
	delete(c.items, it.ID())
	return nil
}

// list is every item, by symbolic name then newest version first.
func (c *catalog) list() []*CatalogItem {
	c.mu.RLock()
	out := make([]*CatalogItem, 0, len(c.items))
	for _, it := range c.items {
		out = append(out, it)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].SymbolicName != out[j].SymbolicName {
			return out[i].SymbolicName < out[j].SymbolicName
		}
		return compareVersions(out[i].Version, out[j].Version) > 0
	})
	return out
}

// find is an item by symbolic name and version ("" the newest), among
// those ok accepts.
func (c *catalog) find(name, version string, ok func(*CatalogItem) bool) *CatalogItem {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if version != "" {
		if it := c.items[name+":"+version]; it != nil && ok(it) {
			return it
		}
		return nil
	}
	var best *CatalogItem
	for _, it := range c.items {
		if it.SymbolicName == name && ok(it) && (best == nil || compareVersions(it.Version, best.Version) > 0) {
			best = it
		}
	}
	return best
}

// resolveType finds the item a blueprint's type names: NAME or
// NAME:VERSION, NAME the symbolic name or, without dots, the last dotted
// segment of exactly one item's (MySqlNode for …mysql.MySqlNode).
func (c *catalog) resolveType(t string, ok func(*CatalogItem) bool) *CatalogItem {
	if t == "" || strings.HasPrefix(t, "docker:") {
		return nil
	}
	try := func(name, version string) *CatalogItem {
		if it := c.find(name, version, ok); it != nil {
			return it
		}
		if strings.Contains(name, ".") {
			return nil
		}
		var match *CatalogItem
		for _, it := range c.list() {
			if strings.HasSuffix(it.SymbolicName, "."+name) && ok(it) && (version == "" || it.Version == version) {
				if match != nil && match.SymbolicName != it.SymbolicName {
					return nil // ambiguous: the full name is needed
				}
				if match == nil {
					match = it // list gives the newest version first
				}
			}
		}
		return match
	}
	if it := try(t, ""); it != nil {
		return it
	}
	if i := strings.LastIndex(t, ":"); i > 0 {
		return try(t[:i], t[i+1:])
	}
	return nil
}

// compareVersions orders Brooklyn/OSGi-style versions: numeric parts as
// numbers, a qualifier after them, SNAPSHOT before the release.
func compareVersions(a, b string) int {
	split := func(v string) []string {
		return strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) || i < len(pb); i++ {
		if i >= len(pa) {
			return releaseSign(pb[i:], -1)
		}
		if i >= len(pb) {
			return releaseSign(pa[i:], 1)
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		switch {
		case ea == nil && eb == nil:
			if na != nb {
				return cmpInt(na, nb)
			}
		case ea == nil:
			return 1 // 1.0.1 after 1.0-beta
		case eb == nil:
			return -1
		default:
			sa, sb := strings.EqualFold(pa[i], "SNAPSHOT"), strings.EqualFold(pb[i], "SNAPSHOT")
			if sa != sb {
				if sa {
					return -1
				}
				return 1
			}
			if c := strings.Compare(pa[i], pb[i]); c != 0 {
				return c
			}
		}
	}
	return 0
}

// releaseSign orders a version with extra parts against its prefix:
// more numbers come after (1.0.1 > 1.0), a qualifier before (1.0-SNAPSHOT < 1.0).
func releaseSign(extra []string, sign int) int {
	if _, err := strconv.Atoi(extra[0]); err == nil {
		return sign
	}
	return -sign
}

func cmpInt(a, b int) int {
	if a < b {
		return -1
	}
	return 1
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
