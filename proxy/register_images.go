package proxy

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fanout"
)

// registerImages adds the images routes (Front door II). Image names may
// hold slashes and colons (registry.example:5000/team/app:1), hence the
// {name:.*} patterns; the fixed routes come first so that /images/json is
// never read as an image called "json".
func (s *Server) registerImages(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/images/json", s.listImages},
		route{http.MethodGet, "/images/search", s.searchImages},
		route{http.MethodGet, "/images/get", s.saveImages},
		route{http.MethodPost, "/images/create", s.imagesChanged(s.createImage)},
		route{http.MethodPost, "/images/load", s.imagesChanged(s.loadImages)},
		route{http.MethodPost, "/images/prune", s.imagesChanged(s.pruneImages)},
		route{http.MethodGet, "/images/{name:.*}/json", s.inspectImage},
		route{http.MethodGet, "/images/{name:.*}/history", s.imageHistory},
		route{http.MethodGet, "/images/{name:.*}/get", s.saveImages},
		route{http.MethodPost, "/images/{name:.*}/tag", s.imagesChanged(s.tagImage)},
		route{http.MethodPost, "/images/{name:.*}/push", s.pushImage},
		route{http.MethodDelete, "/images/{name:.*}", s.imagesChanged(s.removeImage)},
		route{http.MethodPost, "/build", s.imagesChanged(s.build)},
		route{http.MethodPost, "/build/prune", s.pruneBuildCache},
	)
}

// imagesChanged re-reads the image lists of the hosts the handler touched
// (see touchImages) once it is done, so that a create right after a pull,
// load, build, commit, tag or removal is placed on what those hosts hold
// now, not on what their event streams have delivered so far. The other
// hosts changed nothing: their lists are not read. A tag the handler set
// on the touched hosts is then removed where other hosts hold it for
// another image (Fleet.UntagStale), as a tag moves on one engine.
func (s *Server) imagesChanged(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		touched := &touchedHosts{}
		r = r.WithContext(context.WithValue(r.Context(), touchedKey{}, touched))
		err := next(settledWriter{w}, r)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		watches := touched.list()
		// The event stream catches up if a refresh fails.
		fanout.Each(watches, func(tw hosts.TagWatch) (struct{}, error) {
			if tw.Host.Healthy() {
				_ = tw.Host.RefreshImages(ctx)
			}
			return struct{}{}, nil
		})
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(r.Context()), untagTimeout)
		defer ucancel()
		if uerr := s.Fleet.UntagStale(uctx, watches); uerr != nil {
			s.Log.Warn("a tag set here still names another image elsewhere", "err", uerr)
		}
		return err
	}
}

// untagTimeout bounds the removal of stale copies of the tags an image
// operation set.
const untagTimeout = 30 * time.Second

// settledWriter holds back the flushes of an answer of known length (a
// forwarded commit's): it then goes out when the handler returns, after
// the refresh and the untags, so that the client's next command sees
// them. A stream (build, pull, load progress) flows as it comes and ends
// then too.
type settledWriter struct{ http.ResponseWriter }

func (w settledWriter) Flush() {
	if w.Header().Get("Content-Length") == "" {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (full duplex).
func (w settledWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type touchedKey struct{}

// touchedHosts are the hosts an image operation sent a changing request
// to, each with its tags as they were before.
type touchedHosts struct {
	mu      sync.Mutex
	watches []hosts.TagWatch
}

func (t *touchedHosts) list() []hosts.TagWatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.watches)
}

// touchImages notes that the request may change h's images (marked before
// the call: a failed or cut answer may still have changed them), with what
// h's tags name before it. Outside imagesChanged it does nothing.
func touchImages(ctx context.Context, h *hosts.Host) {
	t, ok := ctx.Value(touchedKey{}).(*touchedHosts)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.ContainsFunc(t.watches, func(w hosts.TagWatch) bool { return w.Host == h }) {
		t.watches = append(t.watches, h.WatchTags())
	}
}
