//go:build linux

package ingress

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel forwards published ports in the kernel, as Docker does without
// its userland proxy: iptables DNAT, the bytes never leave the kernel.
//
//	client ─► ADDR:PORT ─ nat PREROUTING (from outside) / OUTPUT (local):
//	          DNAT to host IP:PORT ─ nat POSTROUTING: MASQUERADE (replies
//	          come back through the manager) ─ filter FORWARD: ACCEPT
//	          (engines set its policy to DROP) ─► host IP:PORT
//
// Every rule lives in chains of this manager's own (CLOCKER-INGRESS-<inst>-…,
// inst from KernelOptions.Instance) and carries a comment
// "clocker-ingress:<inst> PORT/PROTO"; the chains are flushed at start and
// rebuilt from the caches, never duplicated. An open port is held by a
// socket bound to it, not listening (TCP) or drained (UDP), so that
// another process cannot take it; without a target its TCP connections
// are refused. For a loopback or unspecified address, route_localnet is
// turned on for each interface that leads to a target (loopback-sourced
// packets may then leave by it), with a guard rule in INPUT that drops
// what that would let in besides the replies.
//
// Counters come from the rules: the DNAT rule sees the first packet of
// each connection (or UDP flow), two mangle rules count bytes each way
// (IP packets, headers included); open connections from conntrack.
type Kernel struct {
	ip       net.IP // 4-byte form
	any      bool   // unspecified: every local address
	loop     bool
	localnet bool // route_localnet needed (loopback or unspecified)
	x        *iptables
	ch       chains
	inst     string
	tag      string // comment prefix of every rule
	fb       *Forwarder
	log      *slog.Logger

	mu     sync.Mutex
	ports  map[Key]*kport
	routed map[string]bool // interfaces whose route_localnet is on
}

// KernelOptions configure NewKernel.
type KernelOptions struct {
	// Instance names the chains (hashed); see Config.Instance.
	Instance string
	// Fallback, when set, forwards in userland a port the kernel cannot
	// (a target that is not an IPv4 address, iptables failing); nil: such
	// a port stays held and unforwarded, and the error is logged.
	Fallback *Forwarder
	// Log receives what no caller waits for (default discard).
	Log *slog.Logger
}

// kport is one open port.
type kport struct {
	hold   io.Closer // the placeholder socket
	target string
	rules  []rule
	user   bool  // handed to the fallback
	base   Stats // counters of rules since replaced
}

// rule is one iptables rule: -A chain spec in table.
type rule struct{ table, chain, spec string }

type chains struct{ nat, masq, fwd, guard, in, out string }

func chainNames(inst string) chains {
	p := "CLOCKER-INGRESS-" + inst + "-" // at most 28 bytes with the longest suffix
	return chains{nat: p + "NAT", masq: p + "MASQ", fwd: p + "FWD", guard: p + "GUARD", in: p + "IN", out: p + "OUT"}
}

// jump is a rule in a built-in chain that enters one of ours.
type jump struct{ table, from, to string }

func (k *Kernel) jumps() []jump {
	j := []jump{
		{"nat", "OUTPUT", k.ch.nat},
		{"nat", "POSTROUTING", k.ch.masq},
		{"mangle", "POSTROUTING", k.ch.in},
		{"mangle", "PREROUTING", k.ch.out},
	}
	if !k.loop { // loopback is reached from this machine only
		j = append(j, jump{"nat", "PREROUTING", k.ch.nat}, jump{"filter", "FORWARD", k.ch.fwd})
	}
	if k.localnet {
		j = append(j, jump{"filter", "INPUT", k.ch.guard})
	}
	return j
}

// instanceID is the 6 hex digits that name a manager's chains.
func instanceID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:3])
}

// NewKernel sets up this manager's chains (removing those of a previous
// run of it, and of managers whose process is gone) and returns the
// Kernel; an error when iptables is missing or refuses, or ip is not IPv4.
func NewKernel(ip net.IP, opts KernelOptions) (*Kernel, error) {
	if ip == nil {
		ip = net.IPv4zero
	}
	ip4 := ip.To4()
	if ip4 == nil {
		if !ip.IsUnspecified() {
			return nil, fmt.Errorf("kernel forwarding is IPv4 only, the ingress address is %s", ip)
		}
		ip4 = net.IPv4zero.To4()
	}
	x, err := findIPTables()
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	inst := instanceID(opts.Instance)
	k := &Kernel{
		ip: ip4, any: ip4.IsUnspecified(), loop: ip4.IsLoopback(),
		x: x, ch: chainNames(inst), inst: inst, tag: "clocker-ingress:" + inst,
		fb: opts.Fallback, log: opts.Log,
		ports: map[Key]*kport{}, routed: map[string]bool{},
	}
	k.localnet = k.loop || k.any
	if _, err := x.run("-t", "nat", "-S", "OUTPUT"); err != nil {
		return nil, err
	}
	if err := k.sweep(); err != nil {
		return nil, err
	}
	if err := k.create(); err != nil {
		return nil, err
	}
	return k, nil
}

// Mode implements Forwards.
func (k *Kernel) Mode() string { return ModeKernel }

// Chains names this manager's chains, for logs and tests.
func (k *Kernel) Chains() []string {
	return []string{k.ch.nat, k.ch.masq, k.ch.fwd, k.ch.guard, k.ch.in, k.ch.out}
}

var tables = []string{"nat", "filter", "mangle"}

// jumpComment matches the comment of a jump rule: instance and pid.
var jumpComment = regexp.MustCompile(`--comment "?clocker-ingress:([0-9a-f]{6}):([0-9]+)"?`)

// sweep removes the jumps and chains of this instance (a previous run)
// and of instances whose process is gone (killed managers).
func (k *Kernel) sweep() error {
	var swept []string
	for _, table := range tables {
		out, err := k.x.save(table)
		if err != nil {
			return err
		}
		var owned []string        // chains named like ours
		live := map[string]bool{} // instances with a live process
		var dels []string         // -D lines
		for line := range strings.Lines(out) {
			line = strings.TrimSpace(line)
			if name, ok := strings.CutPrefix(line, ":CLOCKER-INGRESS-"); ok {
				owned = append(owned, "CLOCKER-INGRESS-"+strings.Fields(name)[0])
				continue
			}
			m := jumpComment.FindStringSubmatch(line)
			if m == nil || !strings.HasPrefix(line, "-A ") {
				continue
			}
			pid, _ := strconv.Atoi(m[2])
			if m[1] != k.inst && alive(pid) {
				live[m[1]] = true
				continue
			}
			dels = append(dels, "-D "+strings.TrimPrefix(line, "-A "))
		}
		var flush, drop []string
		for _, c := range owned {
			inst := strings.SplitN(strings.TrimPrefix(c, "CLOCKER-INGRESS-"), "-", 2)[0]
			if live[inst] || inst == k.inst {
				continue // ours is flushed by create
			}
			flush = append(flush, "-F "+c)
			drop = append(drop, "-X "+c)
			swept = append(swept, c)
		}
		lines := append(append(dels, flush...), drop...)
		if len(lines) == 0 {
			continue
		}
		if err := k.x.restore("*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"); err != nil {
			return err
		}
	}
	if len(swept) > 0 {
		sort.Strings(swept)
		k.log.Info("ingress: removed the iptables chains of managers that are gone", "chains", swept)
	}
	return nil
}

// create declares (or flushes) this instance's chains and enters them from
// the built-in chains, one table at a time.
func (k *Kernel) create() error {
	own := map[string][]string{
		"nat":    {k.ch.nat, k.ch.masq},
		"filter": {k.ch.fwd, k.ch.guard},
		"mangle": {k.ch.in, k.ch.out},
	}
	guard := fmt.Sprintf(`! -i lo -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "%s route_localnet guard" -j DROP`, k.tag)
	for _, table := range tables {
		var b strings.Builder
		b.WriteString("*" + table + "\n")
		for _, c := range own[table] {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		if table == "filter" && k.localnet {
			b.WriteString("-A " + k.ch.guard + " " + guard + "\n")
		}
		// Packets of every other flow leave at once, not after a rule
		// per forward.
		for _, c := range own[table] {
			if c != k.ch.nat && c != k.ch.guard {
				fmt.Fprintf(&b, "-A %s -m conntrack ! --ctstate DNAT -m comment --comment \"%s other flows\" -j RETURN\n", c, k.tag)
			}
		}
		for _, j := range k.jumps() {
			if j.table == table {
				fmt.Fprintf(&b, "-I %s 1 %s\n", j.from, k.jumpSpec(j))
			}
		}
		b.WriteString("COMMIT\n")
		if err := k.x.restore(b.String()); err != nil {
			return err
		}
	}
	return nil
}

func (k *Kernel) jumpSpec(j jump) string {
	return fmt.Sprintf(`-m comment --comment "%s:%d" -j %s`, k.tag, os.Getpid(), j.to)
}

// remove takes this instance's jumps and chains away, in one
// iptables-restore: at shutdown the process may not wait for more. When
// that fails (a rule or chain removed by hand), line by line.
func (k *Kernel) remove() error {
	var all strings.Builder
	var each []string
	for _, table := range tables {
		var lines []string
		for _, j := range k.jumps() {
			if j.table == table {
				lines = append(lines, "-D "+j.from+" "+k.jumpSpec(j))
			}
		}
		for _, op := range []string{"-F ", "-X "} {
			for _, c := range k.Chains() {
				if chainTable(k.ch, c) == table {
					lines = append(lines, op+c)
				}
			}
		}
		all.WriteString("*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n")
		for _, l := range lines {
			each = append(each, "*"+table+"\n"+l+"\nCOMMIT\n")
		}
	}
	err := k.x.restore(all.String())
	if err == nil {
		return nil
	}
	for _, p := range each {
		_ = k.x.restore(p) // what is already gone fails, the rest goes
	}
	return err
}

func chainTable(ch chains, c string) string {
	switch c {
	case ch.nat, ch.masq:
		return "nat"
	case ch.fwd, ch.guard:
		return "filter"
	}
	return "mangle"
}

// alive reports whether a process exists (this one counts).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// forwardRules are the rules of one forward to tip:tport.
func (k *Kernel) forwardRules(key Key, tip net.IP, tport uint16) []rule {
	p, port, tp := key.Proto, key.portString(), strconv.Itoa(int(tport))
	comment := func(suffix string) string {
		return fmt.Sprintf(`-m comment --comment "%s %s%s"`, k.tag, key, suffix)
	}
	dst := "-d " + k.ip.String() + "/32"
	orig := " --ctorigdst " + k.ip.String() + " --ctorigdstport " + port
	if k.any {
		dst = "-m addrtype --dst-type LOCAL"
		orig = " --ctorigdstport " + port
	}
	// The connections this forward made, in either direction.
	ct := "-p " + p + " -m conntrack --ctstate DNAT" + orig + " --ctreplsrc " + tip.String() + " --ctreplsrcport " + tp
	rules := []rule{
		{"nat", k.ch.masq, ct + " " + comment("") + " -j MASQUERADE"},
		{"mangle", k.ch.in, ct + " --ctdir ORIGINAL " + comment(" in") + " -j RETURN"},
		{"mangle", k.ch.out, ct + " --ctdir REPLY " + comment(" out") + " -j RETURN"},
	}
	if !k.loop {
		rules = append(rules, rule{"filter", k.ch.fwd, ct + " " + comment("") + " -j ACCEPT"})
	}
	// Last: once it is in, connections are made.
	return append(rules, rule{"nat", k.ch.nat, "-p " + p + " " + dst + " --dport " + port + " " + comment("") +
		" -j DNAT --to-destination " + net.JoinHostPort(tip.String(), tp)})
}

// restorePayload deletes del and appends add, in one iptables-restore.
func restorePayload(del, add []rule) string {
	var b strings.Builder
	for _, table := range tables {
		var lines []string
		for i := len(del) - 1; i >= 0; i-- { // the DNAT rule first
			if r := del[i]; r.table == table {
				lines = append(lines, "-D "+r.chain+" "+r.spec)
			}
		}
		for _, r := range add {
			if r.table == table {
				lines = append(lines, "-A "+r.chain+" "+r.spec)
			}
		}
		if len(lines) > 0 {
			b.WriteString("*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n")
		}
	}
	return b.String()
}

// Open implements Forwards: it binds the placeholder socket of key.
func (k *Kernel) Open(key Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.ports[key]; ok {
		return nil
	}
	h, err := holdPort(k.ip, key)
	if err != nil {
		return err
	}
	k.ports[key] = &kport{hold: h}
	return nil
}

// SetTarget implements Forwards.
func (k *Kernel) SetTarget(key Key, target string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.ports[key]
	if !ok {
		return false
	}
	if p.user {
		k.fb.SetTarget(key, target)
		return true
	}
	if p.target == target {
		return true
	}
	var add []rule
	if target != "" {
		tip, tport, err := ipv4Target(target)
		if err == nil {
			err = k.routeLocalnet(tip)
		}
		if err != nil {
			k.cannot(key, p, target, err)
			return true
		}
		add = k.forwardRules(key, tip, tport)
	}
	if len(p.rules) > 0 {
		if st, err := k.counters(); err == nil {
			p.base = p.base.plus(st[key])
		}
	}
	if err := k.x.restore(restorePayload(p.rules, add)); err != nil {
		k.cannot(key, p, target, err)
		return true
	}
	p.rules, p.target = add, target
	if key.Proto == "udp" && target != "" {
		k.forgetFlows(key)
	}
	return true
}

// cannot handles a forward the kernel cannot make: to the fallback, or
// held without a forward.
func (k *Kernel) cannot(key Key, p *kport, target string, err error) {
	if len(p.rules) > 0 {
		if derr := k.x.restore(restorePayload(p.rules, nil)); derr != nil {
			k.log.Warn("ingress: removing the rules of a forward", "port", key.String(), "err", derr)
		}
		p.rules, p.target = nil, ""
	}
	if k.fb == nil {
		k.log.Error("ingress: cannot forward in the kernel", "port", key.String(), "target", target, "err", err)
		return
	}
	k.log.Warn("ingress: forwarding this port in userland (the kernel cannot)", "port", key.String(), "target", target, "err", err)
	_ = p.hold.Close()
	if oerr := k.fb.Open(key); oerr != nil {
		k.log.Error("ingress: userland listener", "port", key.String(), "err", oerr)
		if h, herr := holdPort(k.ip, key); herr == nil {
			p.hold = h
		}
		return
	}
	p.user = true
	k.fb.SetTarget(key, target)
}

// Close implements Forwards.
func (k *Kernel) Close(key Key) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closeLocked(key)
}

func (k *Kernel) closeLocked(key Key) {
	p, ok := k.ports[key]
	if !ok {
		return
	}
	delete(k.ports, key)
	if p.user {
		k.fb.Close(key)
		return
	}
	if len(p.rules) > 0 {
		if err := k.x.restore(restorePayload(p.rules, nil)); err != nil {
			k.log.Warn("ingress: removing the rules of a forward", "port", key.String(), "err", err)
		}
	}
	_ = p.hold.Close()
}

// CloseAll implements Forwards, and takes this manager's chains away
// (with every forward's rules in them).
func (k *Kernel) CloseAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.remove(); err != nil {
		k.log.Warn("ingress: removing the iptables chains", "err", err)
	}
	for key, p := range k.ports {
		p.rules = nil
		k.closeLocked(key)
	}
}

// Keys implements Forwards.
func (k *Kernel) Keys() []Key {
	k.mu.Lock()
	out := make([]Key, 0, len(k.ports))
	for key := range k.ports {
		out = append(out, key)
	}
	k.mu.Unlock()
	sortKeys(out)
	return out
}

// AllStats implements Forwards: rule counters and conntrack, read now.
func (k *Kernel) AllStats() map[Key]Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	counted, err := k.counters()
	if err != nil {
		k.log.Debug("ingress: reading rule counters", "err", err)
	}
	targets := map[Key]string{}
	for key, p := range k.ports {
		if !p.user && p.target != "" {
			targets[key] = p.target
		}
	}
	active := activeFlows(targets)
	out := make(map[Key]Stats, len(k.ports))
	for key, p := range k.ports {
		if p.user {
			if st, ok := k.fb.Stats(key); ok {
				out[key] = st
			}
			continue
		}
		st := p.base
		if len(p.rules) > 0 {
			st = st.plus(counted[key])
		}
		st.Target, st.Kernel = p.target, true
		st.Active = -1
		if active != nil {
			st.Active = active[key]
		}
		out[key] = st
	}
	return out
}

// Stats returns the counters of key.
func (k *Kernel) Stats(key Key) (Stats, bool) {
	st, ok := k.AllStats()[key]
	return st, ok
}

var ruleCounters = regexp.MustCompile(`--comment "?([^"]*)"? .*-c ([0-9]+) ([0-9]+)`)

// counters reads the DNAT and byte-counting rules of this manager.
func (k *Kernel) counters() (map[Key]Stats, error) {
	out := map[Key]Stats{}
	for _, c := range []struct{ table, chain string }{{"nat", k.ch.nat}, {"mangle", k.ch.in}, {"mangle", k.ch.out}} {
		text, err := k.x.run("-t", c.table, "-S", c.chain, "-v")
		if err != nil {
			return out, err
		}
		for line := range strings.Lines(text) {
			m := ruleCounters.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			rest, ok := strings.CutPrefix(m[1], k.tag+" ")
			if !ok {
				continue
			}
			name, dir, _ := strings.Cut(rest, " ")
			key, ok := parseKey(name)
			if !ok {
				continue
			}
			pkts, _ := strconv.ParseUint(m[2], 10, 64)
			byts, _ := strconv.ParseUint(m[3], 10, 64)
			st := out[key]
			switch {
			case c.chain == k.ch.nat:
				st.Connections += pkts
			case dir == "in":
				st.BytesIn += byts
			case dir == "out":
				st.BytesOut += byts
			}
			out[key] = st
		}
	}
	return out, nil
}

func (s Stats) plus(o Stats) Stats {
	s.Connections += o.Connections
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	return s
}

func parseKey(s string) (Key, bool) {
	p, proto, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(p, 10, 16)
	if !ok || err != nil || (proto != "tcp" && proto != "udp") {
		return Key{}, false
	}
	return Key{Proto: proto, Port: uint16(n)}, true
}

// conntrackPath is the table activeFlows reads (tests replace it).
var conntrackPath = "/proc/net/nf_conntrack"

// activeFlows counts the conntrack entries of each forward (TCP: not yet
// closing down); nil when conntrack cannot be read.
func activeFlows(targets map[Key]string) map[Key]int64 {
	f, err := os.Open(conntrackPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	return countFlows(f, targets)
}

func countFlows(r io.Reader, targets map[Key]string) map[Key]int64 {
	out := map[Key]int64{}
	if len(targets) == 0 {
		return out
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || (fs[2] != "tcp" && fs[2] != "udp") {
			continue
		}
		if fs[2] == "tcp" {
			switch fs[5] {
			case "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK":
			default:
				continue
			}
		}
		// The original tuple's dport, then the reply tuple's src and sport.
		var dport, rsrc, rsport string
		seenSrc, seenSport := 0, 0
		for _, f := range fs {
			switch {
			case strings.HasPrefix(f, "src="):
				if seenSrc++; seenSrc == 2 {
					rsrc = f[4:]
				}
			case strings.HasPrefix(f, "sport="):
				if seenSport++; seenSport == 2 {
					rsport = f[6:]
				}
			case strings.HasPrefix(f, "dport=") && dport == "":
				dport = f[6:]
			}
		}
		n, err := strconv.ParseUint(dport, 10, 16)
		if err != nil {
			continue
		}
		key := Key{Proto: fs[2], Port: uint16(n)}
		if t, ok := targets[key]; ok && t == net.JoinHostPort(rsrc, rsport) {
			out[key]++
		}
	}
	return out
}

// ipv4Target splits an IPv4 IP:port.
func ipv4Target(target string) (net.IP, uint16, error) {
	h, p, err := net.SplitHostPort(target)
	if err != nil {
		return nil, 0, err
	}
	ip := net.ParseIP(h).To4()
	n, perr := strconv.ParseUint(p, 10, 16)
	if ip == nil || perr != nil || n == 0 {
		return nil, 0, fmt.Errorf("target %q is not an IPv4 address and port", target)
	}
	return ip, uint16(n), nil
}

// routeLocalnet lets loopback-sourced packets out by the interface that
// leads to ip (and their replies in), when the ingress address is loopback.
func (k *Kernel) routeLocalnet(ip net.IP) error {
	if !k.localnet {
		return nil
	}
	routes, err := netlink.RouteGet(ip)
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("no route to %s: %v", ip, err)
	}
	ifc, err := net.InterfaceByIndex(routes[0].LinkIndex)
	if err != nil {
		return err
	}
	if k.routed[ifc.Name] || ifc.Flags&net.FlagLoopback != 0 {
		return nil
	}
	path := "/proc/sys/net/ipv4/conf/" + ifc.Name + "/route_localnet"
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("route_localnet on %s: %w", ifc.Name, err)
	}
	k.routed[ifc.Name] = true
	k.log.Info("ingress: route_localnet on, for loopback forwards", "interface", ifc.Name)
	return nil
}

// forgetFlows deletes the UDP conntrack entries of a port: datagrams that
// came before the DNAT rule made entries without it, which would live on
// as long as the client keeps sending.
func (k *Kernel) forgetFlows(key Key) {
	f := &netlink.ConntrackFilter{}
	err := f.AddProtocol(unix.IPPROTO_UDP)
	if err == nil {
		err = f.AddPort(netlink.ConntrackOrigDstPort, key.Port)
	}
	if err == nil && !k.any {
		err = f.AddIP(netlink.ConntrackOrigDstIP, k.ip)
	}
	if err == nil {
		_, err = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	}
	if err != nil {
		k.log.Debug("ingress: deleting conntrack entries", "port", key.String(), "err", err)
	}
}

// holdPort binds the placeholder of a port. A TCP socket that is bound
// and not listening holds the port (no SO_REUSEADDR: no other bind
// succeeds) and refuses connections; a UDP socket is drained.
func holdPort(ip net.IP, key Key) (io.Closer, error) {
	addr := net.JoinHostPort(ip.String(), key.portString())
	switch key.Proto {
	case "tcp":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("socket", err)}
		}
		sa := &unix.SockaddrInet4{Port: int(key.Port)}
		copy(sa.Addr[:], ip.To4())
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: tcpAddr(addr), Err: os.NewSyscallError("bind", err)}
		}
		return fdCloser(fd), nil
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: int(key.Port)})
		if err != nil {
			return nil, err
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFrom(buf); errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}()
		return c, nil
	}
	return nil, fmt.Errorf("%s: %w", key, ErrProto)
}

func tcpAddr(s string) net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", s)
	return a
}

type fdCloser int

func (f fdCloser) Close() error { return unix.Close(int(f)) }

// iptables runs the iptables commands.
type iptables struct{ cmdPath, savePath, restorePath string }

func findIPTables() (*iptables, error) {
	look := func(name string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
			p := dir + "/" + name
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found", name)
	}
	var x iptables
	var err error
	if x.cmdPath, err = look("iptables"); err != nil {
		return nil, err
	}
	if x.savePath, err = look("iptables-save"); err != nil {
		return nil, err
	}
	if x.restorePath, err = look("iptables-restore"); err != nil {
		return nil, err
	}
	return &x, nil
}

func (x *iptables) run(args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(x.cmdPath, append([]string{"-w"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (x *iptables) save(table string) (string, error) {
	out, err := exec.Command(x.savePath, "-t", table).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("iptables-save -t %s: %v: %s", table, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("iptables-save -t %s: %v", table, err)
	}
	return string(out), nil
}

func (x *iptables) restore(payload string) error {
	if payload == "" {
		return nil
	}
	cmd := exec.Command(x.restorePath, "-w", "--noflush") // -w: legacy iptables shares a lock
	cmd.Stdin = strings.NewReader(payload)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

var _ Forwards = (*Kernel)(nil)
