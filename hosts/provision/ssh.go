package provision

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/pki"
)

func init() { mustRegister("ssh", newSSH) }

const (
	sshDefaultUser = "root"
	sshDefaultDir  = "/var/lib/clocker-engine"
	sshDefaultPort = 2376
	// sshDefaultInstall installs Debian's engine (as .ci/setup does). The
	// lock timeout covers an unattended upgrade holding dpkg's lock. On
	// systemd machines the package starts an engine of its own, which would
	// share docker0 with Clocker's in the same network namespace: it is
	// stopped and disabled (Docker was installed for Clocker's engine only).
	sshDefaultInstall = "export DEBIAN_FRONTEND=noninteractive; " +
		"apt-get -o DPkg::Lock::Timeout=300 -y -q update && " +
		"apt-get -o DPkg::Lock::Timeout=300 -y -q install --no-install-recommends docker.io && " +
		"{ ! command -v systemctl >/dev/null 2>&1 || systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true; }"

	sshDialTimeout      = 10 * time.Second
	sshHandshakeTimeout = 20 * time.Second
	// sshEngineWait bounds the wait for a started engine to answer: a
	// first start on a busy machine takes tens of seconds.
	sshEngineWait = 90 * time.Second
)

// SSH is the `ssh` provisioner: it turns a reachable Linux machine into a
// Docker host of the fleet.
//
//	Create(req{Name, Target: [user@]address[:sshport]})
//	  ─► SSH (key auth; the host key is recorded on first use, checked after)
//	  ─► dockerd missing? run the install command (Debian's docker.io)
//	  ─► fleet CA + client certificate (once, DataDir/pki/), a server
//	     certificate for the address and name (per machine)
//	  ─► upload CA, server certificate and key (0600) to the remote dir,
//	     write DIR/engine.sh (the engine's command line)
//	  ─► start it detached from the session (setsid, log DIR/dockerd.log)
//	  ─► wait until it answers _ping over TLS (or report the log's tail)
//	  ─► Record{URL: tcp://ADDR:PORT, TLS: the client files}
//
// The engine is a dockerd of its own, so that it coexists with an engine the
// machine may already run: its own data root, exec root, pid file, unix
// socket, containerd namespaces, cgroup parent and config file (an empty
// JSON object: the machine's /etc/docker/daemon.json is not read), and the
// engine label io.clocker.provisioner=ssh beside the request's labels. It
// listens on tcp://0.0.0.0:PORT with --tlsverify: only holders of a client
// certificate of the fleet CA reach it. Its storage driver is the one the
// machine's own engine uses (daemon.json or `docker info`), else dockerd's
// choice. It shares the machine's network namespace and so its default
// bridge docker0 and the DOCKER iptables chains: beside an engine running in
// that same namespace, their containers' addresses would collide. The
// default install command therefore disables the engine the docker.io
// package starts; an engine the machine already ran in its namespace is
// left alone and is the operator's to stop (in the test, the "remote" is
// a network namespace of its own and shares only the filesystem).
//
// Adopt starts the engine again (DIR/engine.sh, the same flags) when no
// dockerd of that pid file runs; it never starts a second one. Destroy stops
// it (SIGTERM, then SIGKILL after 30 s) and leaves Docker installed and the
// remote dir (data, certificates, log) in place; it is idempotent.
//
// Options (Config.Options):
//
//	user         login user when the target names none (default root; others
//	             need password-less sudo)
//	identity     private key file (default: DataDir/ssh/id_ed25519, made on
//	             first start; its public key is logged and returned by
//	             PublicKey for the operator to authorise)
//	known-hosts  known_hosts file (default DataDir/ssh/known_hosts)
//	dir          remote directory of the engine (default /var/lib/clocker-engine)
//	port         the engine's TLS port (default 2376)
//	install      shell command run when dockerd is missing (default: apt-get
//	             install docker.io, then disable the docker.service it
//	             starts); empty: never install, fail instead
//	pool         machines the headroom policy may take, comma-separated
//	             [user@]address[:port]: a request without a target gets the
//	             first one no machine of this driver uses
//
// Errors name the target and carry errdefs kinds: ErrInvalid for a bad
// target, option or refused key, ErrUnavailable for a machine that does not
// answer, an install that failed or an engine that did not start, and
// ErrConflict for a host key that differs from the one recorded or a remote
// dir whose engine already runs (another host's: never taken over).
type SSH struct {
	user       string
	dir        string
	port       int
	install    string
	knownHosts string
	pkiDir     string
	signer     ssh.Signer
	pubKey     string // authorized_keys line of signer
	pubKeyFile string // where that line is written, for error messages
	log        *slog.Logger
	engineWait time.Duration
	// dockerd is the program whose absence triggers the install command
	// (tests change it to exercise the install path).
	dockerd string

	// khMu orders reads and appends of the known_hosts file; pkiMu the
	// making of the CA and client certificate.
	khMu  sync.Mutex
	pkiMu sync.Mutex

	// pool lists the targets of the pool option; used holds the targets
	// of this driver's machines (made, adopted or being made).
	pool   []string
	usedMu sync.Mutex
	used   map[string]string // target → host name
}

// sshState is Machine.State of an ssh machine.
type sshState struct {
	// Target is user@address:port as connected.
	Target string
	// HostKey is the SHA256 fingerprint of the machine's SSH host key,
	// recorded at Create; a later connection presenting another is refused.
	HostKey string
	// Dir is the engine's remote directory; ExecRoot its exec root.
	Dir, ExecRoot string
	// Port is the engine's TLS port.
	Port int
	// ServerCert and ServerKey are the local copies of what was uploaded.
	ServerCert, ServerKey string
	Labels                map[string]string `json:",omitempty"`
}

func newSSH(cfg Config) (Provisioner, error) {
	known := []string{"user", "identity", "known-hosts", "dir", "port", "install", "pool"}
	if err := checkOptions("ssh", cfg.Options, known...); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "provisioner ssh: no data directory")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	opt := func(k, def string) string {
		if v, ok := cfg.Options[k]; ok {
			return v
		}
		return def
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &SSH{
		user:       opt("user", sshDefaultUser),
		dir:        opt("dir", sshDefaultDir),
		install:    opt("install", sshDefaultInstall),
		knownHosts: opt("known-hosts", filepath.Join(dataDir, "ssh", "known_hosts")),
		pkiDir:     filepath.Join(dataDir, "pki"),
		log:        log,
		engineWait: sshEngineWait,
		dockerd:    "dockerd",
		used:       map[string]string{},
	}
	for _, raw := range strings.Split(opt("pool", ""), ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		t, err := parseTarget(raw, s.user)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: option pool: %v", err))
		}
		s.pool = append(s.pool, t.String())
	}
	if !sshUserRE.MatchString(s.user) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: option user=%q is not a user name", s.user))
	}
	if !filepath.IsAbs(s.dir) || filepath.Clean(s.dir) != s.dir || s.dir == "/" || strings.ContainsAny(s.dir, " \t\n'\"\\$`") {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: option dir=%q must be a clean absolute path other than / without spaces or quotes", s.dir))
	}
	s.port = sshDefaultPort
	if v, ok := cfg.Options["port"]; ok {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: option port=%q is not a TCP port", v))
		}
		s.port = p
	}
	if s.knownHosts, err = filepath.Abs(s.knownHosts); err != nil {
		return nil, err
	}
	if id, ok := cfg.Options["identity"]; ok {
		if err := s.loadIdentity(id); err != nil {
			return nil, err
		}
	} else if err := s.defaultIdentity(filepath.Join(dataDir, "ssh", "id_ed25519")); err != nil {
		return nil, err
	}
	s.log.Info("ssh provisioner: target machines must authorise this public key (in ~USER/.ssh/authorized_keys)",
		"key", s.pubKey, "file", s.pubKeyFile)
	return s, nil
}

var (
	sshUserRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9._-]*$`)
	sshHostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// Name is "ssh".
func (s *SSH) Name() string { return "ssh" }

// PublicKey is the authorized_keys line of the driver's identity: what a
// target machine must accept for root (or the configured user).
func (s *SSH) PublicKey() string { return s.pubKey }

func (s *SSH) loadIdentity(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: identity: %v", err))
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: identity %s is protected by a passphrase; give a key without one", file))
		}
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: identity %s: %v", file, err))
	}
	s.signer = signer
	s.pubKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	s.pubKeyFile = file + ".pub"
	return nil
}

// defaultIdentity loads the driver's own key, making it on first use.
func (s *SSH) defaultIdentity(file string) error {
	if _, err := os.Stat(file); err == nil {
		return s.loadIdentity(file)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "clocker")
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	pub = append(bytes.TrimSpace(pub), []byte(" clocker\n")...)
	if err := pki.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if err := pki.WriteFile(file+".pub", pub, 0o644); err != nil {
		return err
	}
	s.log.Info("ssh provisioner: made an SSH key", "file", file)
	return s.loadIdentity(file)
}

// sshTarget is where to log in.
type sshTarget struct {
	User, Host string
	Port       int
}

func (t sshTarget) addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

func (t sshTarget) String() string { return t.User + "@" + t.addr() }

// parseTarget reads [user@]address[:sshport]; an IPv6 address with a port
// is written in brackets.
func parseTarget(raw, defUser string) (sshTarget, error) {
	bad := func(why string) (sshTarget, error) {
		return sshTarget{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ssh target %q: %s (want [user@]address[:port])", raw, why))
	}
	t := sshTarget{User: defUser, Port: 22}
	rest := raw
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		t.User, rest = rest[:i], rest[i+1:]
		if !sshUserRE.MatchString(t.User) {
			return bad("bad user name")
		}
	}
	switch {
	case rest == "":
		return bad("no address")
	case strings.HasPrefix(rest, "["):
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			if !strings.HasSuffix(rest, "]") {
				return bad(err.Error())
			}
			h, p = strings.Trim(rest, "[]"), ""
		}
		t.Host = h
		if p != "" {
			if t.Port, err = strconv.Atoi(p); err != nil {
				return bad("bad port")
			}
		}
	case strings.Count(rest, ":") == 1:
		h, p, _ := net.SplitHostPort(rest)
		port, err := strconv.Atoi(p)
		if err != nil {
			return bad("bad port")
		}
		t.Host, t.Port = h, port
	default:
		t.Host = rest // a name, an IPv4 address or a bare IPv6 address
	}
	if t.Port < 1 || t.Port > 65535 {
		return bad("bad port")
	}
	if net.ParseIP(t.Host) == nil && !sshHostRE.MatchString(t.Host) {
		return bad("bad address")
	}
	return t, nil
}

// Create turns req.Target into a host named req.Name.
func (s *SSH) Create(ctx context.Context, req Request) (Machine, error) {
	if req.Name == "" || !sshHostRE.MatchString(req.Name) {
		return Machine{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: host name %q: want letters, digits, dots and dashes", req.Name))
	}
	target := req.Target
	if target == "" {
		if target = s.takeFromPool(req.Name); target == "" {
			return Machine{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: host %s: no target machine ([user@]address[:port]) and no free one in the pool option", req.Name))
		}
	}
	t, err := parseTarget(target, s.user)
	if err != nil {
		s.release(target)
		return Machine{}, err
	}
	if !s.claim(t.String(), req.Name) {
		return Machine{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("provisioner ssh: %s is already a host of this fleet (its engine in %s)", t, s.dir))
	}
	keep := false
	defer func() {
		if !keep {
			s.release(t.String())
		}
	}()
	for k, v := range req.Labels {
		if k == "" || strings.ContainsAny(k+v, "\n\x00") {
			return Machine{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: host %s: bad label %q", req.Name, k))
		}
	}
	start := time.Now()
	c, err := s.connect(ctx, t, "")
	if err != nil {
		return Machine{}, err
	}
	defer c.Close()

	// Certificates first: nothing is changed on the machine for a request
	// that fails locally.
	clientTLS, err := s.fleetPKI()
	if err != nil {
		return Machine{}, err
	}
	st := sshState{
		Target: t.String(), HostKey: c.hostKey,
		Dir: s.dir, ExecRoot: "/run/" + engineID(s.dir), Port: s.port,
		ServerCert: filepath.Join(s.pkiDir, "machines", req.Name, "server-cert.pem"),
		ServerKey:  filepath.Join(s.pkiDir, "machines", req.Name, "server-key.pem"),
		Labels:     req.Labels,
	}
	if err := s.serverCert(t.Host, req.Name, st.ServerCert, st.ServerKey); err != nil {
		return Machine{}, err
	}
	made := false
	defer func() {
		if !made {
			os.RemoveAll(filepath.Dir(st.ServerCert))
		}
	}()

	if err := c.ensureDocker(ctx, s.dockerd, s.install); err != nil {
		return Machine{}, err
	}
	files := map[string]string{"CA": clientTLS.CACert, "CERT": st.ServerCert, "KEY": st.ServerKey}
	vars := st.vars()
	for v, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return Machine{}, err
		}
		vars[v] = string(b)
	}
	vars["ENGINE"] = st.engineScript(req.Name)
	if out, err := c.run(ctx, vars, sshLib+sshSetupScript); err != nil {
		var ee *ssh.ExitError
		if errors.As(err, &ee) && ee.ExitStatus() == 96 {
			// Another host's engine (of this fleet or another): never taken over.
			return Machine{}, c.errorf(errdefs.ErrConflict, "%s is in use: %s; destroy that host first or give this one another dir option",
				st.Dir, strings.TrimSpace(string(out)))
		}
		return Machine{}, c.errorf(errdefs.ErrUnavailable, "setting up %s: %v%s", st.Dir, err, tail(out))
	}
	started, err := c.startEngine(ctx, st)
	if err != nil {
		return Machine{}, err
	}
	rec := hosts.Record{
		Name:        req.Name,
		URL:         "tcp://" + net.JoinHostPort(t.Host, strconv.Itoa(st.Port)),
		Provisioner: "ssh",
		TLS:         clientTLS,
	}
	if err := s.waitEngine(ctx, c, st, rec); err != nil {
		if started {
			// Not left running half-made: the Manager forgets a failed Create.
			if _, serr := c.run(context.WithoutCancel(ctx), st.vars(), sshLib+sshStopScript); serr != nil {
				s.log.Warn("ssh provisioner: stopping an engine that did not answer", "target", t.String(), "err", serr)
			}
		}
		return Machine{}, err
	}
	state, err := json.Marshal(st)
	if err != nil {
		return Machine{}, err
	}
	made, keep = true, true
	s.log.Info("ssh provisioner: engine up", "host", req.Name, "target", t.String(), "url", rec.URL, "took", time.Since(start).Round(time.Millisecond))
	return Machine{Name: req.Name, Provisioner: "ssh", Record: rec, State: state}, nil
}

// Adopt starts the engine again if it does not run.
func (s *SSH) Adopt(ctx context.Context, m Machine) (Machine, error) {
	st, t, err := s.state(m)
	if err != nil {
		return m, err
	}
	s.claim(t.String(), m.Name)
	c, err := s.connect(ctx, t, st.HostKey)
	if err != nil {
		return m, err
	}
	defer c.Close()
	started, err := c.startEngine(ctx, st)
	if err != nil {
		return m, err
	}
	if started {
		s.log.Info("ssh provisioner: engine was not running; started it again", "host", m.Name, "target", st.Target)
		if err := s.waitEngine(ctx, c, st, m.Record); err != nil {
			return m, err
		}
	}
	return m, nil
}

// Destroy stops the engine; Docker, the remote dir and its data stay.
func (s *SSH) Destroy(ctx context.Context, m Machine) error {
	if len(m.State) == 0 {
		return nil // reserved, never made
	}
	st, t, err := s.state(m)
	if err != nil {
		return err
	}
	c, err := s.connect(ctx, t, st.HostKey)
	if err != nil {
		return err
	}
	defer c.Close()
	if out, err := c.run(ctx, st.vars(), sshLib+sshStopScript); err != nil {
		return c.errorf(errdefs.ErrUnavailable, "stopping the engine in %s: %v%s", st.Dir, err, tail(out))
	}
	if err := os.RemoveAll(filepath.Dir(st.ServerCert)); err != nil {
		s.log.Warn("ssh provisioner: removing the machine's certificate", "host", m.Name, "err", err)
	}
	s.release(t.String())
	return nil
}

// takeFromPool claims the first pool target no machine uses ("" if none).
func (s *SSH) takeFromPool(name string) string {
	for _, t := range s.pool {
		if s.claim(t, name) {
			return t
		}
	}
	return ""
}

// claim marks a target as this host's; false if another host has it.
func (s *SSH) claim(target, name string) bool {
	s.usedMu.Lock()
	defer s.usedMu.Unlock()
	if owner, ok := s.used[target]; ok && owner != name {
		return false
	}
	s.used[target] = name
	return true
}

func (s *SSH) release(target string) {
	s.usedMu.Lock()
	defer s.usedMu.Unlock()
	delete(s.used, target)
}

func (s *SSH) state(m Machine) (sshState, sshTarget, error) {
	var st sshState
	if err := json.Unmarshal(m.State, &st); err != nil || st.Target == "" || st.Dir == "" {
		return st, sshTarget{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: host %s: unreadable state %q", m.Name, m.State))
	}
	t, err := parseTarget(st.Target, s.user)
	return st, t, err
}

// engineID names what the engine of dir keeps apart from others on the
// machine (exec root, containerd namespace, cgroup parent); short, because
// the exec root holds unix sockets.
func engineID(dir string) string {
	if dir == sshDefaultDir {
		return "clocker-engine"
	}
	h := sha256.Sum256([]byte(dir))
	return "clocker-" + hex.EncodeToString(h[:4])
}

// vars are the shell variables of the remote scripts.
func (st sshState) vars() map[string]string {
	return map[string]string{"DIR": st.Dir, "EXEC": st.ExecRoot}
}

// engineScript is DIR/engine.sh: the engine's command line, written once at
// Create so that Adopt starts it with the same flags.
func (st sshState) engineScript(name string) string {
	id := engineID(st.Dir)
	args := []string{"dockerd",
		"--config-file", st.Dir + "/daemon.json",
		"--data-root", st.Dir + "/data",
		"--exec-root", st.ExecRoot,
		"--pidfile", st.Dir + "/docker.pid",
		"-H", "unix://" + st.Dir + "/docker.sock",
		"-H", "tcp://0.0.0.0:" + strconv.Itoa(st.Port),
		"--tlsverify",
		"--tlscacert", st.Dir + "/tls/ca.pem",
		"--tlscert", st.Dir + "/tls/server-cert.pem",
		"--tlskey", st.Dir + "/tls/server-key.pem",
		"--containerd-namespace", id,
		"--containerd-plugins-namespace", id + "-plugins",
		"--cgroup-parent", "/" + id,
		"--label", labels.Provisioner + "=ssh",
	}
	for _, k := range slices.Sorted(maps.Keys(st.Labels)) {
		args = append(args, "--label", k+"="+st.Labels[k])
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shq(a)
	}
	return "#!/bin/sh\n" +
		"# The Docker engine of Clocker host " + name + " (ssh provisioner), started by Create and Adopt.\n" +
		"driver=$(cat " + shq(st.Dir+"/storage-driver") + " 2>/dev/null || true)\n" +
		"exec " + strings.Join(q, " ") + ` ${driver:+--storage-driver "$driver"}` + "\n"
}

// fleetPKI makes (once) the fleet CA and the client certificate the
// manager presents to every ssh engine.
func (s *SSH) fleetPKI() (hosts.EngineTLS, error) {
	s.pkiMu.Lock()
	defer s.pkiMu.Unlock()
	t := hosts.EngineTLS{
		CACert: filepath.Join(s.pkiDir, "ca.pem"),
		Cert:   filepath.Join(s.pkiDir, "cert.pem"),
		Key:    filepath.Join(s.pkiDir, "key.pem"),
	}
	ca, err := pki.LoadOrCreateCA(t.CACert, filepath.Join(s.pkiDir, "ca-key.pem"), "Clocker fleet CA")
	if err != nil {
		return t, fmt.Errorf("provisioner ssh: fleet CA: %w", err)
	}
	if _, err := os.Stat(t.Cert); err == nil {
		return t, nil
	}
	if err := ca.IssueFiles(pki.Cert{CommonName: "clocker", Usage: pki.Client}, t.Cert, t.Key); err != nil {
		return t, fmt.Errorf("provisioner ssh: client certificate: %w", err)
	}
	return t, nil
}

// serverCert issues the engine's certificate for its address and name.
func (s *SSH) serverCert(host, name, certFile, keyFile string) error {
	s.pkiMu.Lock()
	defer s.pkiMu.Unlock()
	ca, err := pki.LoadCA(filepath.Join(s.pkiDir, "ca.pem"), filepath.Join(s.pkiDir, "ca-key.pem"))
	if err != nil {
		return fmt.Errorf("provisioner ssh: fleet CA: %w", err)
	}
	req := pki.Cert{CommonName: name, Usage: pki.Server, DNSNames: []string{name}}
	if ip := net.ParseIP(host); ip != nil {
		req.IPs = []net.IP{ip}
	} else if host != name {
		req.DNSNames = append(req.DNSNames, host)
	}
	if err := ca.IssueFiles(req, certFile, keyFile); err != nil {
		return fmt.Errorf("provisioner ssh: server certificate for %s: %w", host, err)
	}
	return nil
}

// waitEngine waits until the engine answers _ping over TLS. While it does
// not, the remote process is watched, so that an engine that died is
// reported at once with the end of its log.
func (s *SSH) waitEngine(ctx context.Context, c *sshConn, st sshState, rec hosts.Record) error {
	ep, err := hosts.ParseEndpoint(rec.URL)
	if err != nil {
		return err
	}
	if ep, err = ep.WithTLS(rec.TLS); err != nil {
		return err
	}
	tr := ep.Transport()
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, s.engineWait)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for i := 0; ; i++ {
		lastErr = ping(ctx, hc, ep.Base.String()+"/_ping")
		if lastErr == nil {
			return nil
		}
		if i%4 == 3 {
			out, err := c.run(ctx, st.vars(), sshLib+sshStatusScript)
			if err == nil && !strings.HasPrefix(string(out), "up") {
				return c.errorf(errdefs.ErrUnavailable, "the engine (%s) exited at start; end of %s/dockerd.log:\n%s", rec.URL, st.Dir, strings.TrimPrefix(string(out), "down\n"))
			}
		}
		select {
		case <-ctx.Done():
			log, _ := c.run(context.WithoutCancel(ctx), st.vars(), sshLib+sshLogScript)
			return c.errorf(errdefs.ErrUnavailable, "the engine runs but does not answer on %s within %s (%v); end of %s/dockerd.log:\n%s", rec.URL, s.engineWait, lastErr, st.Dir, log)
		case <-tick.C:
		}
	}
}

func ping(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// sshConn is a logged-in connection to a target machine.
type sshConn struct {
	*ssh.Client
	target  sshTarget
	hostKey string // SHA256 fingerprint
	sudo    bool   // not root: scripts run through sudo -n
}

func (c *sshConn) errorf(kind error, format string, args ...any) error {
	return errdefs.New(kind, fmt.Sprintf("ssh target %s: ", c.target)+fmt.Sprintf(format, args...))
}

// connect logs in to t. The host key must match the one recorded for the
// address in known_hosts, and want (the fingerprint recorded at Create)
// when given; a host seen for the first time is recorded (trust on first
// use).
func (s *SSH) connect(ctx context.Context, t sshTarget, want string) (*sshConn, error) {
	fail := func(kind error, format string, args ...any) error {
		return errdefs.New(kind, fmt.Sprintf("ssh target %s: ", t)+fmt.Sprintf(format, args...))
	}
	d := net.Dialer{Timeout: sshDialTimeout}
	nc, err := d.DialContext(ctx, "tcp", t.addr())
	if err != nil {
		return nil, fail(errdefs.ErrUnavailable, "unreachable: %v", err)
	}
	var (
		keyErr  error  // why the host key was refused
		keySeen string // fingerprint presented
	)
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			keySeen = ssh.FingerprintSHA256(key)
			keyErr = s.checkHostKey(hostname, remote, key, want)
			return keyErr
		},
	}
	// The handshake honours ctx and a deadline of its own: a machine that
	// accepts TCP but never speaks SSH must not hang Create.
	_ = nc.SetDeadline(time.Now().Add(sshHandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, t.addr(), cfg)
	stop()
	if err != nil {
		switch {
		case keyErr != nil:
			return nil, keyErr
		case ctx.Err() != nil:
			return nil, fail(errdefs.ErrUnavailable, "%v", ctx.Err())
		case strings.Contains(err.Error(), "unable to authenticate"):
			// x/crypto/ssh has no typed error for this.
			return nil, fail(errdefs.ErrInvalid, "permission denied for user %s with key %s: authorise the public key in %s (%s) in ~%s/.ssh/authorized_keys",
				t.User, ssh.FingerprintSHA256(s.signer.PublicKey()), s.pubKeyFile, s.pubKey, t.User)
		default:
			return nil, fail(errdefs.ErrUnavailable, "%v", err)
		}
	}
	_ = nc.SetDeadline(time.Time{})
	c := &sshConn{Client: ssh.NewClient(sc, chans, reqs), target: t, hostKey: keySeen}
	out, err := c.run(ctx, nil, "id -u")
	if err != nil {
		c.Close()
		return nil, fail(errdefs.ErrUnavailable, "running a command: %v%s", err, tail(out))
	}
	c.sudo = strings.TrimSpace(string(out)) != "0"
	return c, nil
}

// checkHostKey is trust on first use: a host key is recorded in known_hosts
// the first time an address is seen, and must be the same afterwards.
func (s *SSH) checkHostKey(hostname string, remote net.Addr, key ssh.PublicKey, want string) error {
	s.khMu.Lock()
	defer s.khMu.Unlock()
	fp := ssh.FingerprintSHA256(key)
	changed := func(was string) error {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
			"ssh target %s: the host key changed (now %s, recorded %s): the machine was reinstalled or someone is intercepting the connection; if the change is expected, remove the address from %s and add the host again",
			hostname, fp, was, s.knownHosts))
	}
	atCreate := want + " when the host was made"
	if err := os.MkdirAll(filepath.Dir(s.knownHosts), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(s.knownHosts, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	cb, err := knownhosts.New(s.knownHosts)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner ssh: known hosts: %v", err))
	}
	err = cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		if want != "" && want != fp {
			return changed(atCreate)
		}
		return nil
	case errors.As(err, &ke) && len(ke.Want) > 0:
		was := make([]string, len(ke.Want))
		for i, k := range ke.Want {
			was[i] = ssh.FingerprintSHA256(k.Key) + " in " + k.Filename + ":" + strconv.Itoa(k.Line)
		}
		return changed(strings.Join(was, ", "))
	case errors.As(err, &ke):
		if want != "" && want != fp {
			return changed(atCreate) // known_hosts lost, but the machine's record remembers
		}
		if _, err := fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)); err != nil {
			return err
		}
		s.log.Info("ssh provisioner: recorded a new host key", "target", hostname, "fingerprint", fp, "file", s.knownHosts)
		return nil
	default:
		var re *knownhosts.RevokedError
		if errors.As(err, &re) {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("ssh target %s: host key %s is revoked in %s", hostname, fp, s.knownHosts))
		}
		return err
	}
}

// run runs script on the machine with vars set (values quoted), through
// sudo when not root; it returns stdout and stderr together. ctx ends the
// session.
func (c *sshConn) run(ctx context.Context, vars map[string]string, script string) ([]byte, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		b.WriteString(k + "=" + shq(vars[k]) + "\n")
	}
	b.WriteString(script)
	cmd := "sh -c " + shq(b.String())
	if c.sudo {
		cmd = "sudo -n " + cmd
	}
	// One buffer for both: the session copies them from two goroutines.
	out := &lockedBuffer{}
	sess.Stdout, sess.Stderr = out, out
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Run(cmd)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return out.Bytes(), err
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.b.Bytes())
}

// ensureDocker installs Docker with the install command if dockerd is not
// there.
func (c *sshConn) ensureDocker(ctx context.Context, dockerd, install string) error {
	out, err := c.run(ctx, map[string]string{"INSTALL": install, "DOCKERD": dockerd}, sshLib+sshInstallScript)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee) && ee.ExitStatus() == 97:
		return c.errorf(errdefs.ErrUnavailable, "dockerd is not installed and the install option is empty")
	case errors.As(err, &ee) && ee.ExitStatus() == 98:
		return c.errorf(errdefs.ErrUnavailable, "installing Docker failed (%q); its output ends with:\n%s", install, tailLines(out, 20))
	case errors.As(err, &ee) && ee.ExitStatus() == 99:
		return c.errorf(errdefs.ErrUnavailable, "the install command (%q) succeeded but dockerd is still not on the PATH", install)
	default:
		return c.errorf(errdefs.ErrUnavailable, "checking for dockerd: %v%s", err, tail(out))
	}
}

// startEngine starts the engine unless a dockerd of its pid file runs; it
// reports whether it started one.
func (c *sshConn) startEngine(ctx context.Context, st sshState) (bool, error) {
	out, err := c.run(ctx, st.vars(), sshLib+sshStartScript)
	if err != nil {
		return false, c.errorf(errdefs.ErrUnavailable, "starting the engine in %s: %v%s", st.Dir, err, tail(out))
	}
	return strings.Contains(string(out), "started "), nil
}

func tail(out []byte) string {
	if len(bytes.TrimSpace(out)) == 0 {
		return ""
	}
	return ":\n" + tailLines(out, 15)
}

func tailLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shq quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Remote scripts. They run under sh -c with DIR (the engine's directory)
// and EXEC (its exec root) set, and sshLib first.
const (
	sshLib = `export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# alive PID: the process exists and is not a zombie.
alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
		[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}
# enginepid: the pid of the dockerd of this pid file (by its command line,
# since a stale pid file's number may now be another process's).
enginepid() {
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = dockerd ] || continue
		if cat "$d/cmdline" 2>/dev/null | tr '\0' ' ' | grep -qF -- " $DIR/docker.pid "; then
			p=${d#/proc/}
			if alive "$p"; then echo "$p"; return 0; fi
		fi
	done
	return 1
}
# leftovers: the containerd of this exec root, which outlives a killed
# dockerd for a moment and makes a new one give up.
leftovers() {
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = containerd ] || continue
		if cat "$d/cmdline" 2>/dev/null | tr '\0' ' ' | grep -qF -- "$EXEC/"; then echo "${d#/proc/}"; fi
	done
	return 0
}
`
	sshInstallScript = `command -v "$DOCKERD" >/dev/null 2>&1 && exit 0
[ -n "$INSTALL" ] || exit 97
echo "clocker: $DOCKERD not found; installing Docker"
sh -c "$INSTALL" </dev/null 2>&1 || exit 98
command -v "$DOCKERD" >/dev/null 2>&1 || exit 99
`
	// sshSetupScript writes the certificates, the engine's own config file
	// and command line, and picks a storage driver once.
	sshSetupScript = `set -e
if p=$(enginepid); then echo "an engine already runs there (dockerd pid $p)"; exit 96; fi
umask 077
mkdir -p "$DIR/tls" "$DIR/data"
chmod 0711 "$DIR"
printf '%s' "$CA" >"$DIR/tls/ca.pem"
printf '%s' "$CERT" >"$DIR/tls/server-cert.pem"
printf '%s' "$KEY" >"$DIR/tls/server-key.pem"
chmod 0644 "$DIR/tls/ca.pem" "$DIR/tls/server-cert.pem"
chmod 0600 "$DIR/tls/server-key.pem"
[ -e "$DIR/daemon.json" ] || echo '{}' >"$DIR/daemon.json"
printf '%s' "$ENGINE" >"$DIR/engine.sh"
if [ ! -e "$DIR/storage-driver" ]; then
	# The machine's own engine's driver is known to work on this kernel
	# and filesystem; without one, dockerd chooses.
	d=$(sed -n 's/.*"storage-driver"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' /etc/docker/daemon.json 2>/dev/null | head -n 1)
	[ -n "$d" ] || d=$(timeout 10 docker -H unix:///var/run/docker.sock info --format '{{.Driver}}' 2>/dev/null || true)
	printf '%s' "$d" >"$DIR/storage-driver"
fi
`
	// sshStartScript starts the engine unless it runs; "started PID" or
	// "running PID".
	sshStartScript = `set -e
if p=$(enginepid); then echo "running $p"; exit 0; fi
rm -f "$DIR/docker.pid"
for p in $(leftovers); do kill -KILL "$p" 2>/dev/null || true; done
i=0
while [ -n "$(leftovers)" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
c=$(cat "$EXEC/containerd/containerd.pid" 2>/dev/null | tr -dc 0-9)
if [ -n "$c" ] && ! alive "$c"; then rm -f "$EXEC/containerd/containerd.pid"; fi
mkdir -p "$EXEC" "$DIR/data"
echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) clocker: starting the engine" >>"$DIR/dockerd.log"
cd /
# Its own session, every descriptor redirected: it outlives this SSH
# session, which does not wait for it.
setsid sh "$DIR/engine.sh" </dev/null >>"$DIR/dockerd.log" 2>&1 &
echo "started $!"
`
	sshStatusScript = `if enginepid >/dev/null; then echo up; exit 0; fi
echo down
grep -v 'module=grpc' "$DIR/dockerd.log" 2>/dev/null | tail -n 25
`
	sshLogScript = `grep -v 'module=grpc' "$DIR/dockerd.log" 2>/dev/null | tail -n 25`
	// sshStopScript stops the engine: SIGTERM (dockerd stops its
	// containers and containerd), SIGKILL after 30 s.
	sshStopScript = `p=$(enginepid) || p=
if [ -n "$p" ]; then
	kill -TERM "$p" 2>/dev/null || true
	i=0
	while alive "$p" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	if alive "$p"; then
		echo "dockerd $p ignored SIGTERM for 30s; killing it" >&2
		kill -KILL "$p" 2>/dev/null || true
	fi
fi
for q in $(leftovers); do kill -KILL "$q" 2>/dev/null || true; done
i=0
while { alive "$p" || [ -n "$(leftovers)" ]; } && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
rm -f "$DIR/docker.pid"
echo stopped
`
)

var _ Provisioner = (*SSH)(nil)
