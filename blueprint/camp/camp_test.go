package camp

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files' expected plans")

// separator splits a golden file: the blueprint above, the expected plan
// (or "error: …" and the text the error must contain) below.
const separator = "\n---- plan\n"

func counter() func() string {
	i := 0
	return func() string { i++; return fmt.Sprintf("e%d", i) }
}

// TestGolden parses every testdata/*.txt blueprint and compares the plan.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), separator)
			if !ok {
				t.Fatalf("no %q line", strings.TrimSpace(separator))
			}
			var got string
			p, err := Parse([]byte(in), counter())
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				got = "error: " + err.Error() + "\n"
			} else {
				got = p.Render()
			}
			if *update {
				if err := os.WriteFile(f, []byte(in+separator+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("plan of %s:\n%s\nwant:\n%s", f, got, want)
			}
		})
	}
}

// TestDSLRoundTrip: the call-string form renders back to itself, and the
// map form gives the same call as the string form.
func TestDSLRoundTrip(t *testing.T) {
	for _, s := range []string{
		`$brooklyn:formatString("jdbc:mysql://%s:%d/db", component("db").attributeWhenReady("host.subnet.address"), 3306)`,
		`$brooklyn:regexReplacement("a.b", "\\.", "-")`,
		`$brooklyn:component("child", "x").config("k")`,
		`$brooklyn:attributeWhenReady("main.uri")`,
		`$brooklyn:urlEncode(entityId())`,
		`$brooklyn:literal("$brooklyn:self()")`,
		`$brooklyn:parent().sensor("s")`,
	} {
		c, err := ParseDSL(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if c.String() != s {
			t.Errorf("round trip of %s gave %s", s, c)
		}
	}
	m, err := ParseValue(map[string]any{"$brooklyn:formatString": []any{"%s:%s", `$brooklyn:component("db").attributeWhenReady("h")`, 5}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.(*Call).String(), `$brooklyn:formatString("%s:%s", component("db").attributeWhenReady("h"), 5)`; got != want {
		t.Errorf("map form gave %s, want %s", got, want)
	}
	for _, bad := range []string{`$brooklyn:component("db"`, `$brooklyn:x)`, `$brooklyn:component("db").`, `$brooklyn:f("unterminated)`} {
		if _, err := ParseDSL(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]string{"30s": "30s", "1500": "1.5s", "never": "-1ns", "5m": "5m0s"} {
		d, err := ParseDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	if _, err := ParseDuration("soon"); err == nil {
		t.Error("soon parsed")
	}
}
