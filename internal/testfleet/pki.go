package testfleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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
	p := PKI{Dir: dir}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testfleet CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return p, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return p, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for x := 0; x < 256; x++ {
		for i := 1; i <= 9; i++ {
			ips = append(ips, net.IPv4(10, 213, byte(x), byte(i)))
		}
	}
	write := func(name, typ string, der []byte) (string, error) {
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP, certName, keyName string) (string, string, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: certName},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return "", "", err
		}
		c, err := write(certName, "CERTIFICATE", der)
		if err != nil {
			return "", "", err
		}
		kp, err := write(keyName, "EC PRIVATE KEY", keyDER)
		return c, kp, err
	}
	if p.CA, err = write("ca.pem", "CERTIFICATE", caDER); err != nil {
		return p, err
	}
	if p.ServerCert, p.ServerKey, err = issue(2, x509.ExtKeyUsageServerAuth, ips, "server-cert.pem", "server-key.pem"); err != nil {
		return p, fmt.Errorf("server certificate: %w", err)
	}
	if p.ClientCert, p.ClientKey, err = issue(3, x509.ExtKeyUsageClientAuth, nil, "cert.pem", "key.pem"); err != nil {
		return p, fmt.Errorf("client certificate: %w", err)
	}
	return p, nil
}
