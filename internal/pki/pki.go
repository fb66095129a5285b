// Package pki makes the certificates of a `dockerd --tlsverify` set-up: a
// certificate authority, server certificates for engines (with the IP
// addresses and DNS names they are reached at) and client certificates for
// those that talk to them. Keys are ECDSA P-256; files are PEM, keys written
// 0600.
//
// It is plumbing for the ssh provisioner (one fleet CA kept under the
// manager's data directory) and for test fleets (a throwaway CA per run).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that issues engine and client certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is Cert as PEM, what engines and clients are given.
	CertPEM []byte
}

// Usage says what an issued certificate is for.
type Usage int

const (
	// Server certificates are presented by engines (dockerd --tlscert).
	Server Usage = iota
	// Client certificates are presented to engines (docker --tlscert).
	Client
)

// Cert asks for a certificate.
type Cert struct {
	// CommonName is the subject's name.
	CommonName string
	Usage      Usage
	// IPs and DNSNames are the server's subject alternative names: the
	// addresses and names clients reach it at (and verify).
	IPs      []net.IP
	DNSNames []string
	// Validity is how long it is valid from now; 0 means 10 years.
	Validity time.Duration
}

// DefaultValidity is used when none is given: fleets live long and nothing
// renews their certificates.
const DefaultValidity = 10 * 365 * 24 * time.Hour

// backdate covers clocks of engines that run a little behind this one.
const backdate = time.Hour

// NewCA makes a certificate authority valid for validity (0: DefaultValidity).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if validity == 0 {
		validity = DefaultValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encode("CERTIFICATE", der)}, nil
}

// LoadCA reads a CA written by WriteFiles.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: %s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certFile)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not match %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// LoadOrCreateCA loads the CA from certFile and keyFile, or makes one and
// writes it there when neither exists (one file without the other is an
// error: a half-written CA must not be silently replaced).
func LoadOrCreateCA(certFile, keyFile, commonName string) (*CA, error) {
	_, errC := os.Stat(certFile)
	_, errK := os.Stat(keyFile)
	if errC == nil || errK == nil {
		return LoadCA(certFile, keyFile)
	}
	if !errors.Is(errC, os.ErrNotExist) {
		return nil, errC
	}
	ca, err := NewCA(commonName, 0)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue makes a key pair and a certificate signed by the CA; it returns both
// as PEM.
func (ca *CA) Issue(req Cert) (certPEM, keyPEM []byte, err error) {
	validity := req.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		IPAddresses:  req.IPs,
		DNSNames:     req.DNSNames,
	}
	switch req.Usage {
	case Server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, nil, fmt.Errorf("pki: unknown usage %d", req.Usage)
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: certificate for %q: %w", req.CommonName, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encode("CERTIFICATE", der), keyPEM, nil
}

// IssueFiles issues a certificate and writes it to certFile, its key to
// keyFile (0600).
func (ca *CA) IssueFiles(req Cert, certFile, keyFile string) error {
	certPEM, keyPEM, err := ca.Issue(req)
	if err != nil {
		return err
	}
	if err := WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(certFile, certPEM, 0o644)
}

// WriteFiles writes the CA's certificate and key (0600), the key first: a
// CA certificate without its key would be loaded and fail.
func (ca *CA) WriteFiles(certFile, keyFile string) error {
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return err
	}
	if err := WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(certFile, ca.CertPEM, 0o644)
}

// WriteFile writes data atomically (a temporary file renamed into place),
// so a crash never leaves a truncated key or certificate, creating the
// directory (0700) if needed.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return encode("EC PRIVATE KEY", der), nil
}

func parseKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	switch b.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want ECDSA", k)
		}
		return ek, nil
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
	}
}
