package main

import (
	"strings"
	"testing"
)

func TestIngressFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		wantOn   bool
		wantAddr string
		lo, hi   uint16
		wantMode string
	}{
		{name: "defaults", wantOn: true, wantAddr: "127.0.0.1", lo: 20000, hi: 29999},
		{name: "from the first listen", args: []string{"--listen", "tcp://[::1]:2375", "--listen", "unix:///tmp/x.sock"}, wantOn: true, wantAddr: "::1", lo: 20000, hi: 29999},
		{name: "unix listen is loopback", args: []string{"--listen", "unix:///tmp/x.sock"}, wantOn: true, wantAddr: "127.0.0.1", lo: 20000, hi: 29999},
		{name: "localhost", args: []string{"--listen", "tcp://localhost:2375"}, wantOn: true, wantAddr: "127.0.0.1", lo: 20000, hi: 29999},
		{name: "given", args: []string{"--ingress-address", "10.0.0.5", "--ingress-ports", "30000-30010"}, wantOn: true, wantAddr: "10.0.0.5", lo: 30000, hi: 30010},
		{name: "off", args: []string{"--ingress=false"}, wantAddr: "127.0.0.1", lo: 20000, hi: 29999},
		{name: "bad range", args: []string{"--ingress-ports", "30000"}, wantErr: "want FIRST-LAST"},
		{name: "reversed range", args: []string{"--ingress-ports", "30010-30000"}, wantErr: "want FIRST-LAST"},
		{name: "bad address", args: []string{"--ingress-address", "not an address"}, wantErr: "--ingress-address"},
		{name: "mode", args: []string{"--ingress-mode", "userland"}, wantOn: true, wantAddr: "127.0.0.1", lo: 20000, hi: 29999, wantMode: "userland"},
		{name: "bad mode", args: []string{"--ingress-mode", "fast"}, wantErr: "--ingress-mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeFlags(append([]string{"--data", t.TempDir()}, tt.args...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := cfg.ingress
			if tt.wantMode == "" {
				tt.wantMode = "auto"
			}
			if f.mode != tt.wantMode {
				t.Fatalf("ingress mode %q, want %q", f.mode, tt.wantMode)
			}
			if !strings.HasPrefix(f.instance, "listen=") {
				t.Fatalf("instance %q", f.instance)
			}
			if f.on != tt.wantOn || f.ip.String() != tt.wantAddr || f.lo != tt.lo || f.hi != tt.hi {
				t.Fatalf("ingress flags: on=%v ip=%s ports=%d-%d", f.on, f.ip, f.lo, f.hi)
			}
		})
	}
}
