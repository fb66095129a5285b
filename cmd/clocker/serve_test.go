package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

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
			if got := parseEngineFlag(tt.in); !reflect.DeepEqual(got, tt.want) {
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

func TestPlacementFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	yml := write("c.yaml", "strategy: max-containers=12,binpack\novercommit: 1.5\nusage-interval: 3s\n")
	js := write("c.json", `{"strategy": "random", "overcommit": 2}`)
	typo := write("typo.yaml", "stratgy: spread\n")
	tests := []struct {
		name       string
		args       []string
		strategy   string
		overcommit float64
		interval   time.Duration
		wantErr    string
	}{
		{name: "defaults", strategy: "spread", overcommit: 1, interval: 5 * time.Second},
		{name: "flags", args: []string{"--strategy", "max-containers=3,breadth-first", "--overcommit", "1.25"}, strategy: "max-containers=3,breadth-first", overcommit: 1.25, interval: 5 * time.Second},
		{name: "yaml file", args: []string{"--config", yml}, strategy: "max-containers=12,binpack", overcommit: 1.5, interval: 3 * time.Second},
		{name: "json file", args: []string{"--config", js}, strategy: "random", overcommit: 2, interval: 5 * time.Second},
		{name: "flags win over the file", args: []string{"--config", yml, "--strategy", "spread"}, strategy: "spread", overcommit: 1.5, interval: 3 * time.Second},
		{name: "unknown strategy", args: []string{"--strategy", "fastest"}, wantErr: `--strategy "fastest": unknown placement strategy "fastest" (known: `},
		{name: "bad option", args: []string{"--strategy", "max-containers=lots"}, wantErr: "not a positive number"},
		{name: "unknown strategy in the file", args: []string{"--config", write("bad.yaml", "strategy: nope\n")}, wantErr: `unknown placement strategy "nope"`},
		{name: "overcommit zero", args: []string{"--overcommit", "0"}, wantErr: "--overcommit 0"},
		{name: "typo in the file", args: []string{"--config", typo}, wantErr: "field stratgy not found"},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "none.yaml")}, wantErr: "no such file"},
		{name: "usage interval too short", args: []string{"--usage-interval", "10ms"}, wantErr: "at least 1s"},
		{name: "max containers per host", args: []string{"--max-containers-per-host", "12", "--strategy", "binpack"}, strategy: "max-containers=12,binpack", overcommit: 1, interval: 5 * time.Second},
		{name: "max containers per host twice", args: []string{"--max-containers-per-host", "12", "--strategy", "max-containers=3,spread"}, wantErr: "one limit, set it once"},
		{name: "max containers per host negative", args: []string{"--max-containers-per-host", "-1"}, wantErr: "want 0 (no limit) or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.strategy != tt.strategy || cfg.overcommit != tt.overcommit || cfg.usageInterval != tt.interval {
				t.Fatalf("cfg = %q %v %v, want %q %v %v", cfg.strategy, cfg.overcommit, cfg.usageInterval, tt.strategy, tt.overcommit, tt.interval)
			}
			s, err := newStrategy(cfg)
			if err != nil || s.Name != tt.strategy || s.Overcommit != tt.overcommit {
				t.Fatalf("newStrategy = %+v, %v", s, err)
			}
		})
	}
}
