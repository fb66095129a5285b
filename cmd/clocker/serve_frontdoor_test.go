package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestFrontDoorFlags(t *testing.T) {
	dir := t.TempDir()
	tlsFiles := []string{"--tlscacert", filepath.Join(dir, "ca.pem"), "--tlscert", filepath.Join(dir, "c.pem"), "--tlskey", filepath.Join(dir, "k.pem")}
	tests := []struct {
		name string
		args []string
		err  string // "" when the flags parse
	}{
		{"exposed with TLS", append([]string{"--listen", "tcp://0.0.0.0:2376", "--tlsverify"}, tlsFiles...), ""},
		{"exposed without TLS", []string{"--listen", "tcp://0.0.0.0:2376"}, "--insecure"},
		{"TLS files without TLS", []string{"--tlscert", "x.pem"}, "need --tls or --tlsverify"},
		{"relative bind path", []string{"--allowed-bind-path", "srv"}, "absolute"},
		{"no depth", []string{"--max-json-depth", "0"}, "must be positive"},
		{"tiny header limit", []string{"--max-header-bytes", "10"}, "at least 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeFlags(append([]string{"--data", dir}, tt.args...))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !cfg.front.tlsOn() {
					t.Error("TLS not on")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one saying %q", err, tt.err)
			}
		})
	}
	// dockerd's defaults for the TLS files: DOCKER_CERT_PATH.
	t.Setenv("DOCKER_CERT_PATH", "/certs")
	cfg, err := parseServeFlags([]string{"--data", dir, "--tlsverify"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.front.caCert != "/certs/ca.pem" || cfg.front.cert != "/certs/cert.pem" || cfg.front.key != "/certs/key.pem" {
		t.Errorf("defaults %s %s %s", cfg.front.caCert, cfg.front.cert, cfg.front.key)
	}
}
