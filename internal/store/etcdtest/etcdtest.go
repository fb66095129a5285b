// Package etcdtest runs a one-member etcd for tests, from Debian's
// etcd-server package binary (/usr/bin/etcd), on a temporary directory and
// free loopback ports.
//
// Without the binary a test is skipped, unless the CI environment variable
// is set: CI installs it (.ci/setup), so there its absence is a failure.
package etcdtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is Debian's etcd-server.
const Binary = "/usr/bin/etcd"

// Server is a running (or stopped) etcd.
type Server struct {
	// Endpoint is HOST:PORT of its clients' URL.
	Endpoint string
	// Also are more loopback addresses it listens on, at Endpoint's port
	// (StartAlso), so that one client's traffic can be told apart (and
	// dropped by a firewall rule) by the address it uses.
	Also []string
	dir  string
	peer string
	cmd  *exec.Cmd
	done chan struct{}
}

// Missing says why etcd cannot run here ("" when it can): a reason to
// skip a test, or to fail it in CI (see Require).
func Missing() string {
	if _, err := os.Stat(Binary); err != nil {
		return fmt.Sprintf("%s missing (apt-get install etcd-server): %v", Binary, err)
	}
	return ""
}

// Require skips t when etcd cannot run here, or fails it under CI.
func Require(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("in CI, where .ci/setup installs etcd-server: %s", why)
		}
		t.Skip(why)
	}
}

// Start runs etcd until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	s, err := Run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// StartAlso is Start, listening on the loopback addresses also too.
func StartAlso(t testing.TB, also ...string) *Server {
	t.Helper()
	Require(t)
	s := &Server{dir: t.TempDir(), Also: also}
	var err error
	if s.Endpoint, err = freeAddr(); err != nil {
		t.Fatal(err)
	}
	if s.peer, err = freeAddr(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// EndpointAt is the endpoint at one of Also's addresses.
func (s *Server) EndpointAt(ip string) string {
	_, port, _ := net.SplitHostPort(s.Endpoint)
	return net.JoinHostPort(ip, port)
}

// Run starts etcd on dir (its data and log) and free ports; the caller
// kills it. For a TestMain; tests use Start.
func Run(dir string) (*Server, error) {
	s := &Server{dir: dir}
	var err error
	if s.Endpoint, err = freeAddr(); err != nil {
		return nil, err
	}
	if s.peer, err = freeAddr(); err != nil {
		return nil, err
	}
	return s, s.Start()
}

// Restart is Start for tests: it fails t when etcd does not come up.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
}

// Start starts etcd again on its data and ports after Stop or Kill (or
// for the first time) and waits until it is healthy.
func (s *Server) Start() error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	listen := "http://" + s.Endpoint
	for _, ip := range s.Also {
		listen += ",http://" + s.EndpointAt(ip)
	}
	cmd := exec.Command(Binary,
		"--name", "test",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", listen,
		"--advertise-client-urls", "http://"+s.Endpoint,
		"--listen-peer-urls", "http://"+s.peer,
		"--initial-advertise-peer-urls", "http://"+s.peer,
		"--initial-cluster", "test=http://"+s.peer,
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start etcd: %w", err)
	}
	logf.Close()
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitHealthy(30 * time.Second); err != nil {
		s.Kill()
		return fmt.Errorf("etcd on %s: %v\n%s", s.Endpoint, err, s.Log())
	}
	return nil
}

// waitHealthy polls /health until etcd says it is, it exits, or the
// deadline passes.
func (s *Server) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := c.Get("http://" + s.Endpoint + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"true"`) {
				return nil
			}
			err = fmt.Errorf("health: %s", body)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-s.done:
			return fmt.Errorf("etcd exited")
		case <-tick.C:
		}
	}
}

// Stop ends etcd with SIGTERM and waits for it.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends etcd with SIGKILL and waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	<-s.done
	s.cmd = nil
}

// Log is what etcd wrote.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
	return string(b)
}

// freeAddr is a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
