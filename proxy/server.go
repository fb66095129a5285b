// Package proxy is Clocker's Docker Engine API server: routes by resource,
// API-version checks, handlers, the forwarding and hijack paths, and the
// mapping of errors to Docker's responses. It asks placement where a
// container, volume, network or build goes and the fleet where one lives;
// it decides no placement itself.
package proxy

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/leader"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
	"github.com/clocker/clocker/sdn/fleetnet"
	"github.com/clocker/clocker/sdn/ingress"
)

// HostLabel is put on every container Clocker creates: the host it runs on.
const HostLabel = labels.Host

// Version is Clocker's own version, shown in /version and the Server header.
var Version = "0.1.0-dev"

// Server answers the Docker Engine API for the fleet.
type Server struct {
	Fleet    *hosts.Fleet
	Strategy *scheduler.Strategy
	Log      *slog.Logger
	// MaxBody bounds JSON request bodies (streams are not bounded).
	MaxBody int64
	// Gatherer serves /metrics (nil: no metrics route).
	Gatherer prometheus.Gatherer
	// Nets is the fleet networks' controller (nil: every network is per
	// host). It is complete when made; its loops are started by serve.
	Nets *fleetnet.Controller
	// Machines provisions and destroys hosts for the fleet API (nil: hosts
	// are only added by address).
	Machines *provision.Manager
	// Ingress holds published ports fleet-wide and forwards them from
	// Clocker's own address (nil: each host publishes its own). Set it
	// before Handler; its loop (Run) is the caller's.
	Ingress *ingress.Table
	// Managers is this manager among the fleet's (nil: the only one):
	// GET /v1/fleet/managers and docker info's Role and Primary.
	Managers *leader.Group

	metrics *metrics
	execs   *execTable
	lists   listMemo
	placer  *placement.Placer
	creates *admission.Chain
	// registry receives the metrics of what the handler builds.
	registry prometheus.Registerer

	// handlerOnce builds the one handler every listener (and the
	// in-process client) is served by; extensions mount before it.
	handlerOnce sync.Once
	handler     http.Handler
	extensions  []extension
}

// extension is a set of routes served beside Docker's API.
type extension struct {
	prefix  string
	handler http.Handler
}

// Mount serves h for every path under prefix (Brooklyn's
// "/v1/applications", the console's "/ui"), matched before every Docker
// route and the catch-alls, so that an extension's paths never reach
// them. Call it while wiring, before Handler.
func (s *Server) Mount(prefix string, h http.Handler) {
	if s.handler != nil {
		panic("proxy: Mount " + prefix + " after Handler")
	}
	s.extensions = append(s.extensions, extension{prefix: strings.TrimSuffix(prefix, "/"), handler: h})
}

// NewServer wires a server; reg receives its metrics (may be nil).
func NewServer(fleet *hosts.Fleet, strategy *scheduler.Strategy, log *slog.Logger, maxBody int64, reg *prometheus.Registry) *Server {
	s := &Server{Fleet: fleet, Strategy: strategy, Log: log, MaxBody: maxBody, execs: newExecTable()}
	// A nil *Registry must not become a non-nil Registerer.
	var r prometheus.Registerer
	if reg != nil {
		r = reg
		s.Gatherer = reg
	}
	s.metrics = newMetrics(r)
	s.registry = r
	s.placer = placement.New(fleet, strategy, r)
	return s
}

func (s *Server) serverHeader() string { return "Docker/clocker-" + Version + " (linux)" }

// Handler returns the HTTP handler of the whole API: the same one on every
// call, for every listener and the in-process client.
func (s *Server) Handler() http.Handler {
	s.handlerOnce.Do(func() { s.handler = s.newHandler() })
	return s.handler
}

func (s *Server) newHandler() http.Handler {
	// The create pipeline's steps are the wired subsystems' (ingress,
	// fleet networks): complete once wiring is.
	chain, err := admission.NewChain(s.registry, s.createSteps()...)
	if err != nil {
		panic(err) // the steps are fixed: a programming error
	}
	s.creates = chain
	r := mux.NewRouter()
	r.NotFoundHandler = adapt(s.Log, func(w http.ResponseWriter, r *http.Request) error {
		return errPageNotFound
	})
	r.MethodNotAllowedHandler = r.NotFoundHandler
	if s.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	}
	// First the extensions and Clocker's own API, whose /v1/ paths would
	// otherwise match the /v{version}/ patterns.
	for _, e := range s.extensions {
		r.PathPrefix(e.prefix).Handler(s.metrics.instrument(e.prefix+"/*", e.handler))
	}
	s.registerFleet(r)
	s.registerSystem(r)
	s.registerContainers(r)
	s.registerExec(r)
	s.registerImages(r)
	s.registerVolumes(r)
	s.registerNetworks(r)
	s.registerEvents(r)
	// Last: whatever the routes above do not match under these prefixes
	// gets a deliberate error.
	s.registerUnsupported(r)
	return s.tenantObjects(r)
}

// route is one API route, registered with and without the version prefix.
type route struct {
	method, path string
	handler      handlerFunc
}

func (s *Server) register(r *mux.Router, routes ...route) {
	for _, rt := range routes {
		h := s.metrics.instrument(rt.path, s.withAPIVersion(adapt(s.Log, rt.handler)))
		r.Handle("/v{version:[0-9]+(?:\\.[0-9]+)*}"+rt.path, h).Methods(rt.method)
		r.Handle(rt.path, h).Methods(rt.method)
	}
}
