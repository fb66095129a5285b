package camp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func parseParameters(n *Node, raw any) error {
	if raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("brooklyn.parameters must be a list, got %s", describe(raw))
	}
	for i, e := range list {
		var p Parameter
		switch e := e.(type) {
		case string:
			p = Parameter{Name: e, Type: "string"}
		case map[string]any:
			p.Name, _ = e["name"].(string)
			p.Type, _ = e["type"].(string)
			p.Description, _ = e["description"].(string)
			p.Default = e["default"]
			if cs, ok := e["constraints"].([]any); ok {
				for _, c := range cs {
					if c == "required" {
						p.Required = true
					}
				}
			}
		default:
			return fmt.Errorf("brooklyn.parameters[%d]: want a name or a map", i)
		}
		if p.Name == "" {
			return fmt.Errorf("brooklyn.parameters[%d]: no name", i)
		}
		if p.Type == "" {
			p.Type = "string"
		}
		if _, ok := paramTypes[NormType(p.Type)]; !ok {
			return fmt.Errorf("parameter %s: unknown type %q; known: string, integer, long, double, boolean, port, duration, list, map", p.Name, p.Type)
		}
		n.Parameters = append(n.Parameters, p)
	}
	return nil
}

// NormType drops Java's package and case: java.lang.Integer → integer.
func NormType(t string) string {
	t = strings.ToLower(t[strings.LastIndex(t, ".")+1:])
	switch t {
	case "int":
		return "integer"
	case "float":
		return "double"
	case "bool":
		return "boolean"
	}
	return t
}

// paramTypes checks a value against a parameter type; DSL values are
// checked when they resolve.
var paramTypes = map[string]func(v any) bool{
	"string":  func(v any) bool { _, m := v.(map[string]any); _, l := v.([]any); return !m && !l },
	"integer": func(v any) bool { return isInt(v, math.MinInt32, math.MaxInt32) },
	"long":    func(v any) bool { return isInt(v, math.MinInt64, math.MaxInt64) },
	"double": func(v any) bool {
		switch t := v.(type) {
		case int, float64:
			return true
		case string:
			_, err := strconv.ParseFloat(t, 64)
			return err == nil
		}
		return false
	},
	"boolean": func(v any) bool {
		switch t := v.(type) {
		case bool:
			return true
		case string:
			_, err := strconv.ParseBool(t)
			return err == nil
		}
		return false
	},
	"port": func(v any) bool { return isInt(v, 1, 65535) },
	"duration": func(v any) bool {
		switch t := v.(type) {
		case int:
			return true
		case string:
			_, err := ParseDuration(t)
			return err == nil
		}
		return false
	},
	"list": func(v any) bool { _, ok := v.([]any); return ok },
	"map":  func(v any) bool { _, ok := v.(map[string]any); return ok },
}

var typeWords = map[string]string{
	"integer": "an integer", "long": "an integer", "double": "a number",
	"boolean": "true or false", "port": "a port (1-65535)", "duration": "a duration (such as 30s)",
	"list": "a list", "map": "a map", "string": "a string",
}

func isInt(v any, lo, hi int64) bool {
	var i int64
	switch t := v.(type) {
	case int:
		i = int64(t)
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return false
		}
		i = n
	default:
		return false
	}
	return i >= lo && i <= hi
}

// applyParameters puts each parameter's default into the config when the
// blueprint gives no value, and refuses a value of the wrong type.
func applyParameters(n *Node) error {
	for _, p := range n.Parameters {
		v, given := n.Config[p.Name]
		if !given || v == nil {
			if p.Default == nil {
				if p.Required {
					return fmt.Errorf("parameter %s is required", p.Name)
				}
				continue
			}
			v = p.Default
			n.Config[p.Name] = v
		}
		if _, isDSL := v.(*Call); isDSL {
			continue
		}
		t := NormType(p.Type)
		if !paramTypes[t](v) {
			return fmt.Errorf("parameter %s: %s is not %s", p.Name, renderArg(v), typeWords[t])
		}
	}
	return nil
}

// Forever is the duration "forever" or "never": no timeout.
const Forever time.Duration = -1

// ParseDuration reads Brooklyn durations: "30s", "5m", "1h", Go's forms,
// "forever"/"never" (Forever), or a plain number of milliseconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "forever", "never":
		return Forever, nil
	}
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	return time.ParseDuration(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "secs", "s"))
}
