package audit

import (
	"strings"
	"testing"
)

// FuzzRoute: any path gives a route that starts with its method.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/v1.41/containers/web/start", "/images/a/b/c/json", "/", "", "/v1/applications//x", "/images/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		route, _ := Route("POST", p)
		if !strings.HasPrefix(route, "POST /") {
			t.Fatalf("route %q of %q", route, p)
		}
	})
}
