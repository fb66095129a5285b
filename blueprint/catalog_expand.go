package blueprint

import (
	"bytes"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// catalogItemKey is the config key an expanded service carries its
// catalog item's id under (shown as the entity's catalogItemId, not as
// config).
const catalogItemKey = "brooklyn.catalog.itemId"

// catalogHint adds to camp's unknown-type message that the catalog was
// looked in too.
func catalogHint(msg string) string {
	if strings.Contains(msg, "): unknown type ") {
		return msg + "; nor is it a catalog item (GET /v1/catalog/entities lists them)"
	}
	return msg
}

// catalogItemID is the catalog item e was made from, else nil.
func catalogItemID(e *Entity) any {
	if s, ok := e.Node.Config[catalogItemKey].(string); ok {
		return s
	}
	return nil
}

// Keys of a service that are not its config (kept in step with camp).
var specKeys = map[string]bool{
	"type": true, "id": true, "name": true, "services": true,
	"location": true, "locations": true, "description": true, "origin": true,
	"brooklyn.config": true, "brooklyn.children": true,
	"brooklyn.initializers": true, "brooklyn.parameters": true,
	"brooklyn.enrichers": true, "brooklyn.policies": true, "brooklyn.catalog": true,
}

// listKeys are a service's lists an outer service adds to its type's.
var listKeys = []string{"brooklyn.children", "brooklyn.initializers", "brooklyn.policies", "brooklyn.enrichers"}

// expandPlan replaces every service whose type names a catalog item by
// the item's blueprint with the service's own keys merged over it, as
// Brooklyn does: config key by key (maps key by key), name and id the
// service's, children, initializers, policies and enrichers added to the
// item's, parameters by name. Items refer to items to any depth; an item
// naming itself ends there (its type is then a built-in one). src comes
// back unchanged when nothing in it names the catalog.
func (c *catalog) expandPlan(src []byte) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return src, nil // camp.Parse names the problem
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return src, nil
	}
	x := &expander{c: c}
	out := x.spec(top, nil, true)
	if !x.changed {
		return src, nil
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, invalid("expanding catalog types: %v", err)
	}
	return b.Bytes(), nil
}

type expander struct {
	c       *catalog
	changed bool
}

// spec expands the parts of a service (or the top level) that hold
// services and adjuncts: services, brooklyn.children, entitySpec values
// in config, brooklyn.policies/enrichers; then, unless top, its own type.
// seen are the items being expanded around it.
func (x *expander) spec(m map[string]any, seen map[string]bool, top bool) map[string]any {
	m = copyMap(m)
	for _, k := range []string{"services", "brooklyn.children"} {
		if list, ok := m[k].([]any); ok {
			out := make([]any, len(list))
			for i, s := range list {
				if sm, ok := s.(map[string]any); ok {
					out[i] = x.spec(sm, seen, false)
				} else {
					out[i] = s
				}
			}
			m[k] = out
		}
	}
	for _, k := range []string{"brooklyn.policies", "brooklyn.enrichers"} {
		if list, ok := m[k].([]any); ok {
			out := make([]any, len(list))
			for i, a := range list {
				out[i] = x.adjunct(a)
			}
			m[k] = out
		}
	}
	for k, v := range m {
		if k == "brooklyn.config" {
			if bc, ok := v.(map[string]any); ok {
				nb := make(map[string]any, len(bc))
				for ck, cv := range bc {
					nb[ck] = x.value(cv, seen)
				}
				m[k] = nb
			}
		} else if !specKeys[k] {
			m[k] = x.value(v, seen)
		}
	}
	if top {
		return m
	}
	t, _ := m["type"].(string)
	it := x.c.resolveType(t, (*CatalogItem).isEntityLike)
	if it == nil || seen[it.ID()] {
		return m
	}
	x.changed = true
	inner := map[string]bool{it.ID(): true}
	for k := range seen {
		inner[k] = true
	}
	base := x.spec(itemSpec(it), inner, false)
	merged := mergeSpecs(base, m)
	if merged["name"] == nil && it.Name != "" {
		merged["name"] = it.Name
	}
	bc, _ := merged["brooklyn.config"].(map[string]any)
	bc[catalogItemKey] = it.ID()
	return merged
}

// value expands the entity specs inside a config value.
func (x *expander) value(v any, seen map[string]bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if k == "$brooklyn:entitySpec" {
				if sm, ok := e.(map[string]any); ok {
					out[k] = x.spec(sm, seen, false)
					continue
				}
			}
			out[k] = x.value(e, seen)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = x.value(e, seen)
		}
		return out
	}
	return v
}

// adjunct expands a policy or enricher whose type names a policy or
// enricher item: the item's type and config under the adjunct's config.
func (x *expander) adjunct(a any) any {
	m, ok := a.(map[string]any)
	if !ok {
		return a
	}
	tk := "type"
	for _, k := range []string{"policyType", "enricherType"} {
		if _, has := m[k]; has {
			tk = k
		}
	}
	t, _ := m[tk].(string)
	seen := map[string]bool{}
	for {
		it := x.c.resolveType(t, (*CatalogItem).isAdjunct)
		if it == nil || seen[it.ID()] {
			return m
		}
		seen[it.ID()] = true
		x.changed = true
		base, _ := it.plan.(map[string]any)
		own := copyMap(m)
		delete(own, tk)
		m = mergeSpecs(copyMap(base), own)
		t, _ = m["type"].(string)
		tk = "type"
	}
}

// itemSpec is an entity-like item's blueprint as one service: a
// template's one service with the template's keys over it, else an
// application of its services.
func itemSpec(it *CatalogItem) map[string]any {
	p, _ := it.plan.(map[string]any)
	p = deepCopy(p).(map[string]any)
	services, ok := p["services"].([]any)
	if !ok {
		return p
	}
	wrapper := copyMap(p)
	delete(wrapper, "services")
	if len(services) == 1 {
		if one, ok := services[0].(map[string]any); ok {
			return mergeSpecs(one, wrapper)
		}
	}
	wrapper["type"] = "org.apache.brooklyn.entity.stock.BasicApplication"
	wrapper["brooklyn.children"] = append(append([]any{}, services...), listOf(wrapper["brooklyn.children"])...)
	return wrapper
}

// mergeSpecs lays the service over its base: see expandPlan.
func mergeSpecs(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		if specKeys[k] {
			out[k] = v
		}
	}
	cfg := configOf(base)
	for k, v := range configOf(over) {
		bm, bok := cfg[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook && !isDSL(om) {
			merged := copyMap(bm)
			for mk, mv := range om {
				merged[mk] = mv
			}
			cfg[k] = merged
			continue
		}
		cfg[k] = v
	}
	out["brooklyn.config"] = cfg
	for k, v := range over {
		switch {
		case !specKeys[k], k == "brooklyn.config", k == "type" && out["type"] != nil:
		case k == "brooklyn.parameters":
			out[k] = mergeParams(listOf(out[k]), listOf(v))
		case slices.Contains(listKeys, k):
			out[k] = append(append([]any{}, listOf(out[k])...), listOf(v)...)
		case k == "location" || k == "locations":
			delete(out, "location")
			delete(out, "locations")
			out[k] = v
		default:
			out[k] = v
		}
	}
	return out
}

// configOf is a service's config: flag-style keys, brooklyn.config over them.
func configOf(m map[string]any) map[string]any {
	cfg := map[string]any{}
	for k, v := range m {
		if !specKeys[k] {
			cfg[k] = v
		}
	}
	if bc, ok := m["brooklyn.config"].(map[string]any); ok {
		for k, v := range bc {
			cfg[k] = v
		}
	}
	return cfg
}

func isDSL(m map[string]any) bool {
	for k := range m {
		if strings.HasPrefix(k, "$brooklyn:") {
			return true
		}
	}
	return false
}

// mergeParams adds over's parameters to base's, replacing those of the
// same name.
func mergeParams(base, over []any) []any {
	name := func(p any) string {
		if m, ok := p.(map[string]any); ok {
			s, _ := m["name"].(string)
			return s
		}
		s, _ := p.(string)
		return s
	}
	out := []any{}
	replaced := map[string]bool{}
	for _, p := range over {
		replaced[name(p)] = true
	}
	for _, p := range base {
		if !replaced[name(p)] {
			out = append(out, p)
		}
	}
	return append(out, over...)
}

func listOf(v any) []any {
	l, _ := v.([]any)
	return l
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}
