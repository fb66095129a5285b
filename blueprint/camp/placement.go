package camp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Clocker 1.x's placement strategies (docker.container.strategies, each a
// $brooklyn:object) become Clocker's strategy chain (the label
// io.clocker.strategy, see scheduler/strategies.go); a type's flag names
// and config key names are both read.
var strategyTypes = map[string]func(cfg map[string]any) (string, error){
	"DepthFirstPlacementStrategy":      fixedStrategy("depth-first"),
	"BreadthFirstPlacementStrategy":    fixedStrategy("breadth-first"),
	"LeastContainersPlacementStrategy": fixedStrategy("least-containers"),
	"LowestCpuUsagePlacementStrategy":  fixedStrategy("lowest-cpu-usage"),
	"RandomPlacementStrategy":          fixedStrategy("random"),
	"MaxContainersPlacementStrategy": func(cfg map[string]any) (string, error) {
		v, ok := lookupKey(cfg, []string{"maxContainers", "docker.container.cluster.maxSize"})
		if !ok {
			return "max-containers=8", nil // Clocker 1.x's default
		}
		n, err := strconv.Atoi(fmt.Sprint(v))
		if err != nil || n < 1 {
			return "", fmt.Errorf("maxContainers %v: want a positive integer", v)
		}
		return "max-containers=" + strconv.Itoa(n), nil
	},
	"MaxCpuUsagePlacementStrategy": func(cfg map[string]any) (string, error) {
		v, ok := lookupKey(cfg, []string{"maxCpuUsage", "docker.container.cluster.maxCpu"})
		if !ok {
			return "max-cpu-usage=0.5", nil
		}
		f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
		if err != nil || f <= 0 || f > 1 {
			return "", fmt.Errorf("maxCpuUsage %v: want a fraction above 0, at most 1", v)
		}
		return "max-cpu-usage=" + strconv.FormatFloat(f, 'f', -1, 64), nil
	},
	"LabelPlacementStrategy": func(cfg map[string]any) (string, error) {
		v, ok := lookupKey(cfg, []string{"labels", "docker.constraint.labels"})
		if !ok {
			return "", nil // no labels: every host (as Clocker 1.x)
		}
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		var out []string
		for _, l := range list {
			s := fmt.Sprint(l)
			if s == "" || strings.ContainsAny(s, ", ") {
				return "", fmt.Errorf("label %q: want KEY or KEY=VALUE without commas or spaces", s)
			}
			out = append(out, "label="+s)
		}
		return strings.Join(out, ","), nil
	},
	"HostnamePlacementStrategy": func(cfg map[string]any) (string, error) {
		v, ok := lookupKey(cfg, []string{"hostname", "docker.constraint.hostname"})
		s := fmt.Sprint(v)
		if !ok || s == "" {
			return "", fmt.Errorf("HostnamePlacementStrategy needs hostname (a pattern)")
		}
		if strings.Contains(s, ",") {
			return "", fmt.Errorf("hostname pattern %q: commas cannot be carried in Clocker's strategy chain", s)
		}
		return "hostname=" + s, nil
	},
	"GroupPlacementStrategy": func(cfg map[string]any) (string, error) {
		v, _ := lookupKey(cfg, []string{"exclusive", "docker.constraint.exclusive"})
		if fmt.Sprint(v) == "true" {
			return "group=exclusive", nil
		}
		return "group", nil
	},
}

func fixedStrategy(name string) func(map[string]any) (string, error) {
	return func(map[string]any) (string, error) { return name, nil }
}

// StrategyTypeNames lists the strategy types known, for errors.
func StrategyTypeNames() string {
	names := make([]string, 0, len(strategyTypes))
	for k := range strategyTypes {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ObjectSpec reads the argument of $brooklyn:object: its type and its
// config (brooklyn.config, object.fields and flag-style keys merged).
func ObjectSpec(arg any) (string, map[string]any, error) {
	m, ok := arg.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("$brooklyn:object wants a map with type")
	}
	t, _ := m["type"].(string)
	if t == "" {
		t, _ = m["objectType"].(string)
	}
	if t == "" {
		return "", nil, fmt.Errorf("$brooklyn:object wants a type")
	}
	cfg := map[string]any{}
	for k, v := range m {
		switch k {
		case "type", "objectType", "brooklyn.config", "object.fields", "constructor.args":
		default:
			cfg[k] = v
		}
	}
	for _, k := range []string{"object.fields", "brooklyn.config"} {
		if sub, ok := m[k].(map[string]any); ok {
			for kk, v := range sub {
				cfg[kk] = v
			}
		}
	}
	if _, ok := m["constructor.args"]; ok {
		return "", nil, fmt.Errorf("$brooklyn:object %s: constructor.args is not supported (give brooklyn.config or object.fields)", t)
	}
	return t, cfg, nil
}

// checkObject validates a $brooklyn:object: Clocker knows the placement
// strategy types (the objects real blueprints build), nothing else.
func checkObject(c *Call) error {
	t, cfg, err := ObjectSpec(c.Args[0])
	if err != nil {
		return err
	}
	build, ok := strategyTypes[ShortType(t)]
	if !ok {
		return fmt.Errorf("$brooklyn:object of type %s is not supported: Clocker builds only placement strategies (%s)", t, StrategyTypeNames())
	}
	for k, v := range cfg {
		if _, dsl := v.(*Call); dsl {
			return fmt.Errorf("$brooklyn:object %s: %s must be a plain value, not DSL", t, k)
		}
	}
	_, err = build(cfg)
	return err
}

// strategyChain turns docker.container.strategies into a chain such as
// "max-containers=4,breadth-first".
func strategyChain(v any) (string, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var parts []string
	for i, x := range list {
		var t string
		var cfg map[string]any
		switch s := x.(type) {
		case string:
			t, cfg = s, map[string]any{}
		case *Call:
			if s.Fn != "object" || s.Recv != nil || len(s.Args) != 1 {
				return "", fmt.Errorf("strategies[%d]: want $brooklyn:object({type: …}) or a type name, got %s", i, s)
			}
			var err error
			if t, cfg, err = ObjectSpec(s.Args[0]); err != nil {
				return "", fmt.Errorf("strategies[%d]: %v", i, err)
			}
		case map[string]any:
			var err error
			if t, cfg, err = ObjectSpec(s); err != nil {
				return "", fmt.Errorf("strategies[%d]: %v", i, err)
			}
		default:
			return "", fmt.Errorf("strategies[%d]: want $brooklyn:object({type: …}), got %s", i, describe(x))
		}
		build, ok := strategyTypes[ShortType(t)]
		if !ok {
			return "", fmt.Errorf("strategies[%d]: unknown placement strategy %s (known: %s)", i, t, StrategyTypeNames())
		}
		p, err := build(cfg)
		if err != nil {
			return "", fmt.Errorf("strategies[%d] %s: %v", i, ShortType(t), err)
		}
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ","), nil
}

// affinityRules reads Clocker 1.x's affinity.rules (lines or commas, or
// a list) into Clocker's rule lines (the label io.clocker.affinity):
// [NOT] TYPE|NAME|ID|APPLICATION|EMPTY [param]. NAME matched a display
// name containing the text, ID an entity id: both become container-name
// globs, since every container's name holds its entity's label and id.
func affinityRules(v any) (string, error) {
	var lines []string
	switch t := v.(type) {
	case string:
		lines = strings.FieldsFunc(t, func(r rune) bool { return r == '\n' || r == ',' || r == ';' })
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("affinity.rules: want strings, got %s", describe(x))
			}
			lines = append(lines, s)
		}
	default:
		return "", fmt.Errorf("affinity.rules: want rule lines, got %s", describe(v))
	}
	var out []string
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		not := false
		switch strings.ToUpper(f[0]) {
		case "NOT":
			not, f = true, f[1:]
		case "SAME":
			f = f[1:]
		}
		if len(f) == 0 || len(f) > 2 {
			return "", fmt.Errorf("affinity rule %q: want [NOT] TYPE|NAME|ID|APPLICATION|EMPTY [param]", line)
		}
		verb, param := strings.ToUpper(f[0]), ""
		if len(f) == 2 {
			param = f[1]
		}
		switch verb {
		case "TYPE", "APPLICATION":
		case "NAME":
			if param == "" {
				return "", fmt.Errorf("affinity rule %q: NAME needs a name", line)
			}
			verb, param = "NAME", "*"+strings.ToLower(param)+"*"
		case "ID":
			if param == "" {
				return "", fmt.Errorf("affinity rule %q: ID needs an entity id", line)
			}
			verb, param = "NAME", "*-"+param
		case "EMPTY":
			if param != "" {
				return "", fmt.Errorf("affinity rule %q: EMPTY takes no parameter", line)
			}
		case "PREDICATE":
			return "", fmt.Errorf("affinity rule %q: PREDICATE names a Java class; not supported", line)
		default:
			return "", fmt.Errorf("affinity rule %q: unknown verb %s (known: TYPE, NAME, ID, APPLICATION, EMPTY)", line, f[0])
		}
		r := verb
		if param != "" {
			r += " " + param
		}
		if not {
			r = "NOT " + r
		}
		out = append(out, r)
	}
	return strings.Join(out, "\n"), nil
}

// preparePlacement reads a container entity's strategies and affinity
// rules into Strategy and Affinity.
func preparePlacement(n *Node) error {
	if v, ok := lookupKey(n.Config, StrategyKeys); ok {
		chain, err := strategyChain(v)
		if err != nil {
			return fmt.Errorf("docker.container.strategies: %v", err)
		}
		n.Strategy = chain
	}
	if v, ok := lookupKey(n.Config, AffinityKeys); ok {
		rules, err := affinityRules(v)
		if err != nil {
			return err
		}
		n.Affinity = rules
	}
	return nil
}
