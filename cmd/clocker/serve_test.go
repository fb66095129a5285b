package main

import (
	"strings"
	"testing"

	"github.com/clocker/clocker/hosts"
)

func TestCheckListen(t *testing.T) {
	tests := []struct {
		name     string
		listen   string
		insecure bool
		wantErr  string
	}{
		{name: "loopback v4", listen: "tcp://127.0.0.1:2375"},
		{name: "loopback v6", listen: "tcp://[::1]:2375"},
		{name: "localhost", listen: "tcp://localhost:2375"},
		{name: "unix", listen: "unix:///run/clocker.sock"},
		{name: "public refused", listen: "tcp://0.0.0.0:2375", wantErr: "would expose root on every host"},
		{name: "lan refused", listen: "tcp://10.1.2.3:2375", wantErr: "--insecure"},
		{name: "public with insecure", listen: "tcp://0.0.0.0:2375", insecure: true},
		{name: "no port", listen: "tcp://127.0.0.1", wantErr: "want tcp://HOST:PORT"},
		{name: "unix without path", listen: "unix://", wantErr: "want unix:///PATH"},
		{name: "bad scheme", listen: "http://127.0.0.1:2375", wantErr: "scheme must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkListen(tt.listen, tt.insecure)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseEngineFlag(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want hosts.Record
	}{
		{name: "url only", in: "tcp://10.0.0.1:2375", want: hosts.Record{URL: "tcp://10.0.0.1:2375"}},
		{name: "named", in: "h1=tcp://10.0.0.1:2375", want: hosts.Record{Name: "h1", URL: "tcp://10.0.0.1:2375"}},
		{name: "named unix", in: "local=unix:///var/run/docker.sock", want: hosts.Record{Name: "local", URL: "unix:///var/run/docker.sock"}},
		{name: "equals inside url", in: "unix:///run/a=b.sock", want: hosts.Record{URL: "unix:///run/a=b.sock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseEngineFlag(tt.in); got != tt.want {
				t.Fatalf("parseEngineFlag(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseServeFlags(t *testing.T) {
	cfg, err := parseServeFlags([]string{"--engine", "h1=tcp://10.0.0.1:2375", "--engine", "tcp://10.0.0.2:2375", "--data", "/tmp/x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.listen) != 1 || cfg.listen[0] != "tcp://127.0.0.1:2375" {
		t.Fatalf("default listen = %v", cfg.listen)
	}
	if len(cfg.engines) != 2 || cfg.maxBody != 10<<20 {
		t.Fatalf("cfg = %+v", cfg)
	}
	if _, err := parseServeFlags([]string{"--listen", "tcp://0.0.0.0:2375"}); err == nil {
		t.Fatal("a public listen address was accepted without --insecure")
	}
	if _, err := parseServeFlags([]string{"--max-body", "0"}); err == nil {
		t.Fatal("--max-body 0 accepted")
	}
	if _, err := parseServeFlags([]string{"stray"}); err == nil {
		t.Fatal("a stray argument was accepted")
	}
	if _, err := newLogger("loud"); err == nil {
		t.Fatal("--log-level loud accepted")
	}
}
