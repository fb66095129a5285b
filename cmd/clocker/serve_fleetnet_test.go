package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNetworkPoolFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    netip.Prefix
		wantErr string
	}{
		{name: "default", want: netip.MustParsePrefix("10.200.0.0/16")},
		{name: "given", args: []string{"--network-pool", "172.30.0.0/20"}, want: netip.MustParsePrefix("172.30.0.0/20")},
		{name: "not a CIDR", args: []string{"--network-pool", "10.200.0.0"}, wantErr: "--network-pool 10.200.0.0"},
		{name: "host bits set", args: []string{"--network-pool", "10.200.0.1/16"}, wantErr: "want an IPv4 CIDR"},
		{name: "smaller than one network", args: []string{"--network-pool", "10.200.0.0/25"}, wantErr: "/24 or larger"},
		{name: "IPv6", args: []string{"--network-pool", "fd00::/48"}, wantErr: "IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.fleetnet.config()
			if err != nil || got.Pool != tt.want {
				t.Errorf("pool %v (%v), want %v", got.Pool, err, tt.want)
			}
		})
	}
}
