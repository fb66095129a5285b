package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/agent"
)

// runAgent is `clocker agent`: the per-host side of fleet networks, run by
// the manager as a container on every host (--network host, NET_ADMIN).
func runAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	var cfg agent.Config
	fs.StringVar(&cfg.StatePath, "state", sdn.AgentStateDir+"/"+sdn.AgentStateFile, "the state file the manager writes")
	fs.StringVar(&cfg.Provider, "provider", sdn.DefaultProvider, "SDN provider ("+strings.Join(sdn.Providers(), ", ")+")")
	fs.StringVar(&cfg.ProviderConfig.Netns, "netns", "", "network namespace to act in (a path; default the agent's own)")
	fs.StringVar(&cfg.ResolvConf, "resolv-conf", "/etc/resolv.conf", "where the upstream DNS servers are listed")
	fs.IntVar(&cfg.DNSPort, "dns-port", 53, "port of the fleet name servers")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	cfg.Log = log
	// The manager holds the agent's stdin and stdout attached: states in,
	// acknowledgements out (the log goes to stderr).
	cfg.Pushes, cfg.Acks = os.Stdin, os.Stdout
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("agent running", "state", cfg.StatePath)
	return a.Run(ctx)
}
