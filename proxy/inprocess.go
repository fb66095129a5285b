package proxy

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/memconn"
	"github.com/clocker/clocker/internal/tenant"
)

// InProcessHost is the name the in-process client sends to; it reaches
// no network.
const InProcessHost = "clocker.inprocess"

// InProcess is the front door's in-process client: callers inside Clocker
// (the rescheduler; compose and blueprints next) use the Docker API
// through it, so placement, names, networks, ingress, events and metrics
// treat them as any user. Its listener is an in-memory one, served by the
// same http.Server (and so the same handler) as the TCP and unix
// listeners; streams, hijacked attach and exec, and half-close work as
// over TCP.
//
//	Client() ──memconn──► Listener() ──► http.Server ──► Server.Handler()
type InProcess struct {
	ln   *memconn.Listener
	tr   *http.Transport
	api  *client.Client
	http *http.Client

	mu sync.Mutex
	// as are the clients of applications' owners (As), by tenant.
	as map[string]*client.Client
}

// NewInProcess makes the in-memory listener and the moby client that
// dials it (API version negotiated with the front door on first use).
// Nothing answers until the listener is served.
func NewInProcess() (*InProcess, error) {
	ln := memconn.Listen(InProcessHost)
	tr := &http.Transport{
		DialContext:         ln.DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	// WithHost first: it sets up a transport for TCP, which
	// WithHTTPClient then replaces (no proxy from the environment, the
	// in-memory dialer, also used for hijacks).
	api, err := newInProcessClient(tr)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &InProcess{ln: ln, tr: tr, api: api, http: &http.Client{Transport: tr}, as: map[string]*client.Client{}}, nil
}

func newInProcessClient(tr *http.Transport, opts ...client.Opt) (*client.Client, error) {
	return client.New(append([]client.Opt{
		client.WithHost("tcp://" + InProcessHost),
		client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithAPIVersionNegotiation(),
	}, opts...)...)
}

// As is the client that acts for the tenant named owner (an
// application's owner): every request, hijacked ones too, carries
// tenant.Header, which the in-process listener's chain alone turns into
// the tenant's scope (frontdoor.WrapInProcess). "" is Client().
func (p *InProcess) As(owner string) *client.Client {
	if owner == "" {
		return p.api
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.as[owner]; ok {
		return c
	}
	c, err := newInProcessClient(p.tr, client.WithHTTPHeaders(map[string]string{tenant.Header: owner}))
	if err != nil {
		// client.New fails only on bad options; these are fixed.
		panic(err)
	}
	p.as[owner] = c
	return c
}

// Listener is what the front door's http.Server serves, alongside its TCP
// and unix listeners.
func (p *InProcess) Listener() net.Listener { return p.ln }

// Client is the moby client of the front door.
func (p *InProcess) Client() *client.Client { return p.api }

// HTTP is a plain HTTP client of the front door (base URL
// "http://"+InProcessHost), for Clocker's own routes the moby client has
// no method for (/v1/fleet/…).
func (p *InProcess) HTTP() *http.Client { return p.http }

// Close closes the client's idle connections and the listener.
func (p *InProcess) Close() error {
	p.mu.Lock()
	for _, c := range p.as {
		c.Close()
	}
	p.mu.Unlock()
	err := p.api.Close()
	p.ln.Close()
	return err
}
