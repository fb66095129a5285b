package camp

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Prefix marks a value as Brooklyn DSL.
const Prefix = "$brooklyn:"

// Call is one DSL function call, as in
// $brooklyn:component("db").attributeWhenReady("url"): the outer Call is
// attributeWhenReady with Recv the component call. Args hold plain values
// (string, number, bool, nil, maps, lists) and nested *Call.
type Call struct {
	Recv *Call
	Fn   string
	Args []any
}

// String is the call-string form, $brooklyn: included; it parses back to
// the same Call.
func (c *Call) String() string { return Prefix + c.expr() }

func (c *Call) expr() string {
	var b strings.Builder
	if c.Recv != nil {
		b.WriteString(c.Recv.expr())
		b.WriteByte('.')
	}
	b.WriteString(c.Fn)
	b.WriteByte('(')
	for i, a := range c.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(renderArg(a))
	}
	b.WriteByte(')')
	return b.String()
}

func renderArg(a any) string {
	switch v := a.(type) {
	case *Call:
		return v.expr()
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k) + ": " + renderArg(v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = renderArg(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprint(v)
	}
}

// ParseValue turns a decoded YAML value into the plan's value tree: a
// "$brooklyn:…" string or a one-key {"$brooklyn:fn": args} map becomes a
// *Call; maps and lists are walked; other values stay as they are.
func ParseValue(v any) (any, error) {
	switch t := v.(type) {
	case string:
		if !strings.HasPrefix(t, Prefix) {
			return t, nil
		}
		return ParseDSL(t)
	case map[string]any:
		if len(t) == 1 {
			for k, args := range t {
				if strings.HasPrefix(k, Prefix) {
					return parseMapForm(k, args)
				}
			}
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			pv, err := ParseValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = pv
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			pv, err := ParseValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = pv
		}
		return out, nil
	default:
		return v, nil
	}
}

// parseMapForm reads {"$brooklyn:formatString": ["%s", x]}: the key names
// the function (possibly after a receiver chain), the value its
// arguments (a list, or one argument).
func parseMapForm(key string, args any) (*Call, error) {
	c, err := ParseDSL(key + "()")
	if err != nil {
		return nil, err
	}
	var list []any
	switch a := args.(type) {
	case []any:
		list = a
	case nil:
	default:
		list = []any{a}
	}
	if c.Fn == "literal" {
		c.Args = []any{args} // literal keeps its value unparsed
		return c, nil
	}
	c.Args = make([]any, len(list))
	for i, a := range list {
		if c.Args[i], err = ParseValue(a); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ParseDSL parses a call string such as
// $brooklyn:formatString("http://%s:%d", component("db").attributeWhenReady("host"), 80).
func ParseDSL(s string) (*Call, error) {
	p := &dslParser{src: s, s: strings.TrimPrefix(s, Prefix)}
	c, err := p.call()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, p.errorf("unexpected %q", p.s[p.pos:])
	}
	return c, nil
}

type dslParser struct {
	src string
	s   string
	pos int
}

func (p *dslParser) errorf(format string, a ...any) error {
	return fmt.Errorf("DSL %q at offset %d: %s", p.src, p.pos, fmt.Sprintf(format, a...))
}

func (p *dslParser) space() {
	for p.pos < len(p.s) && unicode.IsSpace(rune(p.s[p.pos])) {
		p.pos++
	}
}

func (p *dslParser) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		r := rune(p.s[p.pos])
		if r == '_' || unicode.IsLetter(r) || (p.pos > start && unicode.IsDigit(r)) {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

// call parses fn(args)(.fn(args))*.
func (p *dslParser) call() (*Call, error) {
	var c *Call
	for {
		p.space()
		// A nested argument may carry the prefix again.
		if c == nil && strings.HasPrefix(p.s[p.pos:], Prefix) {
			p.pos += len(Prefix)
		}
		name := p.ident()
		if name == "" {
			return nil, p.errorf("want a function name")
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != '(' {
			return nil, p.errorf("want ( after %s", name)
		}
		p.pos++
		args, err := p.args()
		if err != nil {
			return nil, err
		}
		c = &Call{Recv: c, Fn: name, Args: args}
		p.space()
		if p.pos < len(p.s) && p.s[p.pos] == '.' {
			p.pos++
			continue
		}
		return c, nil
	}
}

func (p *dslParser) args() ([]any, error) {
	args := []any{}
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == ')' {
		p.pos++
		return args, nil
	}
	for {
		a, err := p.arg()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		p.space()
		if p.pos >= len(p.s) {
			return nil, p.errorf("unterminated argument list")
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
		case ')':
			p.pos++
			return args, nil
		default:
			return nil, p.errorf("want , or ) in argument list")
		}
	}
}

func (p *dslParser) arg() (any, error) {
	p.space()
	if p.pos >= len(p.s) {
		return nil, p.errorf("want an argument")
	}
	switch ch := p.s[p.pos]; {
	case ch == '"' || ch == '\'':
		return p.str(ch)
	case ch == '-' || (ch >= '0' && ch <= '9'):
		start := p.pos
		p.pos++
		for p.pos < len(p.s) && strings.IndexByte("0123456789.eE+-", p.s[p.pos]) >= 0 {
			p.pos++
		}
		lit := p.s[start:p.pos]
		if i, err := strconv.Atoi(lit); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return nil, p.errorf("bad number %q", lit)
		}
		return f, nil
	}
	for _, kw := range []struct {
		word string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		rest := p.s[p.pos:]
		if strings.HasPrefix(rest, kw.word) && (len(rest) == len(kw.word) || !isIdent(rest[len(kw.word)])) {
			p.pos += len(kw.word)
			return kw.v, nil
		}
	}
	return p.call()
}

func isIdent(b byte) bool {
	return b == '_' || unicode.IsLetter(rune(b)) || unicode.IsDigit(rune(b))
}

// str reads a quoted string with backslash escapes (\" \' \\ \n \t).
func (p *dslParser) str(q byte) (string, error) {
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		ch := p.s[p.pos]
		switch {
		case ch == q:
			p.pos++
			return b.String(), nil
		case ch == '\\' && p.pos+1 < len(p.s):
			p.pos++
			switch e := p.s[p.pos]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(ch)
		}
		p.pos++
	}
	return "", p.errorf("unterminated string")
}
