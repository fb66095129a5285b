// Package console is Clocker's live web console, served by `clocker serve`
// at /ui/ on the API's own address: the fleet's hosts, the containers on
// them, fleet networks, applications, a placement dry run and trends.
//
// It reads only through what the manager already exposes: the front
// door's in-process Docker client (containers, events, logs, inspect),
// the fleet API's host views, the placement decisions kept at create,
// the fleet networks' allocations and the Prometheus registry. The
// browser calls Clocker's own APIs (/v1/fleet, /v1/applications) for
// everything it changes; the console's own endpoints only read, and
// stream changes as server-sent events. See README.md.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/sdn"
)

// Prefix is where the console is mounted.
const Prefix = "/ui"

//go:embed assets
var assets embed.FS

// Options are the console's sources; every field but Docker and Hosts may
// be nil.
type Options struct {
	// Docker is the front door's in-process client.
	Docker *client.Client
	// Hosts lists the fleet's hosts as the fleet API does.
	Hosts func() []hosts.Status
	// Placement returns the decision that placed a container (full ID).
	Placement func(id string) (placement.Record, bool)
	// Networks lists the fleet networks with their host slices.
	Networks func() []sdn.Network
	// Gatherer is the manager's metrics registry, sampled for trends.
	Gatherer prometheus.Gatherer
	// MaxPerHost is the fleet's --max-containers-per-host (0: none): a
	// host's slots when its engine has no containerslots label.
	MaxPerHost int
	Log        *slog.Logger
}

// Console serves the web console.
type Console struct {
	o Options
	// raw asks the front door through Docker's connection, for answers
	// read without the Docker client's types.
	raw    *http.Client
	trends *trends
	// cards are the host cards last sent, shared by the event streams.
	// containers is the container list last made from the front door's.
	containers struct {
		mu   sync.Mutex
		last *containerList
	}
	cards struct {
		mu   sync.Mutex
		json []byte
		made time.Time
		subs map[chan []byte]struct{}
		stop chan struct{} // nil: no stream open, no loop
	}
}

// New returns the console over o.
func New(o Options) *Console {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{o: o, trends: newTrends(o.Gatherer, o.Hosts)}
	if o.Docker != nil {
		dial := o.Docker.Dialer()
		c.raw = &http.Client{Transport: &http.Transport{
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			MaxIdleConnsPerHost: 8,
			DisableCompression:  true,
		}}
	}
	return c
}

// readFrontDoor GETs path (unversioned: the API's current version) from
// the front door and returns its answer; an error answer is passed on
// with its status and message.
func (c *Console) readFrontDoor(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.raw.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var m struct{ Message string }
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&m) != nil || m.Message == "" {
			m.Message = resp.Status
		}
		return nil, errorf(resp.StatusCode, "%s", m.Message)
	}
	return io.ReadAll(resp.Body)
}

// Handler serves the console's pages, assets and read endpoints under
// Prefix.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.StripPrefix(Prefix+"/assets/", http.FileServerFS(static))
	mux.Handle("GET "+Prefix+"/assets/", files)
	index := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	}
	mux.HandleFunc("GET "+Prefix+"/{$}", index)
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
	})
	api := Prefix + "/api"
	mux.HandleFunc("GET "+api+"/hosts", c.adapt(c.listHosts))
	mux.HandleFunc("GET "+api+"/containers", c.adapt(c.listContainers))
	mux.HandleFunc("GET "+api+"/containers/{id}", c.adapt(c.containerPage))
	mux.HandleFunc("GET "+api+"/containers/{id}/logs", c.adapt(c.streamLogs))
	mux.HandleFunc("GET "+api+"/events", c.adapt(c.streamEvents))
	mux.HandleFunc("GET "+api+"/networks", c.adapt(c.listNetworks))
	mux.HandleFunc("GET "+api+"/networks/local", c.adapt(c.listLocalNetworks))
	mux.HandleFunc("POST "+api+"/runline", c.adapt(c.parseRunLine))
	mux.HandleFunc("GET "+api+"/trends", c.adapt(c.listTrends))
	mux.HandleFunc(Prefix+"/", c.adapt(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no %s %s in the console", r.Method, r.URL.Path)
	}))
	return mux
}
