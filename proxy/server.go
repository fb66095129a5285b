// Package proxy is Clocker's Docker Engine API server: routes by resource,
// API-version checks, handlers, the forwarding and hijack paths, and the
// mapping of errors to Docker's responses. It asks the scheduler where a
// container goes and the fleet where one lives; it decides no placement
// itself.
package proxy

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
	"github.com/clocker/clocker/sdn/fleetnet"
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

	metrics *metrics
	execs   *execTable
	lists   listMemo
	placer  *placer
	ingress *ingressTable // nil: published ports are not forwarded
}

// NewServer wires a server; reg receives its metrics (may be nil).
func NewServer(fleet *hosts.Fleet, strategy *scheduler.Strategy, log *slog.Logger, maxBody int64, reg *prometheus.Registry) *Server {
	s := &Server{Fleet: fleet, Strategy: strategy, Log: log, MaxBody: maxBody, execs: newExecTable(), placer: newPlacer()}
	// A nil *Registry must not become a non-nil Registerer.
	var r prometheus.Registerer
	if reg != nil {
		r = reg
		s.Gatherer = reg
	}
	s.metrics = newMetrics(r)
	return s
}

func (s *Server) serverHeader() string { return "Docker/clocker-" + Version + " (linux)" }

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = adapt(s.Log, func(w http.ResponseWriter, r *http.Request) error {
		return errPageNotFound
	})
	r.MethodNotAllowedHandler = r.NotFoundHandler
	if s.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	}
	s.registerFleet(r) // before the /v{version}/ patterns
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
	return r
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
