package blueprint

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// eval resolves a config or sensor value of e: DSL calls are evaluated
// (attributeWhenReady waits), maps and lists walked.
func (m *Manager) eval(ctx context.Context, e *Entity, v any) (any, error) {
	switch t := v.(type) {
	case *camp.Call:
		return m.call(ctx, e, t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			r, err := m.eval(ctx, e, x)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			r, err := m.eval(ctx, e, x)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// ref resolves a reference call (nil: self) to an entity.
func (m *Manager) ref(e *Entity, c *camp.Call) (*Entity, error) {
	if c == nil {
		return e, nil
	}
	n, err := e.App.plan.Resolve(e.Node, c)
	if err != nil {
		return nil, err
	}
	if t := e.App.byNodeEntity(n); t != nil {
		return t, nil
	}
	return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("%s: %s names %s, which was expunged", e.Node.Label(), c, n.Label()))
}

func (m *Manager) call(ctx context.Context, e *Entity, c *camp.Call) (any, error) {
	switch c.Fn {
	case "self", "parent", "root", "scopeRoot", "entity", "component", "sibling", "child", "descendant", "ancestor":
		t, err := m.ref(e, c)
		if err != nil {
			return nil, err
		}
		return t.ID, nil // an entity where a value is wanted: its id
	case "attributeWhenReady", "sensor", "config", "entityId":
		t, err := m.ref(e, c.Recv)
		if err != nil {
			return nil, err
		}
		switch c.Fn {
		case "entityId":
			return t.ID, nil
		case "sensor":
			v, _ := m.Sensor(t, fmt.Sprint(c.Args[0]))
			return v, nil
		case "config":
			return m.Config(ctx, t, fmt.Sprint(c.Args[0]))
		}
		return m.waitSensor(ctx, e, t, fmt.Sprint(c.Args[0]))
	case "literal":
		return c.Args[0], nil
	case "object":
		return objectValue(c)
	case "external":
		return m.externalValue(c)
	}
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := m.eval(ctx, e, a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	switch c.Fn {
	case "formatString":
		return javaFormat(fmt.Sprint(args[0]), args[1:])
	case "regexReplacement":
		re, err := regexp.Compile(str(args[1]))
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("regexReplacement pattern %q: %v", str(args[1]), err))
		}
		return re.ReplaceAllString(str(args[0]), str(args[2])), nil
	case "urlEncode":
		return url.QueryEscape(str(args[0])), nil
	}
	return nil, fmt.Errorf("$brooklyn:%s is not supported", c.Fn)
}

// str renders a value as Brooklyn would in a string: numbers without a
// trailing .0, nil as empty.
func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// javaFormat implements the part of java.util.Formatter blueprints use:
// %s, %d, %f, %%, %n, with an optional argument index (%1$s).
func javaFormat(pattern string, args []any) (string, error) {
	var b strings.Builder
	next := 0
	for i := 0; i < len(pattern); i++ {
		ch := pattern[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		j := i + 1
		for j < len(pattern) && strings.IndexByte("0123456789$.-", pattern[j]) >= 0 {
			j++
		}
		if j >= len(pattern) {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("formatString %q: a %% at the end", pattern))
		}
		spec, conv := pattern[i+1:j], pattern[j]
		i = j
		switch conv {
		case '%':
			b.WriteByte('%')
			continue
		case 'n':
			b.WriteByte('\n')
			continue
		}
		idx := next
		if k, _, ok := strings.Cut(spec, "$"); ok {
			n, err := strconv.Atoi(k)
			if err != nil || n < 1 {
				return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("formatString %q: bad argument index %q", pattern, k))
			}
			idx = n - 1
		} else {
			next++
		}
		if idx >= len(args) {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("formatString %q: %d arguments given, more wanted", pattern, len(args)))
		}
		switch conv {
		case 's', 'S':
			b.WriteString(str(args[idx]))
		case 'd':
			n, err := strconv.ParseFloat(str(args[idx]), 64)
			if err != nil {
				return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("formatString %q: %%d of %q", pattern, str(args[idx])))
			}
			b.WriteString(strconv.FormatInt(int64(n), 10))
		case 'f':
			n, err := strconv.ParseFloat(str(args[idx]), 64)
			if err != nil {
				return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("formatString %q: %%f of %q", pattern, str(args[idx])))
			}
			b.WriteString(strconv.FormatFloat(n, 'f', 6, 64))
		default:
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("formatString %q: %%%c is not supported (use %%s, %%d, %%f)", pattern, conv))
		}
	}
	return b.String(), nil
}

// Config reads config key k of e: its own, else inherited from its
// ancestors; DSL values are evaluated in the entity that holds them.
func (m *Manager) Config(ctx context.Context, e *Entity, k string) (any, error) {
	for a := e; a != nil; a = a.Parent {
		if v, ok := a.Node.Config[k]; ok {
			return m.eval(ctx, a, v)
		}
	}
	return nil, nil
}

// truthy is attributeWhenReady's "ready": set, non-empty, not false.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return t != ""
	}
	return true
}

// waitTimeout is how long e's waits may take: start.timeout or
// startTimeout (Clocker 1.x), else the manager's.
func (m *Manager) waitTimeout(e *Entity) time.Duration {
	for _, k := range []string{"start.timeout", "startTimeout"} {
		if v, ok := e.Node.Config[k]; ok {
			if d, err := camp.ParseDuration(str(v)); err == nil && d != 0 {
				return d
			}
		}
	}
	return m.wait
}

// waitSensor waits until t's sensor is ready, failing when t is on fire
// or when waiter's wait timeout passes.
func (m *Manager) waitSensor(ctx context.Context, waiter, t *Entity, sensor string) (any, error) {
	var timeout <-chan time.Time
	if d := m.waitTimeout(waiter); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	for {
		m.mu.Lock()
		v := t.sensors[sensor]
		state := t.sensors[SensorState]
		ch := m.changed
		m.mu.Unlock()
		if truthy(v) {
			return v, nil
		}
		if state == StateOnFire {
			return nil, fmt.Errorf("%s waits for %s of %s, which is on fire: %w", waiter.Node.Label(), sensor, t.Node.Label(), errOnFire)
		}
		select {
		case <-ch:
		case <-timeout:
			return nil, fmt.Errorf("%s waited %s for %s of %s: timed out", waiter.Node.Label(), m.waitTimeout(waiter), sensor, t.Node.Label())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
