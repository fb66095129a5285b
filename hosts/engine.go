package hosts

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
)

// Endpoint is where an engine's API is reached: the dial target and the base
// URL that requests to it are written against.
type Endpoint struct {
	// URL is the engine address as the user gave it (tcp://h:p, unix:///p).
	URL string
	// Network and Address are what to dial.
	Network, Address string
	// Base is the http URL requests are sent to (the socket path is not part
	// of it for unix engines).
	Base *url.URL
	// TLS, when set, wraps every connection to the engine (tcp engines
	// started with --tlsverify). HTTP is then written over the TLS
	// connection, so Base keeps the http scheme.
	TLS *tls.Config
}

// WithTLS returns the endpoint with its connections wrapped in TLS.
func (e Endpoint) WithTLS(t EngineTLS) (Endpoint, error) {
	if t.IsZero() {
		return e, nil
	}
	if e.Network != "tcp" {
		return e, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine %s: TLS is for tcp:// engines", e.URL))
	}
	host, _, err := net.SplitHostPort(e.Address)
	if err != nil {
		return e, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine %s: %v", e.URL, err))
	}
	cfg, err := t.config(host)
	if err != nil {
		return e, err
	}
	e.TLS = cfg
	return e, nil
}

// ParseEndpoint checks an engine URL: tcp://HOST:PORT or unix:///PATH.
func ParseEndpoint(raw string) (Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Endpoint{}, fmt.Errorf("engine %q: %w", raw, errdefs.ErrInvalid)
	}
	switch u.Scheme {
	case "tcp", "http":
		if u.Host == "" || u.Port() == "" {
			return Endpoint{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine %q: want tcp://HOST:PORT", raw))
		}
		if u.Path != "" && u.Path != "/" {
			return Endpoint{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine %q: a path is not supported", raw))
		}
		return Endpoint{URL: "tcp://" + u.Host, Network: "tcp", Address: u.Host, Base: &url.URL{Scheme: "http", Host: u.Host}}, nil
	case "unix":
		if u.Path == "" {
			return Endpoint{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine %q: want unix:///PATH", raw))
		}
		return Endpoint{URL: "unix://" + u.Path, Network: "unix", Address: u.Path, Base: &url.URL{Scheme: "http", Host: "docker"}}, nil
	default:
		return Endpoint{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine %q: scheme must be tcp:// or unix://", raw))
	}
}

// Dial opens a raw connection to the engine (for hijacked streams).
func (e Endpoint) Dial(ctx context.Context) (net.Conn, error) {
	if e.TLS != nil {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: e.TLS}
		return d.DialContext(ctx, e.Network, e.Address)
	}
	var d net.Dialer
	d.Timeout = 5 * time.Second
	return d.DialContext(ctx, e.Network, e.Address)
}

// Transport returns a pooled HTTP transport to the engine. Pooling dominates
// proxy latency, so idle connections are kept generously.
func (e Endpoint) Transport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return e.Dial(ctx)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// Streams (logs -f, events, wait) may idle for long; no response
		// header timeout here: the engine flushes headers at once.
	}
}

// newClient makes the moby client used for the engine's typed calls
// (events, info, version).
func (e Endpoint) newClient(tr http.RoundTripper) (*client.Client, error) {
	host := e.URL
	if strings.HasPrefix(host, "unix://") {
		host = "unix://" + e.Address
	}
	return client.New(
		client.WithHost(host),
		client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithAPIVersionNegotiation(),
	)
}
