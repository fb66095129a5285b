// Package audit writes one JSON line per changing request (every method
// but GET, HEAD and OPTIONS): when, who, what route, which object, and the
// answer's status, refusals included.
package audit

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/frontdoor/identity"
	"github.com/clocker/clocker/internal/statusrec"
)

// Line is one audit record.
type Line struct {
	Time time.Time `json:"time"`
	// Identity is the caller's name ("" anonymous) and Method how it
	// was established.
	Identity string `json:"identity"`
	Method   string `json:"authn,omitempty"`
	Remote   string `json:"remote,omitempty"`
	// Route is the HTTP method and the path with the object replaced by
	// {id} and the API version left out, e.g. "POST /containers/{id}/start".
	Route string `json:"route"`
	// Object is the container, image, network, volume, exec or
	// application named by the path (or ?name= on a create).
	Object string `json:"object,omitempty"`
	Status int    `json:"status"`
}

// Log writes lines to w, one at a time.
type Log struct {
	mu  sync.Mutex
	enc *json.Encoder
	now func() time.Time
}

// New writes to w.
func New(w io.Writer) *Log { return &Log{enc: json.NewEncoder(w), now: time.Now} }

// Write records one line.
func (l *Log) Write(line Line) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(line)
}

// Middleware records every changing request once it is answered (a
// hijacked stream when it is taken over).
func (l *Log) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		line := Line{Time: l.now().UTC(), Remote: r.RemoteAddr}
		line.Route, line.Object = Route(r.Method, r.URL.Path)
		if line.Object == "" {
			line.Object = r.URL.Query().Get("name")
		}
		if id, ok := identity.FromContext(r.Context()); ok {
			line.Identity, line.Method = id.Name, string(id.Method)
		}
		rec := statusrec.New(w)
		defer func() {
			line.Status = rec.Status()
			l.Write(line)
		}()
		next.ServeHTTP(rec, r)
	})
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

// collections name the objects under them; the segment after one is an
// object unless it is one of the collection's own verbs.
var collections = map[string]bool{"containers": true, "images": true, "networks": true, "volumes": true, "exec": true, "plugins": true, "applications": true, "hosts": true, "entities": true, "policies": true, "effectors": true, "catalog": true}

var collectionVerbs = map[string]bool{"create": true, "prune": true, "json": true, "load": true, "search": true, "get": true, "build": true}

// Route returns the route of a path (objects replaced by {id}, the API
// version left out) and the first object it names. Image names hold
// slashes: an image route's object is everything up to its verb.
func Route(method, path string) (route, object string) {
	p := versionPrefix.ReplaceAllString(path, "")
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) >= 2 && segs[0] == "images" && !collectionVerbs[segs[1]] {
		last := len(segs)
		if last > 2 && imageVerbs[segs[last-1]] {
			last--
		}
		object = strings.Join(segs[1:last], "/")
		rest := segs[last:]
		return method + " /images/{id}" + joinRest(rest), object
	}
	for i := 0; i+1 < len(segs); i++ {
		if collections[segs[i]] && !collectionVerbs[segs[i+1]] && segs[i+1] != "" {
			if object == "" {
				object = segs[i+1]
			}
			segs[i+1] = "{id}"
			i++
		}
	}
	return method + " /" + strings.Join(segs, "/"), object
}

var imageVerbs = map[string]bool{"json": true, "push": true, "tag": true, "history": true, "get": true}

func joinRest(rest []string) string {
	if len(rest) == 0 {
		return ""
	}
	return "/" + strings.Join(rest, "/")
}
