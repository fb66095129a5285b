package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/blueprint"
	"github.com/clocker/clocker/frontdoor/reply"
	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/leader"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/reschedule"
	"github.com/clocker/clocker/sdn/fleetnet"
)

// nameClaimTTL is how long a manager's claim of a container name it
// created stays in etcd: long enough for every other manager's cache to
// learn of the container from its engine's events.
const nameClaimTTL = 15 * time.Second

// group is this manager among the fleet's: the only one on bbolt, one of
// several electing a leader on etcd.
func (f *storeFlags) group(et *store.Etcd, advertise, listen string, reg prometheus.Registerer, log *slog.Logger) *leader.Group {
	if advertise == "" {
		advertise = listen
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	self := leader.Manager{ID: host + "-" + hex.EncodeToString(b), Address: advertise, Started: time.Now().UTC()}
	if et == nil {
		return leader.Single(self, log, reg)
	}
	return leader.Etcd(et, self, leader.DefaultTTL, log, reg)
}

// leaderLoops are the fleet's control loops, which only the leader runs:
// rescheduling, headroom, healing, fleet networks and their agents, and
// the blueprints' policies.
type leaderLoops struct {
	rescheduler *reschedule.Rescheduler
	autoscaler  *provision.Autoscaler
	nets        *fleetnet.Controller
	apps        *blueprint.Manager
	heal        func(context.Context)
	log         *slog.Logger

	agentsOnce sync.Once
}

// run runs the loops until ctx (leadership) ends, and waits for them.
func (l *leaderLoops) run(ctx context.Context) {
	// The applications carry on at once (their tasks run by themselves):
	// resumed when this manager starts to lead, the first time or again
	// after another manager led and changed them.
	l.resumeApps()
	var wg sync.WaitGroup
	goLoop := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	goLoop(l.rescheduler.Run)
	if l.autoscaler != nil {
		goLoop(l.autoscaler.Run)
	}
	goLoop(l.heal)
	if l.nets != nil {
		l.deployAgents(ctx)
		goLoop(l.nets.Run)
	}
	// The applications' policies act while this manager leads, quiet
	// when it loses the lead.
	l.apps.SetActing(true)
	wg.Wait()
	l.apps.SetActing(false)
}

// deployAgents builds and deploys the fleet-network agents once; a later
// term only runs the controller's loop, which keeps them in step.
func (l *leaderLoops) deployAgents(ctx context.Context) {
	if l.nets != nil {
		l.agentsOnce.Do(func() { startAgents(ctx, l.nets, l.log) })
	}
}

// resumeApps brings the applications in step with the store (their
// policies started) as this manager starts to lead.
func (l *leaderLoops) resumeApps() {
	if err := l.apps.Resume(); err != nil {
		l.log.Warn("blueprints: resuming stored applications", "err", err)
	}
}

// fenceChanges answers requests that would change the fleet with 503,
// naming the store, while this manager has lost its etcd session; reads
// go on from the caches.
func fenceChanges(g *leader.Group, next http.Handler) http.Handler {
	if !g.Replicated() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if changes(r) {
			if err := g.Writable(); err != nil {
				code := errdefs.Status(err)
				body := map[string]any{"message": err.Error()}
				if strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasPrefix(r.URL.Path, "/v1/fleet") {
					body["error"] = code // Brooklyn's ApiError
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_ = json.NewEncoder(w).Encode(body)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// leaderRoutes are the routes only the leader serves: the application
// layer (Brooklyn's REST API: applications, entities, policies, the
// catalog, activities) and the console. Their state is the leader's
// entity tree and the policies acting on it, in its memory; a replica's
// would be a stale copy. The fleet API (/v1/fleet) is every manager's.
func leaderRoutes(path string) bool {
	if strings.HasPrefix(path, "/v1/fleet/") || path == "/v1/fleet" {
		return false
	}
	return strings.HasPrefix(path, "/v1/") || path == "/ui" || strings.HasPrefix(path, "/ui/")
}

// toLeader sends the leader's routes on a replica to the leader: a 307
// to the same path at the leader's address, which a client follows with
// its method, body and its own credentials (a TLS client connects to the
// leader with its certificate; no manager speaks for another). 503 while
// no manager leads, or when the leader's address is not one a client can
// be sent to (a unix socket: give the managers --advertise).
func toLeader(g *leader.Group, next http.Handler) http.Handler {
	if !g.Replicated() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !leaderRoutes(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		m, ok := g.Leader()
		if ok && m.Address == "" {
			_, _ = g.Managers(r.Context()) // learns the leader's address
			m, ok = g.Leader()
		}
		if ok && m.ID == g.Self().ID {
			next.ServeHTTP(w, r)
			return
		}
		loc, err := leaderURL(m, ok, r)
		if err != nil {
			reply.Error(w, r, errdefs.Status(err), err.Error())
			return
		}
		http.Redirect(w, r, loc, http.StatusTemporaryRedirect)
	})
}

// leaderURL is r's URL at the leader m (ok: a manager leads).
func leaderURL(m leader.Manager, ok bool, r *http.Request) (string, error) {
	if !ok {
		return "", errdefs.New(errdefs.ErrUnavailable, "no manager leads the fleet yet: the application layer runs on the leader; try again")
	}
	u, err := url.Parse(m.Address)
	if err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "http", "https"}, u.Scheme) {
		return "", errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf(
			"the application layer runs on the leader, %s, whose address %q a client cannot be sent to (start it with --advertise tcp://HOST:PORT)", m.ID, m.Address))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: u.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}).String(), nil
}

// changes reports whether r may change the fleet: every method but GET,
// HEAD and OPTIONS, except the POSTs that only stream or wait.
func changes(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	p := r.URL.Path
	for _, s := range []string{"/attach", "/wait", "/resize", "/auth", "/session", "/grpc"} {
		if strings.HasSuffix(p, s) {
			return false
		}
	}
	return true
}
