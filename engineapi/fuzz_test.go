package engineapi

import (
	"net/url"
	"testing"
)

// FuzzParseFilters: any filters parameter parses or is refused, never
// panics.
func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{
		`{"name":{"web":true}}`, `{"status":["running","exited"]}`, `{"label":{"a=b":true,"c":true}}`,
		`{"node":["h1"]}`, `{"before":["web"],"since":["db"]}`, `{"ancestor":["busybox:latest"]}`,
		``, `{}`, `{"name":5}`, `[`, `{"health":["healthy"],"publish":["80/tcp"],"network":["n"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseFilters(s)
	})
}

// FuzzParseContainerListOptions: a whole list query.
func FuzzParseContainerListOptions(f *testing.F) {
	for _, s := range []string{
		"all=1&limit=5&size=1", "filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D", "limit=-1", "all=true&before=x",
		"limit=abc", "filters=%7B", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, _ = ParseContainerListOptions(q)
	})
}
