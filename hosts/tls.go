package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/clocker/clocker/internal/errdefs"
)

// EngineTLS names the files of an engine started with --tlsverify: the CA
// that signed its certificate, and Clocker's client certificate and key.
// Stored with the host record (paths, not keys), so a restart reconnects.
type EngineTLS struct {
	CACert string `json:",omitempty"`
	Cert   string `json:",omitempty"`
	Key    string `json:",omitempty"`
}

// IsZero reports whether no TLS file is given (plain TCP or a socket).
func (t EngineTLS) IsZero() bool { return t == EngineTLS{} }

// config loads the files into a client TLS config that verifies the engine
// against the CA (as docker --tlsverify does) and presents the client
// certificate.
func (t EngineTLS) config(serverName string) (*tls.Config, error) {
	if t.CACert == "" || t.Cert == "" || t.Key == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "engine TLS needs a CA certificate, a client certificate and its key (--engine-tlscacert, --engine-tlscert, --engine-tlskey)")
	}
	pem, err := os.ReadFile(t.CACert)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine TLS CA: %v", err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine TLS CA %s: no PEM certificate", t.CACert))
	}
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("engine TLS client certificate: %v", err))
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}
