// Package tlsconf is the front door's TLS, with dockerd's meanings:
// --tls serves TLS, --tlsverify also requires a client certificate signed
// by --tlscacert. The certificate, key and CA are read again on Reload
// (SIGHUP): new handshakes use the new files, connections already made
// carry on. It also writes a quick-start set of certificates in Docker's
// documented layout (InitDir, IssueClient).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Files are the PEM files of the server's TLS.
type Files struct {
	// CACert signs the client certificates accepted (--tlscacert).
	CACert string
	// Cert and Key are the server's certificate and key.
	Cert, Key string
	// Verify requires a client certificate CACert signed (--tlsverify).
	Verify bool
}

// Server hands out the current TLS configuration to every handshake.
type Server struct {
	files Files
	cur   atomic.Pointer[tls.Config]
}

// Load reads the files; any that is missing or does not parse is an error
// naming it.
func Load(f Files) (*Server, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs --tlscert and --tlskey")
	}
	if f.Verify && f.CACert == "" {
		return nil, errors.New("--tlsverify needs --tlscacert")
	}
	s := &Server{files: f}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again; on an error the configuration in use stays.
func (s *Server) Reload() error {
	cfg, err := build(s.files)
	if err != nil {
		return err
	}
	s.cur.Store(cfg)
	return nil
}

func build(f Files) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--tlscert %s / --tlskey %s: %w", f.Cert, f.Key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// Hijacked streams (attach, exec) need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
		ClientAuth: tls.NoClientCert,
	}
	if f.CACert != "" {
		pool, err := loadPool(f.CACert)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		// As dockerd: --tls with a CA verifies a certificate when one is
		// given; --tlsverify requires one.
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if f.Verify {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--tlscacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("--tlscacert %s: no PEM certificate", path)
	}
	return pool, nil
}

// Config is what a listener is wrapped with (tls.NewListener): every
// handshake asks for the configuration current at that moment.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
}
