//go:build e2e

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/clocker/clocker/frontdoor/authz"
	"github.com/clocker/clocker/frontdoor/tlsconf"
	"github.com/clocker/clocker/internal/pki"
)

// secureServer is a clocker serve of its own in front of the suite's
// engines, with --tlsverify on TCP and a plain unix socket beside it
// (root at the socket is an admin, as dockerd's socket).
type secureServer struct {
	addr    string // 127.0.0.1:PORT, TLS
	sock    string
	certs   string // DOCKER_CERT_PATH of the client "client"
	auditTo string
	log     *syncBuffer
	cmd     *exec.Cmd
}

// authzRecorder is a tiny authorization plugin: it denies pause and
// records who asked.
type authzRecorder struct {
	mu    sync.Mutex
	users map[string]string // User → UserAuthNMethod
}

func (a *authzRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/Plugin.Activate":
		json.NewEncoder(w).Encode(map[string]any{"Implements": []string{"authz"}})
	case "/AuthZPlugin.AuthZReq":
		var req authz.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			json.NewEncoder(w).Encode(authz.Response{Err: err.Error()})
			return
		}
		a.mu.Lock()
		a.users[req.User] = req.UserAuthNMethod
		a.mu.Unlock()
		if strings.HasSuffix(strings.SplitN(req.RequestURI, "?", 2)[0], "/pause") {
			json.NewEncoder(w).Encode(authz.Response{Msg: "pausing is not allowed here"})
			return
		}
		json.NewEncoder(w).Encode(authz.Response{Allow: true})
	case "/AuthZPlugin.AuthZRes":
		json.NewEncoder(w).Encode(authz.Response{Allow: true})
	default:
		http.NotFound(w, r)
	}
}

func startSecureServer(t *testing.T, plugin string, extra ...string) *secureServer {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if out, err := exec.Command(clockerBin, "certs", "init", certs, "--ip", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
	if out, err := exec.Command(clockerBin, "certs", "client", "ops", "--dir", certs).CombinedOutput(); err != nil {
		t.Fatalf("certs client: %v\n%s", err, out)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &secureServer{addr: fmt.Sprintf("127.0.0.1:%d", port), sock: filepath.Join(dir, "clocker.sock"), certs: certs,
		auditTo: filepath.Join(dir, "audit.log"), log: &syncBuffer{}}
	args := append([]string{"serve", "--listen", "tcp://" + s.addr, "--listen", "unix://" + s.sock,
		"--data", filepath.Join(dir, "data"), "--log-level", "debug", "--ingress=false",
		"--tlsverify", "--tlscacert", filepath.Join(certs, "ca.pem"),
		"--tlscert", filepath.Join(certs, "server-cert.pem"), "--tlskey", filepath.Join(certs, "server-key.pem"),
		"--users", users, "--admin", "ops", "--allowed-bind-path", "/tmp",
		"--audit-log", s.auditTo,
		"--read-header-timeout", "5s", "--max-header-bytes", "8192"}, fleetEngineArgs()...)
	if plugin != "" {
		args = append(args, "--authorization-plugin", plugin)
	}
	args = append(args, extra...)
	cmd := exec.Command(clockerBin, args...)
	s.cmd = cmd
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-exited
		if t.Failed() {
			t.Logf("secure clocker log:\n%s", tail(s.log.String(), 60))
		}
	})
	unix := s.unixClient()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := unix.Get("http://clocker/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("clocker serve exited:\n%s", tail(s.log.String(), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("clocker serve did not come up:\n%s", tail(s.log.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *secureServer) unixClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s.sock)
	}}}
}

// env is what a docker client over mutual TLS is given, as Docker
// documents it.
func (s *secureServer) env(certPath string) []string {
	return []string{"DOCKER_HOST=tcp://" + s.addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + certPath, "DOCKER_CLI_HINTS=false"}
}

// docker runs the real CLI over mutual TLS with certPath's certificate
// (the later environment entries win over the suite's DOCKER_HOST).
func (s *secureServer) docker(t *testing.T, certPath string, stdin io.Reader, args ...string) result {
	t.Helper()
	return runDocker(t, stdin, s.env(certPath), args...)
}

func (s *secureServer) must(t *testing.T, args ...string) string {
	t.Helper()
	r := s.docker(t, s.certs, nil, args...)
	if r.Code != 0 {
		t.Fatalf("docker --tlsverify %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// tlsClient is a Go client trusting the server's CA, presenting the
// certificate in cert/key (none when empty).
func (s *secureServer) tlsClient(t *testing.T, cert *tls.Certificate) *http.Client {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.certs, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func loadPair(t *testing.T, dir string) *tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// expiredPair is a client certificate the right CA signed, expired an
// hour ago.
func expiredPair(t *testing.T, certs string) *tls.Certificate {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(certs, "ca.pem"), filepath.Join(certs, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key := ca.Key // any key will do; the CA's is at hand
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	c, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// The front door safe to expose, end to end: the real docker CLI, compose
// and docker-py over mutual TLS; refusals of every wrong client; Basic
// users and admins on /v1/; the built-in rules and a plugin obeyed;
// slow and oversized clients cut off while others are served; an audit
// line per change.
func TestE2EFrontDoor(t *testing.T) {
	rec := &authzRecorder{users: map[string]string{}}
	plugin := httptest.NewServer(rec)
	defer plugin.Close()
	s := startSecureServer(t, plugin.URL)

	t.Run("cli over mutual TLS", func(t *testing.T) {
		name := "sftls-" + fmt.Sprint(time.Now().UnixNano()%1e6)
		defer s.docker(t, s.certs, nil, "rm", "-f", name, name+"-logs", name+"-i")
		if out := s.must(t, "run", "--name", name, "-d", "busybox", "sleep", "300"); len(out) < 12 {
			t.Fatalf("run -d: %q", out)
		}
		if out := s.must(t, "exec", name, "echo", "exec over tls"); out != "exec over tls" {
			t.Errorf("exec: %q", out)
		}
		// attach: stdin in, output back, through the hijacked stream.
		r := s.docker(t, s.certs, strings.NewReader("attached over tls\n"), "run", "-i", "--name", name+"-i", "busybox", "cat")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "attached over tls" {
			t.Errorf("run -i (attach): %d %q %s", r.Code, r.Stdout, r.Stderr)
		}
		s.must(t, "run", "-d", "--name", name+"-logs", "busybox", "sh", "-c", "echo one; sleep 2; echo two")
		if out := s.must(t, "logs", "-f", name+"-logs"); out != "one\ntwo" {
			t.Errorf("logs -f: %q", out)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo built-over-tls > /built\n"), 0o644)
		img := "sftls-built:" + fmt.Sprint(time.Now().UnixNano()%1e6)
		defer s.docker(t, s.certs, nil, "rmi", "-f", img)
		if r := runDocker(t, nil, append(s.env(s.certs), "DOCKER_BUILDKIT=0"), "build", "-t", img, dir); r.Code != 0 {
			t.Fatalf("build: %d %s %s", r.Code, r.Stdout, r.Stderr)
		}
		if out := s.must(t, "run", "--rm", img, "cat", "/built"); out != "built-over-tls" {
			t.Errorf("run of the built image: %q", out)
		}
		// The plugin saw the certificate's CN as dockerd reports it.
		rec.mu.Lock()
		method := rec.users["client"]
		rec.mu.Unlock()
		if method != "TLS" {
			t.Errorf("plugin saw user client with %q, want TLS (users %v)", method, rec.users)
		}
	})

	t.Run("compose over TLS", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte("services:\n  web:\n    image: busybox\n    command: sleep 300\n"), 0o644)
		for _, cli := range composeCLIs(t) {
			project := "sftls" + cli.name
			compose := func(args ...string) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				all := append(append(append([]string{}, cli.cmd[1:]...), "-p", project), args...)
				cmd := exec.CommandContext(ctx, cli.cmd[0], all...)
				cmd.Dir = dir
				cmd.Env = append(pythonEnv(), s.env(s.certs)...)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if out, err := compose("up", "-d"); err != nil {
				t.Fatalf("compose %s up over TLS: %v\n%s", cli.name, err, out)
			}
			out := s.must(t, "ps", "-q", "--filter", "label=com.docker.compose.project="+project)
			if len(strings.Fields(out)) != 1 {
				t.Errorf("compose %s: project containers %q", cli.name, out)
			}
			if out, err := compose("down", "-t", "1"); err != nil {
				t.Errorf("compose %s down: %v\n%s", cli.name, err, out)
			}
		}
	})

	t.Run("docker-py over TLS", func(t *testing.T) {
		name := "sfpy-" + fmt.Sprint(time.Now().UnixNano()%1e6)
		s.must(t, "create", "--name", name, "busybox", "true")
		defer s.docker(t, s.certs, nil, "rm", "-f", name)
		script := fmt.Sprintf(`import docker
tls = docker.tls.TLSConfig(client_cert=(%q, %q), ca_cert=%q, verify=True)
c = docker.DockerClient(base_url="https://%s", tls=tls)
print("\n".join(x.name for x in c.containers.list(all=True)))
`, filepath.Join(s.certs, "cert.pem"), filepath.Join(s.certs, "key.pem"), filepath.Join(s.certs, "ca.pem"), s.addr)
		// Debian's python3 with python3-docker (a pyenv python first on
		// PATH may lack the module).
		py := "python3"
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			py = "/usr/bin/python3"
		}
		cmd := exec.Command(py, "-c", script)
		cmd.Env = pythonEnv()
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), name) {
			t.Errorf("docker-py containers.list: %v\n%s", err, out)
		}
	})

	t.Run("wrong clients refused", func(t *testing.T) {
		ping := "https://" + s.addr + "/_ping"
		if _, err := s.tlsClient(t, nil).Get(ping); err == nil {
			t.Error("a client without a certificate was served")
		}
		other := t.TempDir()
		if err := tlsconf.InitDir(other, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, "client"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.tlsClient(t, loadPair(t, other)).Get(ping); err == nil {
			t.Error("a certificate from another CA was served")
		}
		if _, err := s.tlsClient(t, expiredPair(t, s.certs)).Get(ping); err == nil {
			t.Error("an expired certificate was served")
		}
		resp, err := http.Get("http://" + s.addr + "/_ping")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
			t.Errorf("plain HTTP to the TLS port: %d %q", resp.StatusCode, b)
		}
		// The real CLI with another CA's certificate, and without TLS.
		if r := s.docker(t, other, nil, "ps"); r.Code == 0 {
			t.Errorf("docker with another CA's certificate: %s", r.Stdout)
		}
		r := runDocker(t, nil, []string{"DOCKER_HOST=tcp://" + s.addr, "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH="}, "ps")
		if r.Code == 0 {
			t.Errorf("docker without TLS: %s", r.Stdout)
		}
		// The right certificate still works.
		if resp, err := s.tlsClient(t, loadPair(t, s.certs)).Get(ping); err != nil || resp.StatusCode != 200 {
			t.Errorf("the right certificate: %v", err)
		}
	})

	t.Run("Basic users and admins on /v1", func(t *testing.T) {
		call := func(c *http.Client, method, path string, user, pass string) (*http.Response, string) {
			req, _ := http.NewRequest(method, "https://"+s.addr+path, nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, string(b)
		}
		client := s.tlsClient(t, loadPair(t, s.certs))
		if resp, body := call(client, "GET", "/v1/applications", "alice", "s3cret"); resp.StatusCode != 200 {
			t.Errorf("alice: %d %s", resp.StatusCode, body)
		}
		resp, body := call(client, "GET", "/v1/applications", "alice", "wrong")
		if resp.StatusCode != 401 || resp.Header.Get("X_brooklyn_unauthorized_message") == "" || !strings.Contains(body, `"error":401`) {
			t.Errorf("wrong password: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if resp, body := call(client, "GET", "/v1/fleet/hosts", "", ""); resp.StatusCode != 403 {
			t.Errorf("non-admin client on the fleet API: %d %s", resp.StatusCode, body)
		}
		ops := s.tlsClient(t, loadPair(t, filepath.Join(s.certs, "ops")))
		if resp, body := call(ops, "GET", "/v1/fleet/hosts", "", ""); resp.StatusCode != 200 {
			t.Errorf("admin ops on the fleet API: %d %s", resp.StatusCode, body)
		}
		// Root on the unix socket is an admin, as on dockerd's socket.
		if resp, err := s.unixClient().Get("http://clocker/v1/fleet/hosts"); err != nil || resp.StatusCode != 200 {
			t.Errorf("root on the unix socket, fleet API: %v %v", resp, err)
		}
	})

	t.Run("rules and plugin refuse, nothing made", func(t *testing.T) {
		name := "sfbind-" + fmt.Sprint(time.Now().UnixNano()%1e6)
		r := s.docker(t, s.certs, nil, "run", "--name", name, "-v", "/:/host", "busybox", "true")
		if r.Code == 0 || !strings.Contains(r.Stderr, "outside the allowed paths") {
			t.Errorf("bind of /: %d %s", r.Code, r.Stderr)
		}
		if out := s.must(t, "ps", "-aq", "--filter", "name=^"+name+"$"); out != "" {
			t.Errorf("a refused container was made: %q", out)
		}
		// Below an allowed path is fine.
		defer s.docker(t, s.certs, nil, "rm", "-f", name+"-ok", name+"-p")
		s.must(t, "run", "--name", name+"-ok", "-v", "/tmp:/host-tmp", "busybox", "true")
		// The plugin denies pause: 403 with its message, the container runs on.
		s.must(t, "run", "-d", "--name", name+"-p", "busybox", "sleep", "300")
		r = s.docker(t, s.certs, nil, "pause", name+"-p")
		if r.Code == 0 || !strings.Contains(r.Stderr, "authorization denied by plugin") || !strings.Contains(r.Stderr, "pausing is not allowed here") {
			t.Errorf("pause: %d %s", r.Code, r.Stderr)
		}
		if st := s.must(t, "inspect", "-f", "{{.State.Status}}", name+"-p"); st != "running" {
			t.Errorf("after a denied pause the container is %s", st)
		}
		// The audit log holds the refusal with who asked.
		deadline := time.Now().Add(10 * time.Second)
		for {
			raw, _ := os.ReadFile(s.auditTo)
			found := false
			for _, line := range strings.Split(string(raw), "\n") {
				if strings.Contains(line, `"identity":"client"`) && strings.Contains(line, `"route":"POST /containers/create"`) && strings.Contains(line, `"object":"`+name+`"`) && strings.Contains(line, `"status":403`) {
					found = true
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no audit line for the refused create:\n%s", raw)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("slow and oversized clients cut off, others served", func(t *testing.T) {
		// A connection that never starts its handshake.
		idle, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		// One that handshakes, then sends its head a line at a time.
		slow, err := tls.Dial("tcp", s.addr, s.tlsClient(t, loadPair(t, s.certs)).Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		io.WriteString(slow, "GET /_ping HTTP/1.1\r\nHost: x\r\n")
		stopDrip := make(chan struct{})
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stopDrip:
					return
				case <-time.After(300 * time.Millisecond):
				}
				if _, err := fmt.Fprintf(slow, "X-Drip-%d: x\r\n", i); err != nil {
					return
				}
			}
		}()
		defer close(stopDrip)
		start := time.Now()
		// Meanwhile others are served.
		if out := s.must(t, "version", "--format", "{{.Server.Version}}"); out == "" {
			t.Error("no version while slow clients hold connections")
		}
		for name, c := range map[string]net.Conn{"no handshake": idle, "dripping head": slow} {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("%s: still open after %s", name, time.Since(start).Round(time.Millisecond))
			}
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("slow clients cut off after %s, want about the 5s --read-header-timeout", d)
		}
		// An oversized head gets 431.
		big, err := tls.Dial("tcp", s.addr, s.tlsClient(t, loadPair(t, s.certs)).Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer big.Close()
		fmt.Fprintf(big, "GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
		resp, err := http.ReadResponse(bufio.NewReader(big), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("oversized head: %v %v", resp, err)
		}
		if out := s.must(t, "version", "--format", "{{.Server.Version}}"); out == "" {
			t.Error("no version after the oversized head")
		}
	})

	// Last: it replaces the server's certificates.
	t.Run("SIGHUP reloads certificates, connections stay", func(t *testing.T) {
		old := s.tlsClient(t, loadPair(t, s.certs))
		ping := func(c *http.Client) error {
			resp, err := c.Get("https://" + s.addr + "/_ping")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
		if err := ping(old); err != nil { // a kept-alive connection
			t.Fatal(err)
		}
		next := filepath.Join(t.TempDir(), "next")
		if err := tlsconf.InitDir(next, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, "client"); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"ca.pem", "server-cert.pem", "server-key.pem"} {
			raw, err := os.ReadFile(filepath.Join(next, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := pki.WriteFile(filepath.Join(s.certs, f), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// The new CA's client gets in once the reload is done.
		fresh := s.tlsClient(t, loadPair(t, next)) // trusts the new ca.pem, now in s.certs
		deadline := time.Now().Add(30 * time.Second)
		for ping(fresh) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("the new CA's client is still refused after SIGHUP:\n%s", tail(s.log.String(), 10))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := ping(old); err != nil {
			t.Errorf("the connection made before SIGHUP: %v", err)
		}
		if !strings.Contains(s.log.String(), "TLS certificates reloaded") {
			t.Error("no reload in the log")
		}
	})
}

// pythonEnv is this process's environment without REQUESTS_CA_BUNDLE and
// CURL_CA_BUNDLE: requests lets them override the CA a client gives
// (docker-py's TLSConfig ca_cert, compose v1's DOCKER_CERT_PATH), which
// machines behind an intercepting proxy set.
func pythonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REQUESTS_CA_BUNDLE=") && !strings.HasPrefix(kv, "CURL_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	return env
}

// A non-loopback plain listen is refused before anything starts.
func TestE2EFrontDoorPlainExposedRefused(t *testing.T) {
	out, err := exec.Command(clockerBin, "serve", "--listen", "tcp://0.0.0.0:2399", "--data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--insecure") || !strings.Contains(string(out), "--tlsverify") {
		t.Errorf("plain listen on 0.0.0.0: %v\n%s", err, out)
	}
}
