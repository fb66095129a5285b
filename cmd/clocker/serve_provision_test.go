package main

import (
	"strings"
	"testing"
	"time"
)

func TestProvisionFlags(t *testing.T) {
	cfg, err := parseServeFlags([]string{"--local-hosts", "2", "--local-subnet", "10.9.0.0/24", "--local-bridge", "clk9",
		"--provisioner-opt", "ssh.user=admin", "--max-containers-per-host", "4", "--headroom", "2", "--max-hosts", "5",
		"--scale-in", "--scale-in-after", "1m", "--heal-after", "0"})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.provision
	if p.localHosts != 2 || p.opts["local"]["subnet"] != "10.9.0.0/24" || p.opts["local"]["bridge"] != "clk9" ||
		p.opts["ssh"]["user"] != "admin" || !p.autoscale() || !p.wantsLocal() || p.healAfter != 0 {
		t.Fatalf("parsed: %+v", p)
	}
	pol := p.policy(cfg.maxPerHost)
	if pol.PerHost != 4 || pol.Headroom != 2 || pol.MaxHosts != 5 || !pol.ScaleIn || pol.ScaleInAfter != time.Minute || pol.Provisioner != "local" {
		t.Fatalf("policy: %+v", pol)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--headroom", "2"}, "needs --max-containers-per-host"},
		{[]string{"--max-containers-per-host", "4", "--headroom", "2", "--headroom-percent", "10"}, "not both"},
		{[]string{"--max-containers-per-host", "4", "--headroom-percent", "101"}, "within 0-100"},
		{[]string{"--max-containers-per-host", "4", "--headroom", "-1"}, "must be ≥ 0"},
		{[]string{"--max-containers-per-host", "4", "--headroom", "1", "--max-hosts", "-1"}, "--max-hosts must be ≥ 0"},
		{[]string{"--max-hosts", "3"}, "act with --headroom"},
		{[]string{"--scale-in"}, "act with --headroom"},
		{[]string{"--scale-in-after", "0s"}, "--scale-in-after 0s: must be positive"},
		{[]string{"--heal-after", "-1s"}, "--heal-after -1s"},
		{[]string{"--local-hosts", "-1"}, "--local-hosts -1"},
		{[]string{"--provisioner", "cloud"}, `--provisioner "cloud": unknown`},
		{[]string{"--provisioner-opt", "user=admin"}, "want DRIVER.KEY=VALUE"},
		{[]string{"--provisioner-opt", "cloud.region=x"}, `unknown provisioner "cloud"`},
	} {
		_, err := parseServeFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
