package limits

import (
	"encoding/json"
	"path"
	"strings"
	"testing"
)

// FuzzDepth: for valid JSON, Depth is the nesting the decoder sees.
func FuzzDepth(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"]}"}]}`, `"\\\""`, `[[[[]]]]`, `{"a":"\u005b"}`, `1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Depth(b)
		if !json.Valid(b) {
			return
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		depth, deepest := 0, 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
				deepest = max(deepest, depth)
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
		if d != deepest {
			t.Fatalf("Depth(%s) = %d, decoder %d", b, d, deepest)
		}
	})
}

// FuzzCleanArchivePath: a rooted path stays rooted and never climbs.
func FuzzCleanArchivePath(f *testing.F) {
	for _, s := range []string{"/tmp", "/a/../../b", "/tmp/.", "rel/", "/", "//x//y/", "../.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := CleanArchivePath(p)
		if strings.HasPrefix(p, "/") {
			if !strings.HasPrefix(c, "/") || strings.Contains(c, "/../") || strings.HasSuffix(c, "/..") {
				t.Fatalf("%q cleaned to %q", p, c)
			}
			base := strings.TrimSuffix(strings.TrimSuffix(c, "/."), "/")
			if base != "" && path.Clean(base) != base {
				t.Fatalf("%q cleaned to %q, not clean", p, c)
			}
		}
	})
}
