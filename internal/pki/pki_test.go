package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A server and a client certificate from one CA complete a mutual TLS
// handshake, as dockerd --tlsverify and docker --tlsverify do.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	ca, err := LoadOrCreateCA(caFile, caKey, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	// Loaded again: the same CA, not a new one.
	again, err := LoadOrCreateCA(caFile, caKey, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Fatal("LoadOrCreateCA made a second CA")
	}
	srvCert, srvKey := filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem")
	if err := ca.IssueFiles(Cert{CommonName: "engine", Usage: Server, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"engine1"}}, srvCert, srvKey); err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.IssueFiles(Cert{CommonName: "client", Usage: Client}, cliCert, cliKey); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{caKey, srvKey, cliKey} {
		st, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", k, st.Mode().Perm())
		}
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	srvPair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	cliPair, err := tls.LoadX509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvPair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("ok"))
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
		&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cliPair}, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("read %q, %v", b, err)
	}
	srv, _ := x509.ParseCertificate(srvPair.Certificate[0])
	if err := srv.VerifyHostname("engine1"); err != nil {
		t.Error(err)
	}
	if err := srv.VerifyHostname("other"); err == nil {
		t.Error("server certificate valid for a name it was not issued for")
	}
}

// Half a CA (certificate without key) is an error, never replaced.
func TestHalfCA(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	ca, err := NewCA("x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(caFile, filepath.Join(dir, "ca-key.pem"), "x"); err == nil {
		t.Fatal("want an error for a CA certificate without its key")
	}
}
