package limits

import (
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/clocker/clocker/frontdoor/reply"
)

var archiveRoute = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[^/]+/archive$`)

// Archive cleans the path of archive requests (docker cp) before they are
// forwarded: `..` and repeated slashes are resolved, and a trailing `/`
// or `/.` (copy a directory's contents), which Docker reads, is kept. A
// path with a NUL byte, or none on a PUT, is refused.
func Archive(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !archiveRoute.MatchString(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		p := q.Get("path")
		if strings.ContainsRune(p, 0) {
			reply.Error(w, r, http.StatusBadRequest, "archive path contains a NUL byte")
			return
		}
		if p == "" {
			if r.Method == http.MethodPut {
				reply.Error(w, r, http.StatusBadRequest, "archive path is empty: give the directory to extract into")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if c := CleanArchivePath(p); c != p {
			q.Set("path", c)
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}

// CleanArchivePath resolves p as Docker resolves it inside a container
// (relative paths are relative to the working directory and stay so),
// keeping a trailing "/" or "/.".
func CleanArchivePath(p string) string {
	suffix := ""
	switch {
	case strings.HasSuffix(p, "/.") || p == ".":
		suffix = "/."
	case strings.HasSuffix(p, "/"):
		suffix = "/"
	}
	c := path.Clean(p)
	if strings.HasPrefix(p, "/") {
		// A rooted path cannot climb above the root.
		c = path.Clean("/" + c)
	}
	switch {
	case suffix == "":
		return c
	case c == "/":
		return "/" + strings.TrimPrefix(suffix, "/")
	default:
		return c + suffix
	}
}
