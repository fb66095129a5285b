// Package camp reads Apache Brooklyn CAMP YAML blueprints into a plan:
// the entity tree with its config (flag-style keys, brooklyn.config,
// parameters' defaults), StaticSensor initializers, and every
// $brooklyn: DSL value parsed, its references resolved and the waits
// between entities ordered. It does no I/O: the deployer (package
// blueprint) runs what the plan says.
package camp

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every error of a plan: the blueprint is refused whole.
var ErrInvalid = errors.New("invalid blueprint")

// Kind is what an entity does when started.
type Kind string

const (
	// KindApplication groups its children (BasicApplication).
	KindApplication Kind = "application"
	// KindBasic is an entity with no process of its own (BasicEntity).
	KindBasic Kind = "basic"
	// KindContainer runs one Docker container (docker:IMAGE[:TAG],
	// Clocker 1.x's DockerContainer).
	KindContainer Kind = "container"
)

// TypeBasicApplication is the type of the application wrapping services.
const TypeBasicApplication = "org.apache.brooklyn.entity.stock.BasicApplication"

// Node is one entity of the plan.
type Node struct {
	// EntityID is the entity's id (given by the deployer's generator).
	EntityID string
	// PlanID is the YAML id: what component("x") matches first.
	PlanID string
	Name   string
	Type   string
	Kind   Kind
	// Image is the container image (KindContainer), tag included.
	Image string
	// Config holds brooklyn.config and the flag-style keys, unknown keys
	// kept; values may hold *Call.
	Config       map[string]any
	Parameters   []Parameter
	Initializers []StaticSensor
	// Locations as written (the fleet serves them all).
	Locations []string
	Parent    *Node
	Children  []*Node
	// Waits are the attributeWhenReady (and links) this entity's start
	// blocks on, resolved.
	Waits []Wait
	// Policies and Enrichers as written (brooklyn.policies,
	// brooklyn.enrichers); the deployer knows their types.
	Policies  []Adjunct
	Enrichers []Adjunct
	// MemberSpec is a cluster's member (its memberSpec entitySpec); its
	// Parent is the cluster, it is in no plan list.
	MemberSpec *Node
	// Web is a ControlledDynamicWebAppCluster's make-up (its children).
	Web *WebCluster
	// Strategy and Affinity are a container's placement: Clocker's
	// strategy chain and affinity rule lines ("": none).
	Strategy, Affinity string
	// Networks are the extra fleet networks a container joins.
	Networks []string
	// Source is the service's map as written (nil for the application
	// and the entities Clocker adds): what /entities/{e}/spec shows.
	Source map[string]any
}

// Parameter is one of brooklyn.parameters.
type Parameter struct {
	Name        string
	Type        string
	Description string
	Default     any
	Required    bool
}

// StaticSensor is an initializer publishing a sensor with a fixed
// (possibly DSL) value when the entity is created.
type StaticSensor struct {
	Name       string
	TargetType string
	Value      any
}

// Wait is one entity waiting on another's sensor.
type Wait struct {
	Target *Node
	Sensor string
}

// Plan is a parsed, checked blueprint.
type Plan struct {
	Root *Node
	// Nodes in depth-first order, Root first.
	Nodes []*Node
	// Order is start-up order in layers: every entity waits only on
	// entities of earlier layers.
	Order [][]*Node
}

// Label is how errors and the plan name an entity: its YAML id, else its
// name.
func (n *Node) Label() string {
	if n.PlanID != "" {
		return n.PlanID
	}
	return n.Name
}

// Parse reads a blueprint; newID gives each entity its id. Every error
// wraps ErrInvalid and names the problem.
func Parse(src []byte, newID func() string) (*Plan, error) {
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%w: malformed YAML: %v", ErrInvalid, err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: a blueprint is a YAML map with services, got %s", ErrInvalid, describe(doc))
	}
	// Brooklyn's legacy JSON spec names its services "entities".
	if _, has := top["services"]; !has {
		if e, ok := top["entities"]; ok {
			top["services"] = e
			delete(top, "entities")
		}
	}
	if _, ok := top["services"]; !ok {
		return nil, fmt.Errorf("%w: no services: a blueprint lists its entities under services", ErrInvalid)
	}
	root, err := parseApp(top)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p := &Plan{Root: root}
	var walk func(n *Node)
	walk = func(n *Node) {
		n.EntityID = newID()
		p.Nodes = append(p.Nodes, n)
		for _, c := range n.Children {
			c.Parent = n
			walk(c)
		}
	}
	walk(root)
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return p, nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// parseApp reads the top level: an application wrapping the services, or
// the one service itself when it is an application.
func parseApp(top map[string]any) (*Node, error) {
	services, ok := top["services"].([]any)
	if !ok || len(services) == 0 {
		return nil, errors.New("services must be a non-empty list")
	}
	app := &Node{Type: TypeBasicApplication, Kind: KindApplication, Config: map[string]any{}}
	if err := fillNode(app, top, true); err != nil {
		return nil, err
	}
	if len(services) == 1 {
		if m, ok := services[0].(map[string]any); ok {
			if t, _ := m["type"].(string); kindOf(t) == KindApplication {
				// The one service is the application: its keys over the top
				// level's, as Brooklyn unwraps it.
				inner := &Node{Config: map[string]any{}}
				if err := fillNode(inner, m, false); err != nil {
					return nil, err
				}
				for k, v := range inner.Config {
					app.Config[k] = v
				}
				if app.Name == "" {
					app.Name = inner.Name
				}
				app.PlanID, app.Type = inner.PlanID, inner.Type
				app.Parameters = append(app.Parameters, inner.Parameters...)
				app.Initializers = append(app.Initializers, inner.Initializers...)
				app.Children = inner.Children
				if len(inner.Locations) > 0 {
					app.Locations = inner.Locations
				}
				services = nil
			}
		}
	}
	for i, s := range services {
		c, err := parseService(s, fmt.Sprintf("services[%d]", i))
		if err != nil {
			return nil, err
		}
		app.Children = append(app.Children, c)
	}
	if app.Name == "" {
		app.Name = "Application"
	}
	return app, applyParameters(app)
}

func parseService(v any, where string) (*Node, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a map with type, got %s", where, describe(v))
	}
	n := &Node{Config: map[string]any{}, Source: m}
	if err := fillNode(n, m, false); err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	if n.Type == "" {
		return nil, fmt.Errorf("%s (%s): no type", where, n.Label())
	}
	n.Kind = kindOf(n.Type)
	if n.Kind == "" {
		n.Kind = kindOfMore(n.Type)
	}
	if n.Kind == "" {
		return nil, fmt.Errorf("%s (%s): unknown type %q; known: docker:IMAGE[:TAG], DockerContainer (with imageName), BasicApplication, BasicEntity, DynamicCluster, ControlledDynamicWebAppCluster, VanillaSoftwareProcess, EmptySoftwareProcess, VirtualNetwork", where, n.Label(), n.Type)
	}
	if n.Kind == KindContainer {
		n.Image = imageOf(n)
		if n.Image == "" {
			return nil, fmt.Errorf("%s (%s): type %s needs imageName", where, n.Label(), n.Type)
		}
	}
	if n.Name == "" {
		n.Name = n.PlanID
		if n.Name == "" {
			n.Name = n.Type
		}
	}
	if n.Kind == KindCluster {
		if err := memberSpec(n); err != nil {
			return nil, fmt.Errorf("%s (%s): %v", where, n.Label(), err)
		}
	}
	if err := prepareKind(n); err != nil {
		return nil, fmt.Errorf("%s (%s): %v", where, n.Label(), err)
	}
	if n.Kind.RunsContainer() {
		if err := preparePlacement(n); err != nil {
			return nil, fmt.Errorf("%s (%s): %v", where, n.Label(), err)
		}
	}
	return n, applyParameters(n)
}

// serviceKeys are the keys a service (or the top level) has beside its
// config; every other key is a flag-style config key, kept as written.
var serviceKeys = map[string]bool{
	"type": true, "id": true, "name": true, "services": true,
	"location": true, "locations": true,
	"brooklyn.config": true, "brooklyn.children": true,
	"brooklyn.initializers": true, "brooklyn.parameters": true,
	"brooklyn.enrichers": true, "brooklyn.policies": true,
	"brooklyn.catalog": true, "description": true, "origin": true,
}

func fillNode(n *Node, m map[string]any, top bool) error {
	n.Type, _ = stringKey(m, "type", n.Type)
	n.PlanID, _ = stringKey(m, "id", "")
	n.Name, _ = stringKey(m, "name", "")
	for _, k := range []string{"type", "id", "name"} {
		if v, ok := m[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				if _, isNum := v.(int); !(isNum && k == "id") {
					return fmt.Errorf("%s must be a string, got %s", k, describe(v))
				}
				n.PlanID = fmt.Sprint(v)
			}
		}
	}
	for k, v := range m {
		if serviceKeys[k] {
			continue
		}
		if top {
			continue // other top-level keys (brooklyn.* extensions) are not config
		}
		pv, err := ParseValue(v)
		if err != nil {
			return err
		}
		n.Config[k] = pv
	}
	if raw, ok := m["brooklyn.config"]; ok && raw != nil {
		cm, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("brooklyn.config must be a map, got %s", describe(raw))
		}
		for k, v := range cm {
			pv, err := ParseValue(v)
			if err != nil {
				return fmt.Errorf("brooklyn.config %s: %v", k, err)
			}
			n.Config[k] = pv
		}
	}
	for _, key := range []string{"location", "locations"} {
		switch l := m[key].(type) {
		case nil:
		case string:
			n.Locations = append(n.Locations, l)
		case map[string]any:
			for k := range l {
				n.Locations = append(n.Locations, k)
			}
		case []any:
			for _, e := range l {
				switch e := e.(type) {
				case string:
					n.Locations = append(n.Locations, e)
				case map[string]any:
					for k := range e {
						n.Locations = append(n.Locations, k)
					}
				}
			}
		default:
			return fmt.Errorf("%s must be a string, map or list", key)
		}
	}
	if raw, ok := m["brooklyn.children"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return fmt.Errorf("brooklyn.children must be a list, got %s", describe(raw))
		}
		for i, c := range list {
			child, err := parseService(c, fmt.Sprintf("brooklyn.children[%d]", i))
			if err != nil {
				return err
			}
			n.Children = append(n.Children, child)
		}
	}
	if err := parseInitializers(n, m["brooklyn.initializers"]); err != nil {
		return err
	}
	var err error
	if n.Policies, err = parseAdjuncts("brooklyn.policies", m["brooklyn.policies"]); err != nil {
		return err
	}
	if n.Enrichers, err = parseAdjuncts("brooklyn.enrichers", m["brooklyn.enrichers"]); err != nil {
		return err
	}
	return parseParameters(n, m["brooklyn.parameters"])
}

func stringKey(m map[string]any, k, def string) (string, bool) {
	if s, ok := m[k].(string); ok {
		return s, true
	}
	return def, false
}

func parseInitializers(n *Node, raw any) error {
	if raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("brooklyn.initializers must be a list, got %s", describe(raw))
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("brooklyn.initializers[%d]: want a map with type", i)
		}
		t, _ := m["type"].(string)
		if t != "StaticSensor" && !strings.HasSuffix(t, ".StaticSensor") {
			return fmt.Errorf("brooklyn.initializers[%d]: unknown initializer type %q; known: org.apache.brooklyn.core.sensor.StaticSensor", i, t)
		}
		// Keys given flag-style or under brooklyn.config.
		cfg := map[string]any{}
		for k, v := range m {
			cfg[k] = v
		}
		if bc, ok := m["brooklyn.config"].(map[string]any); ok {
			for k, v := range bc {
				cfg[k] = v
			}
		}
		name, _ := cfg["name"].(string)
		if name == "" {
			return fmt.Errorf("brooklyn.initializers[%d]: StaticSensor needs a name", i)
		}
		val, err := ParseValue(cfg["static.value"])
		if err != nil {
			return fmt.Errorf("StaticSensor %s: %v", name, err)
		}
		tt, _ := cfg["targetType"].(string)
		if tt == "" {
			tt = "String"
		}
		n.Initializers = append(n.Initializers, StaticSensor{Name: name, TargetType: tt, Value: val})
	}
	return nil
}

// kindOf maps a type name to what Clocker runs for it ("" unknown).
func kindOf(t string) Kind {
	switch {
	case strings.HasPrefix(t, "docker:"):
		return KindContainer
	case t == "DockerContainer" || strings.HasSuffix(t, ".DockerContainer"):
		return KindContainer
	case t == "BasicApplication" || strings.HasSuffix(t, ".BasicApplication"):
		return KindApplication
	case t == "BasicEntity" || strings.HasSuffix(t, ".BasicEntity"),
		t == "BasicStartable" || strings.HasSuffix(t, ".BasicStartable"):
		return KindBasic
	case t == "DynamicCluster" || strings.HasSuffix(t, ".DynamicCluster"):
		return KindCluster
	}
	return ""
}

// imageOf is the container's image: from docker:IMAGE[:TAG], else
// imageName/docker.image.name with imageTag/docker.image.tag (latest).
func imageOf(n *Node) string {
	if img, ok := strings.CutPrefix(n.Type, "docker:"); ok {
		if img == "" {
			return ""
		}
		if !hasTag(img) {
			img += ":latest"
		}
		return img
	}
	name, _ := firstString(n.Config, "imageName", "docker.image.name")
	if name == "" {
		return ""
	}
	if hasTag(name) {
		return name
	}
	tag, _ := firstString(n.Config, "imageTag", "docker.image.tag")
	if tag == "" {
		tag = "latest"
	}
	return name + ":" + tag
}

func hasTag(img string) bool {
	if strings.Contains(img, "@") {
		return true
	}
	slash := strings.LastIndex(img, "/")
	return strings.Contains(img[slash+1:], ":")
}

func firstString(cfg map[string]any, keys ...string) (string, bool) {
	for _, k := range keys {
		if s, ok := cfg[k].(string); ok {
			return s, true
		}
	}
	return "", false
}
