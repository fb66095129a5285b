package tlsconf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/clocker/clocker/internal/pki"
)

// Docker's documented layout: the CA, the server's pair, and the client's
// pair under the names DOCKER_CERT_PATH expects.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	ServerCertFile = "server-cert.pem"
	ServerKeyFile  = "server-key.pem"
	ClientCertFile = "cert.pem"
	ClientKeyFile  = "key.pem"
)

// InitDir makes a CA in dir, a server certificate for names and ips, and a
// client certificate for client (its CN, the identity it is served as). It
// refuses a directory that already holds a CA: replacing it would orphan
// every certificate it signed.
func InitDir(dir string, names []string, ips []net.IP, client string) error {
	caCert, caKey := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(caCert); err == nil {
		return fmt.Errorf("%s already holds a CA (%s); issue more clients with 'clocker certs client'", dir, CAFile)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ca, err := pki.NewCA("Clocker CA", 0)
	if err != nil {
		return err
	}
	if err := ca.WriteFiles(caCert, caKey); err != nil {
		return err
	}
	if err := ca.IssueFiles(pki.Cert{CommonName: firstOr(names, "clocker"), Usage: pki.Server, DNSNames: names, IPs: ips},
		filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)); err != nil {
		return err
	}
	return ca.IssueFiles(pki.Cert{CommonName: client, Usage: pki.Client},
		filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile))
}

// IssueClient signs a client certificate with CN name by the CA in dir and
// writes it to out with a copy of the CA certificate: out is then a
// DOCKER_CERT_PATH.
func IssueClient(dir, name, out string) error {
	if name == "" {
		return errors.New("a client needs a name (its certificate's CN)")
	}
	ca, err := pki.LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return err
	}
	if err := ca.IssueFiles(pki.Cert{CommonName: name, Usage: pki.Client},
		filepath.Join(out, ClientCertFile), filepath.Join(out, ClientKeyFile)); err != nil {
		return err
	}
	return pki.WriteFile(filepath.Join(out, CAFile), ca.CertPEM, 0o644)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
