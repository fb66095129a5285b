package fakeengine

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"slices"
)

// Server serves one Engine on one listener.
type Server struct {
	*Engine
	// URL is where a fleet reaches the engine: tcp://127.0.0.1:PORT or
	// unix:///PATH.
	URL string
	srv *http.Server
	ln  net.Listener
}

// Serve answers e's API on ln until Close. An engine whose Server was
// closed comes back up with what it held, as a rebooted host with its
// disk.
func Serve(e *Engine, ln net.Listener) *Server {
	e.up()
	s := &Server{Engine: e, ln: ln,
		srv: &http.Server{Handler: e, ErrorLog: log.New(io.Discard, "", 0), IdleTimeout: e.opts.IdleTimeout}}
	switch ln.Addr().Network() {
	case "unix":
		s.URL = "unix://" + ln.Addr().String()
	default:
		s.URL = "tcp://" + ln.Addr().String()
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// Listen serves e on a new listener: network "tcp" (address such as
// 127.0.0.1:0) or "unix" (a socket path).
func Listen(e *Engine, network, address string) (*Server, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return Serve(e, ln), nil
}

// Close takes the engine down: streams and waits end, connections drop and
// the address refuses.
func (s *Server) Close() {
	s.Engine.Shutdown()
	_ = s.srv.Close()
}

// StartMany serves n engines, engine i made with opts(i): on loopback TCP
// when dir is empty, else on unix sockets in dir (named after the
// engines). On error the engines already started are closed.
func StartMany(n int, dir string, opts func(i int) Options) ([]*Server, error) {
	out := make([]*Server, 0, n)
	for i := 0; i < n; i++ {
		e := New(opts(i))
		network, address := "tcp", "127.0.0.1:0"
		if dir != "" {
			network, address = "unix", filepath.Join(dir, fmt.Sprintf("%s.sock", e.Name()))
		}
		s, err := Listen(e, network, address)
		if err != nil {
			CloseAll(out)
			return nil, fmt.Errorf("engine %d of %d: %w", i+1, n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// CloseAll closes every server.
func CloseAll(servers []*Server) {
	for _, s := range servers {
		s.Close()
	}
}

// sortSlice sorts s by less.
func sortSlice[T any](s []T, less func(a, b T) bool) {
	slices.SortFunc(s, func(a, b T) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
}
