package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/blueprint"
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

	agentsOnce, appsOnce sync.Once
}

// run runs the loops until ctx (leadership) ends, and waits for them.
func (l *leaderLoops) run(ctx context.Context) {
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
	l.resumeApps()
	// The applications' policies act while this manager leads: resumed
	// the first time, quiet when it loses the lead, acting again (on
	// what happened meanwhile) when it leads again.
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

// resumeApps resumes the stored blueprint applications (their policies
// started) the first time this manager leads.
func (l *leaderLoops) resumeApps() {
	l.appsOnce.Do(func() {
		if err := l.apps.Resume(); err != nil {
			l.log.Warn("blueprints: resuming stored applications", "err", err)
		}
	})
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
