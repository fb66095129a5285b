package testfleet

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/clocker/clocker/internal/pki"
)

// PKI is what WritePKI wrote: a CA, a server certificate for the engines
// and a client certificate, as a `dockerd --tlsverify` set-up has them.
type PKI struct {
	Dir                       string
	CA, ServerCert, ServerKey string // ca.pem, server-cert.pem, server-key.pem
	ClientCert, ClientKey     string // cert.pem, key.pem
}

// WritePKI writes a throwaway CA and certificates into dir. The server
// certificate is valid for 127.0.0.1 and every address fleet.sh hands out
// (10.213.X.1-9), so it serves any test fleet.
func WritePKI(dir string) (PKI, error) {
	p := PKI{
		Dir:        dir,
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server-cert.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "cert.pem"),
		ClientKey:  filepath.Join(dir, "key.pem"),
	}
	const validity = 24 * time.Hour
	ca, err := pki.NewCA("testfleet CA", validity)
	if err != nil {
		return p, err
	}
	if err := pki.WriteFile(p.CA, ca.CertPEM, 0o600); err != nil {
		return p, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for x := 0; x < 256; x++ {
		for i := 1; i <= 9; i++ {
			ips = append(ips, net.IPv4(10, 213, byte(x), byte(i)))
		}
	}
	if err := ca.IssueFiles(pki.Cert{CommonName: "testfleet engine", Usage: pki.Server, IPs: ips, Validity: validity}, p.ServerCert, p.ServerKey); err != nil {
		return p, fmt.Errorf("server certificate: %w", err)
	}
	if err := ca.IssueFiles(pki.Cert{CommonName: "testfleet client", Usage: pki.Client, Validity: validity}, p.ClientCert, p.ClientKey); err != nil {
		return p, fmt.Errorf("client certificate: %w", err)
	}
	return p, nil
}
