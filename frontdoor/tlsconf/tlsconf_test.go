package tlsconf

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quickstart writes a CA, server and client certificates to a new
// directory.
func quickstart(t *testing.T, client string) string {
	t.Helper()
	dir := t.TempDir()
	if err := InitDir(dir, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, client); err != nil {
		t.Fatal(err)
	}
	return dir
}

func serverFiles(dir string) Files {
	return Files{CACert: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, ServerCertFile), Key: filepath.Join(dir, ServerKeyFile), Verify: true}
}

// clientFor is an HTTP client with dir's client certificate (none when
// cert is false) trusting caDir's CA.
func clientFor(t *testing.T, dir, caDir string, cert bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	raw, err := os.ReadFile(filepath.Join(caDir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(raw)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if cert {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func serve(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener = tls.NewListener(ln, s.Config())
	ts.Start()
	t.Cleanup(ts.Close)
	return "https://" + ln.Addr().String()
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestVerifyRefusesWhatTheCADidNotSign(t *testing.T) {
	dir := quickstart(t, "alice")
	other := quickstart(t, "mallory")
	s, err := Load(serverFiles(dir))
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)
	if got, err := get(clientFor(t, dir, dir, true), url); err != nil || got != "alice" {
		t.Fatalf("signed client: %q %v", got, err)
	}
	if _, err := get(clientFor(t, dir, dir, false), url); err == nil {
		t.Error("a client without a certificate was served")
	}
	if _, err := get(clientFor(t, other, dir, true), url); err == nil {
		t.Error("a client with another CA's certificate was served")
	}
	// TLS 1.1 is refused.
	old := clientFor(t, dir, dir, true)
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	if _, err := get(old, url); err == nil {
		t.Error("TLS 1.1 was served")
	}
	// Plain HTTP to the TLS port gets net/http's 400, never the handler.
	resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP: %d, want 400", resp.StatusCode)
	}
}

// Reload swaps the files for new handshakes; a connection made before
// carries on.
func TestReloadKeepsConnections(t *testing.T) {
	dir := quickstart(t, "alice")
	s, err := Load(serverFiles(dir))
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)
	before := clientFor(t, dir, dir, true)
	if _, err := get(before, url); err != nil {
		t.Fatal(err)
	}
	// A new CA, server and client replace the files in place.
	next := quickstart(t, "bob")
	for _, f := range []string{CAFile, ServerCertFile, ServerKeyFile} {
		raw, err := os.ReadFile(filepath.Join(next, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	// The kept-alive connection of before still answers (no new handshake).
	if got, err := get(before, url); err != nil || got != "alice" {
		t.Errorf("connection made before the reload: %q %v", got, err)
	}
	// New handshakes use the new CA: bob in, alice out.
	if got, err := get(clientFor(t, next, next, true), url); err != nil || got != "bob" {
		t.Errorf("new CA's client after reload: %q %v", got, err)
	}
	if _, err := get(clientFor(t, dir, next, true), url); err == nil {
		t.Error("the old CA's client made a new connection after the reload")
	}
	// A broken file leaves the configuration in use.
	os.WriteFile(filepath.Join(dir, ServerCertFile), []byte("junk"), 0o600)
	if err := s.Reload(); err == nil {
		t.Error("reload of a broken certificate succeeded")
	}
	if got, err := get(clientFor(t, next, next, true), url); err != nil || got != "bob" {
		t.Errorf("after a failed reload: %q %v", got, err)
	}
}

func TestInitDirRefusesAnExistingCA(t *testing.T) {
	dir := quickstart(t, "client")
	if err := InitDir(dir, nil, nil, "client"); err == nil || !strings.Contains(err.Error(), "already holds a CA") {
		t.Errorf("second init: %v", err)
	}
	if err := IssueClient(dir, "carol", filepath.Join(dir, "carol")); err != nil {
		t.Fatal(err)
	}
	if err := IssueClient(dir, "", filepath.Join(dir, "x")); err == nil {
		t.Error("a nameless client was issued")
	}
}

// Certificates users bring may be RSA: `certs init` makes ECDSA ones, but
// the server serves any pair tls.LoadX509KeyPair reads.
func TestServesRSACertificates(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	s, err := Load(Files{Cert: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c, err := tls.Dial("tcp", strings.TrimPrefix(serve(t, s), "https://"), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
