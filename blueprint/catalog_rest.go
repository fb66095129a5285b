package blueprint

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// checkItem tests an item's blueprint as a deploy would (types known,
// DSL sound, adjunct types known) against the catalog next, without
// looking at images: those may come later.
func (m *Manager) checkItem(it *CatalogItem, next *catalog) error {
	var doc map[string]any
	ref := it.SymbolicName + ":" + it.Version
	switch {
	case it.ItemType == ItemLocation:
		return nil
	case it.isAdjunct():
		key := "brooklyn.policies"
		if it.ItemType == ItemEnricher {
			key = "brooklyn.enrichers"
		}
		doc = map[string]any{"services": []any{map[string]any{"type": "BasicEntity", key: []any{map[string]any{"type": ref}}}}}
	default:
		doc = map[string]any{"services": []any{map[string]any{"type": ref}}}
	}
	src, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	if src, err = next.expandPlan(src); err != nil {
		return err
	}
	plan, err := camp.Parse(src, NewID)
	if err != nil {
		return errors.New(catalogHint(err.Error()))
	}
	return m.checkAdjuncts(plan)
}

// catalogKinds are the list paths of /v1/catalog and the item types
// each lists.
var catalogKinds = map[string]func(*CatalogItem) bool{
	"applications": func(it *CatalogItem) bool { return it.ItemType == ItemTemplate || it.ItemType == ItemApplication },
	"entities":     (*CatalogItem).isEntityLike,
	"policies":     func(it *CatalogItem) bool { return it.ItemType == ItemPolicy },
	"enrichers":    func(it *CatalogItem) bool { return it.ItemType == ItemEnricher },
	"locations":    func(it *CatalogItem) bool { return it.ItemType == ItemLocation },
}

func anyItem(*CatalogItem) bool { return true }

func (m *Manager) catalogRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v1/catalog", m.catalogAdd)
	h("GET /v1/catalog/{name}/{version}", m.catalogShow(anyItem))
	h("DELETE /v1/catalog/{name}/{version}", m.catalogDelete(anyItem))
	for kind, ok := range catalogKinds {
		h("GET /v1/catalog/"+kind, m.catalogList(ok))
		h("GET /v1/catalog/"+kind+"/{name}", m.catalogShow(ok))
		h("GET /v1/catalog/"+kind+"/{name}/{version}", m.catalogShow(ok))
		h("DELETE /v1/catalog/"+kind+"/{name}", m.catalogDelete(ok))
		h("DELETE /v1/catalog/"+kind+"/{name}/{version}", m.catalogDelete(ok))
	}
}

// catalogAdd takes a brooklyn.catalog BOM under any content type: 201
// when something was added or replaced, 200 when all was there. With
// ?detail=true the answer is Brooklyn's bundle result, else the map of
// item id to summary.
func (m *Manager) catalogAdd(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPlan+1))
	if err != nil {
		return err
	}
	if len(body) > maxPlan {
		return errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("catalog BOM over %d bytes", maxPlan))
	}
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "zip") || strings.Contains(ct, "java-archive") || strings.Contains(ct, "x-jar") {
		return errdefs.New(errdefs.ErrInvalid, "bundles (zip, jar) are not supported: post the catalog.bom YAML itself")
	}
	items, err := parseBOM(body)
	if err != nil {
		return err
	}
	owner := m.owner(r.Context())
	own, _ := m.catalogFor(owner)
	added, unchanged, err := own.add(items, m.checkItemOver(owner))
	if err != nil {
		return err
	}
	types := map[string]any{}
	for _, it := range append(added, unchanged...) {
		types[it.ID()] = m.itemSummary(it)
	}
	code, status := "INSTALLED_NEW_BUNDLE", http.StatusCreated
	msg := fmt.Sprintf("Added %d catalog item(s)", len(added))
	if len(added) == 0 {
		code, status = "IGNORING_BUNDLE_AREADY_INSTALLED", http.StatusOK
		msg = "All catalog items were already installed"
	}
	if r.URL.Query().Get("detail") == "true" {
		return writeJSON(w, status, map[string]any{"message": msg, "bundle": "", "code": code, "types": types})
	}
	return writeJSON(w, status, types)
}

// catalogList lists the items of a kind: the newest version of each
// unless allVersions=true, filtered by regex and fragment (on id, name
// and description) as Brooklyn does.
func (m *Manager) catalogList(ok func(*CatalogItem) bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		all := q.Get("allVersions") == "true"
		var re *regexp.Regexp
		if s := q.Get("regex"); s != "" {
			var err error
			if re, err = regexp.Compile(s); err != nil {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("regex %q: %v", s, err))
			}
		}
		frag := strings.ToLower(q.Get("fragment"))
		out := []any{}
		last := ""
		_, view := m.catalogFor(m.owner(r.Context()))
		for _, it := range view.list() {
			if !ok(it) {
				continue
			}
			if !all && it.SymbolicName == last {
				continue // list gives the newest first
			}
			last = it.SymbolicName
			text := it.SymbolicName + "\n" + it.Name + "\n" + it.Description
			if re != nil && !re.MatchString(text) {
				continue
			}
			if frag != "" && !strings.Contains(strings.ToLower(text), frag) {
				continue
			}
			out = append(out, m.itemSummary(it))
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

// itemOf finds the item a path names: {name} with an optional {version}
// (also name:version in one segment), the newest without.
func (m *Manager) itemOf(r *http.Request, ok func(*CatalogItem) bool) (*CatalogItem, error) {
	name, version := r.PathValue("name"), r.PathValue("version")
	if version == "" {
		if n, v, has := strings.Cut(name, ":"); has {
			name, version = n, v
		}
	}
	if version == "latest" {
		version = ""
	}
	_, view := m.catalogFor(m.owner(r.Context()))
	if it := view.find(name, version, ok); it != nil {
		return it, nil
	}
	what := name
	if version != "" {
		what += ":" + version
	}
	return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Catalog item '%s' not found", what))
}

func (m *Manager) catalogShow(ok func(*CatalogItem) bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		it, err := m.itemOf(r, ok)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, m.itemSummary(it))
	}
}

// catalogDelete removes one item: 204. Without a version the item must
// have only one.
func (m *Manager) catalogDelete(ok func(*CatalogItem) bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		it, err := m.itemOf(r, ok)
		if err != nil {
			return err
		}
		if r.PathValue("version") == "" && !strings.Contains(r.PathValue("name"), ":") {
			n := 0
			_, view := m.catalogFor(m.owner(r.Context()))
			for _, x := range view.list() {
				if x.SymbolicName == it.SymbolicName && ok(x) {
					n++
				}
			}
			if n > 1 {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Catalog item '%s' has %d versions: name the one to delete", it.SymbolicName, n))
			}
		}
		if err := m.removeItem(m.owner(r.Context()), it); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// kindPath is the list path an item is shown under.
func kindPath(it *CatalogItem) string {
	switch it.ItemType {
	case ItemTemplate, ItemApplication:
		return "applications"
	case ItemPolicy:
		return "policies"
	case ItemEnricher:
		return "enrichers"
	case ItemLocation:
		return "locations"
	}
	return "entities"
}

// itemSummary is Brooklyn's CatalogItemSummary (with an entity's config,
// sensors and effectors lists, as CatalogEntitySummary).
func (m *Manager) itemSummary(it *CatalogItem) map[string]any {
	self := "/v1/catalog/" + kindPath(it) + "/" + it.SymbolicName + "/" + it.Version
	tags := it.Tags
	if tags == nil {
		tags = []any{}
	}
	javaType := ""
	if p, ok := it.plan.(map[string]any); ok {
		javaType, _ = p["type"].(string)
		if _, has := p["services"]; has && javaType == "" {
			javaType = camp.TypeBasicApplication
		}
	}
	out := map[string]any{
		"id": it.ID(), "symbolicName": it.SymbolicName, "version": it.Version,
		"containingBundle": "", "name": it.Name, "description": it.Description,
		"javaType": javaType, "itemType": it.ItemType, "type": it.ItemType,
		"planYaml": it.PlanYAML, "iconUrl": it.IconURL, "tags": tags,
		"deprecated": it.Deprecated, "disabled": it.Disabled,
		"links": map[string]string{"self": self},
	}
	if it.isEntityLike() {
		out["config"] = itemConfig(it)
		out["sensors"] = []any{}
		out["effectors"] = []any{}
	}
	return out
}

// itemConfig lists an item's brooklyn.parameters as Brooklyn's config
// summaries.
func itemConfig(it *CatalogItem) []any {
	out := []any{}
	p, _ := it.plan.(map[string]any)
	params := listOf(p["brooklyn.parameters"])
	if s := listOf(p["services"]); len(s) == 1 && len(params) == 0 {
		if one, ok := s[0].(map[string]any); ok {
			params = listOf(one["brooklyn.parameters"])
		}
	}
	for _, raw := range params {
		c := map[string]any{"name": "", "type": "java.lang.String", "description": "", "label": "", "defaultValue": nil,
			"reconfigurable": false, "priority": 1, "pinned": true, "possibleValues": []any{}, "links": map[string]string{}}
		switch v := raw.(type) {
		case string:
			c["name"], c["label"] = v, v
		case map[string]any:
			for _, k := range []string{"name", "label", "description"} {
				if s, ok := v[k].(string); ok {
					c[k] = s
				}
			}
			if c["label"] == "" {
				c["label"] = c["name"]
			}
			if t, ok := v["type"].(string); ok {
				c["type"] = t
			}
			c["defaultValue"] = v["default"]
			if b, ok := v["pinned"].(bool); ok {
				c["pinned"] = b
			}
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}
