package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/sdn/ingress"
)

// ingressFlags are serve's flags for published ports reachable at
// Clocker's own address.
type ingressFlags struct {
	on      bool
	address string
	ports   string
	mode    string

	// Parsed by check.
	ip       net.IP
	lo, hi   uint16
	instance string // names the iptables chains: the same across restarts
}

func (f *ingressFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "ingress", true, "forward published ports from Clocker's own address to the containers' hosts; published host ports become fleet-wide (--ingress=false: another host is chosen instead)")
	fs.StringVar(&f.address, "ingress-address", "", "address to listen on for published ports, shown by docker port (default: the first --listen's, loopback for a unix socket)")
	fs.StringVar(&f.ports, "ingress-ports", "20000-29999", "range the random host ports of -P, -p PORT and HostPort 0 are taken from")
	fs.StringVar(&f.mode, "ingress-mode", ingress.ModeAuto, "how published ports are forwarded: kernel (iptables DNAT, as Docker without its userland proxy), userland (a proxy in Clocker), or auto (kernel when iptables works, else userland)")
}

// check parses the flags; firstListen is the first --listen URL.
func (f *ingressFlags) check(firstListen string) error {
	lo, hi, ok := strings.Cut(f.ports, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil || a == 0 || b < a {
		return fmt.Errorf("--ingress-ports %q: want FIRST-LAST, e.g. 20000-29999", f.ports)
	}
	f.lo, f.hi = uint16(a), uint16(b)
	switch f.mode {
	case ingress.ModeAuto, ingress.ModeKernel, ingress.ModeUserland:
	default:
		return fmt.Errorf("--ingress-mode %q: want auto, kernel or userland", f.mode)
	}
	// A manager restarted with the same address finds its own chains; two
	// managers on one machine cannot share it.
	f.instance = "listen=" + firstListen
	addr := f.address
	if addr == "" {
		addr = "127.0.0.1"
		if u, err := url.Parse(firstListen); err == nil && u.Scheme == "tcp" {
			if h, _, err := net.SplitHostPort(u.Host); err == nil && h != "" {
				addr = h
			}
		}
	}
	if addr == "localhost" {
		addr = "127.0.0.1"
	}
	f.ip = net.ParseIP(addr)
	if f.ip == nil {
		ips, err := net.LookupIP(addr)
		if err != nil || len(ips) == 0 {
			return fmt.Errorf("--ingress-address %q: not an IP address", addr)
		}
		f.ip = ips[0]
	}
	return nil
}

// table builds the ingress once the caches are filled, so that the
// forwards of containers already running come back at once; nil when the
// ingress is off. Its loop is started by serve once everything is wired.
func (f *ingressFlags) table(fleet *hosts.Fleet, reg prometheus.Registerer, log *slog.Logger) (*ingress.Table, error) {
	if !f.on {
		log.Info("ingress off: published ports are reached at each container's host")
		return nil, nil
	}
	cfg := ingress.Config{Address: f.ip, PortMin: f.lo, PortMax: f.hi, Mode: f.mode, Instance: f.instance}
	t, err := ingress.NewTable(fleet, cfg, reg, log)
	if err != nil {
		return nil, err
	}
	log.Info("ingress: published ports forwarded", "address", f.ip.String(), "random-ports", f.ports, "mode", t.Mode(), "asked", f.mode)
	return t, nil
}
