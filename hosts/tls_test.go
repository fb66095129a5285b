package hosts_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/testfleet"
)

// enginePKI writes a throwaway CA and certificates, and the server side's
// TLS config that requires a client certificate signed by that CA.
func enginePKI(t *testing.T) (testfleet.PKI, *tls.Config) {
	t.Helper()
	pki, err := testfleet.WritePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	server, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return pki, &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

// An engine started with --tlsverify is followed over TLS with Clocker's
// client certificate; without one, or with missing files, it is refused
// with a clear error and nothing joins.
func TestEngineOverTLS(t *testing.T) {
	pki, serverTLS := enginePKI(t)
	f := newFakeEngine(t, fakeOpts{name: "secure", tls: serverTLS})
	f.add("", "web", "running", "", false)
	fleet := hosts.NewFleet(nil, testLogger(), nil)
	t.Cleanup(fleet.Close)

	if _, err := fleet.Join(testCtx(t), hosts.Record{URL: f.URL}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("without TLS: %v, want unavailable", err)
	}
	bad := hosts.EngineTLS{CACert: pki.CA, Cert: pki.ClientCert, Key: filepath.Join(pki.Dir, "missing.pem")}
	if _, err := fleet.Join(testCtx(t), hosts.Record{URL: f.URL, TLS: bad}); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("missing key: %v, want invalid naming the client certificate", err)
	}
	if _, err := fleet.Join(testCtx(t), hosts.Record{URL: "unix:///run/x.sock", TLS: hosts.EngineTLS{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("TLS on a socket: %v, want invalid", err)
	}
	if len(fleet.Hosts()) != 0 {
		t.Fatalf("failed joins left %d hosts", len(fleet.Hosts()))
	}

	h, err := fleet.Join(testCtx(t), hosts.Record{URL: f.URL, TLS: hosts.EngineTLS{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitSynced(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if h.Name != "secure" || len(h.Containers()) != 1 {
		t.Fatalf("over TLS: host %q with %d containers", h.Name, len(h.Containers()))
	}
	// The event stream runs over TLS too.
	id := f.add("", "late", "created", "", false)
	waitFor(t, "an event over TLS", func() bool { _, ok := cached(fleet, id); return ok })
}
