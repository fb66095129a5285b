package limits

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/clocker/clocker/frontdoor/identity"
	"github.com/clocker/clocker/frontdoor/reply"
)

// hijackRoute: attach and exec start take over the connection (with an
// Upgrade header, or answered 200 with a raw stream when the client sends
// none).
var hijackRoute = regexp.MustCompile(`^(/v[0-9.]+)?/(containers/[^/]+/attach|exec/[^/]+/start)$`)

// Streams bounds the hijacked connections one identity holds at once
// (anonymous clients share one bound), so one client cannot hold every
// goroutine and file descriptor of the manager.
type Streams struct {
	// Max per identity; 0: no bound.
	Max int

	mu   sync.Mutex
	open map[string]int
}

// Hijacks reports whether r asks for a connection takeover.
func Hijacks(r *http.Request) bool {
	return r.Method == http.MethodPost && (hijackRoute.MatchString(r.URL.Path) || strings.EqualFold(r.Header.Get("Upgrade"), "tcp"))
}

// Middleware refuses a takeover beyond the bound with 429.
func (s *Streams) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Max <= 0 || !Hijacks(r) {
			next.ServeHTTP(w, r)
			return
		}
		key := ""
		if id, ok := identity.FromContext(r.Context()); ok {
			key = id.Name
		}
		if !s.acquire(key) {
			who := "anonymous clients"
			if key != "" {
				who = fmt.Sprintf("%q", key)
			}
			reply.Error(w, r, http.StatusTooManyRequests, fmt.Sprintf("%s already hold %d attached streams (--max-streams): end one first", who, s.Max))
			return
		}
		// The hijack handler returns when the stream has ended.
		defer s.release(key)
		next.ServeHTTP(w, r)
	})
}

func (s *Streams) acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[string]int{}
	}
	if s.open[key] >= s.Max {
		return false
	}
	s.open[key]++
	return true
}

func (s *Streams) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key]--; s.open[key] <= 0 {
		delete(s.open, key)
	}
}

// Open is how many streams key holds.
func (s *Streams) Open(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open[key]
}
