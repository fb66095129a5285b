package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/clocker/clocker/frontdoor"
	"github.com/clocker/clocker/frontdoor/audit"
	"github.com/clocker/clocker/frontdoor/authz"
	"github.com/clocker/clocker/frontdoor/identity"
	"github.com/clocker/clocker/frontdoor/limits"
	"github.com/clocker/clocker/frontdoor/tlsconf"
)

// frontDoorFlags are serve's flags for who may use the API and how:
// dockerd's TLS flags, identities, authorization and limits.
type frontDoorFlags struct {
	tls, tlsVerify       bool
	caCert, cert, key    string
	users                string
	admins               listFlag
	plugins              listFlag
	rules                authz.Rules
	bindPaths            listFlag
	maxDepth, maxStreams int
	readHeader, idle     time.Duration
	maxHeaderBytes       int
	auditLog             string
	tenants              bool
}

func (f *frontDoorFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.tls, "tls", false, "serve TCP listeners over TLS (implied by --tlsverify)")
	fs.BoolVar(&f.tlsVerify, "tlsverify", false, "serve TLS and require a client certificate signed by --tlscacert; its CN is the caller's identity")
	fs.StringVar(&f.caCert, "tlscacert", "", "CA certificate clients' certificates are checked against (default $DOCKER_CERT_PATH/ca.pem or ~/.docker/ca.pem)")
	fs.StringVar(&f.cert, "tlscert", "", "server certificate (default $DOCKER_CERT_PATH/cert.pem or ~/.docker/cert.pem)")
	fs.StringVar(&f.key, "tlskey", "", "server key (default $DOCKER_CERT_PATH/key.pem or ~/.docker/key.pem)")
	fs.StringVar(&f.users, "users", "", "htpasswd file of bcrypt users (htpasswd -B) accepted with HTTP Basic on /v1/; re-read on SIGHUP")
	fs.Var(&f.admins, "admin", "an identity (certificate CN or user) that may use /v1/fleet (repeatable)")
	fs.Var(&f.plugins, "authorization-plugin", "an authorization plugin speaking dockerd's AuthZPlugin protocol: http://HOST:PORT or unix:///PATH (repeatable; all must allow)")
	fs.BoolVar(&f.rules.DenyPrivileged, "deny-privileged", false, "refuse privileged containers and execs")
	fs.Var(&f.bindPaths, "allowed-bind-path", "a host path that binds and bind mounts may name, with what is below it (repeatable; default: any)")
	fs.BoolVar(&f.rules.DenyHostNetwork, "deny-host-network", false, "refuse --network host")
	fs.BoolVar(&f.rules.DenyCapAdd, "deny-cap-add", false, "refuse --cap-add")
	fs.IntVar(&f.maxDepth, "max-json-depth", 100, "deepest nesting of a JSON request body")
	fs.IntVar(&f.maxStreams, "max-streams", 256, "most attach and exec streams one identity holds at once (0: no bound)")
	fs.DurationVar(&f.readHeader, "read-header-timeout", 30*time.Second, "longest a client may take to send a request's head (and its TLS handshake)")
	fs.DurationVar(&f.idle, "idle-timeout", 2*time.Minute, "longest a kept-alive connection may stay idle")
	fs.IntVar(&f.maxHeaderBytes, "max-header-bytes", 256<<10, "largest request head in bytes")
	fs.BoolVar(&f.tenants, "tenants", false, "every identity but --admin ones is a tenant: sees and names only its own containers, networks, volumes and execs (needs --tlsverify or --users)")
	fs.StringVar(&f.auditLog, "audit-log", "", "write one JSON line per changing request to FILE (- for standard output)")
}

// tlsOn: TLS serves every TCP listener, as in dockerd.
func (f *frontDoorFlags) tlsOn() bool { return f.tls || f.tlsVerify }

// check validates the flags and fills the dockerd defaults of the TLS
// files.
func (f *frontDoorFlags) check() error {
	if f.tlsOn() {
		dir := os.Getenv("DOCKER_CERT_PATH")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".docker")
		}
		if f.caCert == "" && f.tlsVerify {
			f.caCert = filepath.Join(dir, "ca.pem")
		}
		if f.cert == "" {
			f.cert = filepath.Join(dir, "cert.pem")
		}
		if f.key == "" {
			f.key = filepath.Join(dir, "key.pem")
		}
	} else if f.caCert != "" || f.cert != "" || f.key != "" {
		return errors.New("--tlscacert, --tlscert and --tlskey need --tls or --tlsverify")
	}
	for _, p := range f.bindPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("--allowed-bind-path %q: want an absolute path", p)
		}
	}
	f.rules.AllowedBindPaths = f.bindPaths
	if f.tenants && !f.tlsVerify && f.users == "" {
		return errors.New("--tenants needs identities: --tlsverify or --users")
	}
	if f.maxDepth < 1 || f.maxStreams < 0 || f.maxHeaderBytes < 1024 || f.readHeader <= 0 || f.idle <= 0 {
		return errors.New("--max-json-depth, --max-header-bytes (at least 1024), --read-header-timeout and --idle-timeout must be positive; --max-streams 0 or more")
	}
	return nil
}

// frontDoorChain is what check's flags build: the chain and what SIGHUP
// re-reads.
type frontDoorChain struct {
	cfg   *frontdoor.Config
	tls   *tlsconf.Server // nil: plain
	users *identity.Users // nil: no --users
	audit io.Closer       // nil: no --audit-log or standard output
}

func (f *frontDoorFlags) build(ctx context.Context, maxBody int64, log *slog.Logger) (*frontDoorChain, error) {
	fd := &frontDoorChain{}
	var err error
	if f.tlsOn() {
		if fd.tls, err = tlsconf.Load(tlsconf.Files{CACert: f.caCert, Cert: f.cert, Key: f.key, Verify: f.tlsVerify}); err != nil {
			return nil, err
		}
	}
	if f.users != "" {
		if fd.users, err = identity.LoadUsers(f.users); err != nil {
			return nil, err
		}
	}
	admins := map[string]bool{}
	for _, a := range f.admins {
		admins[a] = true
	}
	az := &authz.Authorizer{Rules: f.rules, Log: log, MaxBody: maxBody}
	for _, raw := range f.plugins {
		p, err := authz.NewPlugin(raw)
		if err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = p.Activate(actx)
		cancel()
		if err != nil {
			return nil, err
		}
		az.Plugins = append(az.Plugins, p)
	}
	adminPaths := []string{"/v1/fleet"}
	if f.tenants {
		// The console shows the whole fleet (every tenant's containers,
		// their logs, the placement of each): with tenants, the admins'.
		adminPaths = append(adminPaths, "/ui")
	}
	fd.cfg = &frontdoor.Config{
		Identity: identity.Config{
			Required:   f.tlsVerify || fd.users != nil,
			Users:      fd.users,
			Admins:     admins,
			AdminPaths: adminPaths,
		},
		Tenants:  f.tenants,
		Body:     limits.Body{Max: maxBody, MaxDepth: f.maxDepth},
		Streams:  &limits.Streams{Max: f.maxStreams},
		Authz:    az,
		Timeouts: frontdoor.Timeouts{ReadHeader: f.readHeader, Idle: f.idle, MaxHeaderBytes: f.maxHeaderBytes},
	}
	switch f.auditLog {
	case "":
	case "-":
		fd.cfg.Audit = audit.New(os.Stdout)
	default:
		file, err := os.OpenFile(f.auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--audit-log: %w", err)
		}
		fd.cfg.Audit, fd.audit = audit.New(file), file
	}
	return fd, nil
}

// reload re-reads the certificates and users (SIGHUP); what fails to load
// leaves what is in use.
func (fd *frontDoorChain) reload(log *slog.Logger) {
	if fd.tls != nil {
		if err := fd.tls.Reload(); err != nil {
			log.Error("SIGHUP: TLS files not reloaded; the old ones stay in use", "err", err)
		} else {
			log.Info("SIGHUP: TLS certificates reloaded")
		}
	}
	if fd.users != nil {
		if err := fd.users.Reload(); err != nil {
			log.Error("SIGHUP: --users not reloaded; the old users stay", "err", err)
		} else {
			log.Info("SIGHUP: users reloaded")
		}
	}
}

func (fd *frontDoorChain) Close() {
	if fd.audit != nil {
		fd.audit.Close()
	}
}
