package provision

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// Local makes Docker hosts on this machine: each a network namespace on a
// bridge of its own (default clocker0 on 10.213.0.0/24, the bridge holding
// the subnet's last address) with its own dockerd, reached over TCP on
// its address (a private bridge only this machine reaches). The engines
// run detached from the manager (their own session), so a manager that
// dies leaves them running, and its restart adopts them. Needs root.
//
// Options: subnet, bridge, storage-driver (default: the machine engine's,
// then overlay2, fuse-overlayfs, vfs, the first that works), run-dir.
type Local struct {
	log     *slog.Logger
	subnet  netip.Prefix
	gateway netip.Addr
	bridge  string
	dataDir string // engines' data roots and logs
	runDir  string // exec roots, sockets, pid files (short paths)

	mu         sync.Mutex
	used       map[int]string // address index → host name
	driver     string         // the storage driver known to work
	candidates []string
}

// localState is a local machine's record.
type localState struct {
	Index         int
	Netns         string
	Addr          string
	Veth          string
	StorageDriver string
}

// Local's defaults.
const (
	DefaultLocalSubnet = "10.213.0.0/24"
	DefaultLocalBridge = "clocker0"
	localEnginePort    = "2375"
)

func init() { mustRegister("local", newLocal) }

func newLocal(cfg Config) (Provisioner, error) {
	o := cfg.Options
	if err := checkOptions("local", o, "subnet", "bridge", "storage-driver", "run-dir"); err != nil {
		return nil, err
	}
	subnet, err := netip.ParsePrefix(cmp.Or(o["subnet"], DefaultLocalSubnet))
	if err != nil || !subnet.Addr().Is4() || subnet.Bits() > 29 || subnet.Bits() < 16 {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("--local-subnet %q: an IPv4 CIDR from /16 to /29", o["subnet"]))
	}
	subnet = subnet.Masked()
	bridge := cmp.Or(o["bridge"], DefaultLocalBridge)
	if len(bridge) > 11 || bridge == "" { // veths are BRIDGE-N, at most 15 bytes
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("local bridge name %q: 1 to 11 characters", bridge))
	}
	if os.Geteuid() != 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "the local provisioner needs root (network namespaces and dockerd)")
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "the local provisioner needs dockerd on PATH")
	}
	l := &Local{log: cfg.Log, subnet: subnet, gateway: lastAddr(subnet), bridge: bridge,
		dataDir: filepath.Join(cfg.DataDir, "local"), runDir: cmp.Or(o["run-dir"], "/run/clocker-local"),
		used: map[int]string{}, driver: o["storage-driver"]}
	return l, nil
}

// Name implements Provisioner.
func (l *Local) Name() string { return "local" }

// Create implements Provisioner: namespace, veth, address, engine; it
// returns once the engine answers on its socket.
func (l *Local) Create(ctx context.Context, req Request) (Machine, error) {
	if req.Target != "" {
		return Machine{}, errdefs.New(errdefs.ErrInvalid, "the local provisioner takes no target: it makes the machine")
	}
	if err := l.ensureBridge(); err != nil {
		return Machine{}, err
	}
	st, err := l.allocate(req.Name)
	if err != nil {
		return Machine{}, err
	}
	mc := l.machine(req.Name, st)
	if err := l.plumb(st); err != nil {
		_ = l.Destroy(context.WithoutCancel(ctx), mc)
		return Machine{}, err
	}
	st, err = l.start(ctx, req.Name, st, req.Labels)
	if err != nil {
		_ = l.Destroy(context.WithoutCancel(ctx), mc)
		return Machine{}, err
	}
	return l.machine(req.Name, st), nil
}

// Adopt implements Provisioner: the namespace and its link are made again
// if a reboot took them; the engine is started if it does not run.
func (l *Local) Adopt(ctx context.Context, m Machine) (Machine, error) {
	var st localState
	if err := json.Unmarshal(m.State, &st); err != nil || st.Netns == "" {
		return m, fmt.Errorf("local machine %s: bad state: %v", m.Name, err)
	}
	l.mu.Lock()
	l.used[st.Index] = m.Name
	l.mu.Unlock()
	if err := l.ensureBridge(); err != nil {
		return m, err
	}
	if err := l.plumb(st); err != nil {
		return m, err
	}
	if pid := l.enginePID(m.Name); pid > 0 {
		return l.machine(m.Name, st), nil
	}
	l.clearLeftovers(m.Name, st)
	st, err := l.start(ctx, m.Name, st, m.Record.Labels)
	if err != nil {
		return m, err
	}
	return l.machine(m.Name, st), nil
}

// Destroy implements Provisioner: the engine stops (its containers with
// it), then everything Create made goes; the bridge stays for the others.
func (l *Local) Destroy(_ context.Context, m Machine) error {
	var st localState
	if err := json.Unmarshal(m.State, &st); err != nil || st.Netns == "" {
		return fmt.Errorf("local machine %s: bad state: %v", m.Name, err)
	}
	if pid := l.enginePID(m.Name); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, 30*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second)
		}
	}
	l.clearLeftovers(m.Name, st)
	unmountUnder(filepath.Join(l.dataDir, m.Name))
	unmountUnder(filepath.Join(l.runDir, m.Name))
	if link, err := netlink.LinkByName(st.Veth); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			return fmt.Errorf("local machine %s: delete %s: %w", m.Name, st.Veth, err)
		}
	}
	if err := netns.DeleteNamed(st.Netns); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local machine %s: delete namespace %s: %w", m.Name, st.Netns, err)
	}
	_ = os.RemoveAll(filepath.Join(l.runDir, m.Name))
	if err := os.RemoveAll(filepath.Join(l.dataDir, m.Name)); err != nil {
		return fmt.Errorf("local machine %s: %w", m.Name, err)
	}
	l.mu.Lock()
	if l.used[st.Index] == m.Name {
		delete(l.used, st.Index)
	}
	l.mu.Unlock()
	return nil
}

func (l *Local) machine(name string, st localState) Machine {
	raw, _ := json.Marshal(st)
	return Machine{Name: name, Provisioner: "local", State: raw,
		Record: hosts.Record{Name: name, Provisioner: "local", URL: "tcp://" + net.JoinHostPort(st.Addr, localEnginePort)}}
}

// allocate takes the lowest free address of the subnet.
func (l *Local) allocate(name string) (localState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := 1 << (32 - l.subnet.Bits())
	for i := 1; i < size-2; i++ { // not the network, gateway or broadcast address
		if _, ok := l.used[i]; ok {
			continue
		}
		st := localState{Index: i, Netns: l.bridge + "-" + strconv.Itoa(i), Veth: l.bridge + "-" + strconv.Itoa(i),
			Addr: nthAddr(l.subnet, i).String()}
		if _, err := netlink.LinkByName(st.Veth); err == nil {
			continue // another manager's, or a leftover: not ours to take
		}
		l.used[i] = name
		return st, nil
	}
	return localState{}, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("local subnet %s is full", l.subnet))
}

// ensureBridge makes the bridge with the gateway address once, after
// checking that no other interface or route holds the subnet.
func (l *Local) ensureBridge() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	gw := netlink.Addr{IPNet: &net.IPNet{IP: l.gateway.AsSlice(), Mask: net.CIDRMask(l.subnet.Bits(), 32)}}
	br, err := netlink.LinkByName(l.bridge)
	if err != nil {
		if err := l.checkSubnetFree(); err != nil {
			return err
		}
		// A fixed address: a bridge takes its lowest port's otherwise, and
		// changes it as hosts come and go, leaving the namespaces' neighbour
		// entries for the gateway pointing at a MAC that is gone.
		mac := make(net.HardwareAddr, 6)
		_, _ = rand.Read(mac)
		mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.bridge, HardwareAddr: mac}}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("local: make bridge %s: %w", l.bridge, err)
		}
		if br, err = netlink.LinkByName(l.bridge); err != nil {
			return fmt.Errorf("local: bridge %s: %w", l.bridge, err)
		}
	}
	if addrs, err := netlink.AddrList(br, netlink.FAMILY_V4); err == nil {
		for _, a := range addrs {
			if p, ok := netipPrefix(a.IPNet); ok && p != l.subnet {
				return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("bridge %s holds %s, not the local subnet %s: give another --local-bridge or the same --local-subnet", l.bridge, a.IPNet, l.subnet))
			}
		}
	}
	if err := netlink.AddrReplace(br, &gw); err != nil {
		return fmt.Errorf("local: address %s on %s: %w", l.gateway, l.bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("local: bridge %s up: %w", l.bridge, err)
	}
	l.allowForward()
	return nil
}

// checkSubnetFree refuses a subnet another interface or route holds: two
// bridges with one subnet break each other's routes.
func (l *Local) checkSubnetFree() error {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("local: list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, ok := netipPrefix(r.Dst)
		if ok && p.Bits() > 0 && p.Overlaps(l.subnet) {
			dev := ""
			if link, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				dev = " (" + link.Attrs().Name + ")"
			}
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("local subnet %s overlaps %s%s on this machine: choose another with --local-subnet", l.subnet, p, dev))
		}
	}
	return nil
}

// allowForward accepts traffic between the local hosts: a Docker engine
// in the root namespace sets FORWARD to DROP and bridged packets go
// through it (br_netfilter).
func (l *Local) allowForward() {
	rule := []string{"FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT", "-m", "comment", "--comment", "clocker-local"}
	if exec.Command("iptables", append([]string{"-w", "-C"}, rule...)...).Run() == nil {
		return
	}
	if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, rule...)...).CombinedOutput(); err != nil {
		l.log.Warn("local: could not allow forwarding on the bridge", "bridge", l.bridge, "err", err, "out", strings.TrimSpace(string(out)))
	}
}

// plumb makes (or finds) the namespace and its veth into the bridge.
func (l *Local) plumb(st localState) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.GetFromName(st.Netns)
	if err != nil {
		orig, err := netns.Get()
		if err != nil {
			return fmt.Errorf("local: this namespace: %w", err)
		}
		ns, err = netns.NewNamed(st.Netns) // moves this thread into it
		if serr := netns.Set(orig); serr != nil {
			panic(fmt.Sprintf("local: cannot return to the root namespace: %v", serr))
		}
		orig.Close()
		if err != nil {
			return fmt.Errorf("local: make namespace %s: %w", st.Netns, err)
		}
	}
	defer ns.Close()
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("local: namespace %s: %w", st.Netns, err)
	}
	defer in.Close()
	if _, err := in.LinkByName("eth0"); err == nil {
		return nil // plumbed before
	}
	br, err := netlink.LinkByName(l.bridge)
	if err != nil {
		return fmt.Errorf("local: bridge %s: %w", l.bridge, err)
	}
	peer := st.Veth + "p"
	if old, err := netlink.LinkByName(st.Veth); err == nil {
		_ = netlink.LinkDel(old) // its peer was lost with an old namespace
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: st.Veth, MasterIndex: br.Attrs().Index},
		PeerName: peer, PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("local: veth %s: %w", st.Veth, err)
	}
	outer, err := netlink.LinkByName(st.Veth)
	if err == nil {
		err = netlink.LinkSetUp(outer)
	}
	if err != nil {
		return fmt.Errorf("local: veth %s up: %w", st.Veth, err)
	}
	link, err := in.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("local: veth peer in %s: %w", st.Netns, err)
	}
	addr := netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(st.Addr).To4(), Mask: net.CIDRMask(l.subnet.Bits(), 32)}}
	steps := []func() error{
		func() error { return in.LinkSetName(link, "eth0") },
		func() error { return in.AddrAdd(link, &addr) },
		func() error { return in.LinkSetUp(link) },
		func() error {
			lo, err := in.LinkByName("lo")
			if err != nil {
				return err
			}
			return in.LinkSetUp(lo)
		},
		func() error {
			return in.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: l.gateway.AsSlice()})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("local: address %s in %s: %w", st.Addr, st.Netns, err)
		}
	}
	return nil
}

// start launches the engine in the namespace, trying the storage drivers
// until one works, and waits until it answers.
func (l *Local) start(ctx context.Context, name string, st localState, labels map[string]string) (localState, error) {
	drivers := []string{st.StorageDriver}
	if st.StorageDriver == "" {
		drivers = l.storageDrivers()
	}
	var errs []error
	for _, d := range drivers {
		err := l.launch(ctx, name, st, d, labels)
		if err == nil {
			st.StorageDriver = d
			l.mu.Lock()
			l.driver = d
			l.mu.Unlock()
			return st, nil
		}
		errs = append(errs, fmt.Errorf("storage driver %s: %w", d, err))
		if ctx.Err() != nil {
			break
		}
		l.log.Warn("local: engine did not start; trying the next storage driver", "host", name, "driver", d, "err", err)
		l.clearLeftovers(name, st)
		unmountUnder(filepath.Join(l.dataDir, name))
		_ = os.RemoveAll(filepath.Join(l.dataDir, name, "data"))
	}
	return st, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("local host %s: the engine did not start: %v", name, errors.Join(errs...)))
}

// storageDrivers lists the drivers to try: the one known to work, else
// the machine engine's, then those whose prerequisites are there.
func (l *Local) storageDrivers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.driver != "" {
		return []string{l.driver}
	}
	if l.candidates == nil {
		var out []string
		if d := machineEngineDriver(); d != "" {
			out = append(out, d)
		}
		for _, d := range []string{"overlay2", "fuse-overlayfs", "vfs"} {
			switch d {
			case "overlay2":
				if fs, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(fs), "overlay") {
					continue
				}
			case "fuse-overlayfs":
				if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
					continue
				}
			}
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
		l.candidates = out
	}
	return l.candidates
}

// machineEngineDriver is the storage driver of the machine's own engine,
// which is known to work here ("" when none answers).
func machineEngineDriver() string {
	e, err := engineAt("unix:///var/run/docker.sock")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := e.do(ctx, http.MethodGet, "/info", nil, nil)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info struct{ Driver string }
	_ = json.NewDecoder(resp.Body).Decode(&info)
	switch info.Driver {
	case "overlay2", "fuse-overlayfs", "vfs":
		return info.Driver
	}
	return "" // btrfs, zfs, devicemapper: not tried nested
}

// launch starts dockerd in the namespace, in a session of its own (it
// outlives the manager), and waits for its socket to answer or its exit.
func (l *Local) launch(ctx context.Context, name string, st localState, driver string, engineLabels map[string]string) error {
	data := filepath.Join(l.dataDir, name)
	run := filepath.Join(l.runDir, name)
	for _, d := range []string{filepath.Join(data, "data"), filepath.Join(run, "exec")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	conf := filepath.Join(data, "daemon.json")
	if _, err := os.Stat(conf); err != nil { // its own: the machine's daemon.json must not leak in
		if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
			return err
		}
	}
	_ = os.Remove(filepath.Join(run, "docker.pid")) // stale: the engine is not running
	sock := filepath.Join(run, "docker.sock")
	args := []string{"--net=/run/netns/" + st.Netns, "unshare", "--uts",
		"sh", "-c", `echo "$1" >/proc/sys/kernel/hostname && shift && exec "$@"`, "sh", name,
		"dockerd",
		"--config-file", conf,
		"--data-root", filepath.Join(data, "data"),
		"--exec-root", filepath.Join(run, "exec"),
		"--pidfile", filepath.Join(run, "docker.pid"),
		"-H", "unix://" + sock,
		"-H", "tcp://" + net.JoinHostPort(st.Addr, localEnginePort), "--tls=false",
		"--storage-driver", driver,
		"--cgroup-parent", "/clocker-local/" + name,
		"--containerd-namespace", "clocker-" + name,
		"--containerd-plugins-namespace", "clocker-" + name + "-plugins",
		"--shutdown-timeout", "3",
		"--label", labels.Provisioner + "=local",
	}
	for _, k := range slices.Sorted(maps.Keys(engineLabels)) {
		args = append(args, "--label", k+"="+engineLabels[k])
	}
	logf, err := os.OpenFile(filepath.Join(data, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s clocker: starting dockerd (%s)\n", time.Now().Format(time.RFC3339), driver)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it if it dies while we run
	e, _ := engineAt("unix://" + sock)
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := e.do(pctx, http.MethodGet, "/_ping", nil, nil)
		cancel()
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("dockerd exited (%v); its log: %s", err, logTail(filepath.Join(data, "dockerd.log")))
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return fmt.Errorf("no answer on %s after 60s; its log: %s", sock, logTail(filepath.Join(data, "dockerd.log")))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// enginePID is the running dockerd of a host (0: none).
func (l *Local) enginePID(name string) int {
	raw, err := os.ReadFile(filepath.Join(l.runDir, name, "docker.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "dockerd" || zombie(pid) {
		// A dead engine not yet reaped by its parent (this process, which
		// started it) keeps its name: it runs no more all the same.
		return 0
	}
	return pid
}

// zombie tells whether process pid has exited and awaits its reaping.
func zombie(pid int) bool {
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return strings.Contains(string(st), ") Z ")
}

// clearLeftovers kills what is left of an engine's last life: processes in
// its namespace (containerd, shims) and in its cgroup (containers); a
// containerd still exiting makes the next dockerd give up.
func (l *Local) clearLeftovers(name string, st localState) {
	var pids []int
	if fi, err := os.Stat("/run/netns/" + st.Netns); err == nil {
		ino := fi.Sys().(*syscall.Stat_t).Ino
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			var s syscall.Stat_t
			if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &s) == nil && s.Ino == ino {
				pids = append(pids, pid)
			}
		}
	}
	_ = filepath.WalkDir("/sys/fs/cgroup/clocker-local/"+name, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			raw, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(raw)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		return nil
	})
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		waitGone(pid, 10*time.Second)
	}
	_ = os.Remove(filepath.Join(l.runDir, name, "exec", "containerd", "containerd.pid"))
}

// waitGone waits for a process to exit.
func waitGone(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		// A zombie child of ours counts as gone.
		if zombie(pid) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mps = append(mps, f[4])
		}
	}
	slices.SortFunc(mps, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range mps {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

// logTail is the end of an engine's log, for errors.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 2048 {
		_, _ = f.Seek(-2048, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, " | ")
}

func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// lastAddr is the subnet's last usable address, the bridge's (.254 of a /24).
func lastAddr(p netip.Prefix) netip.Addr { return nthAddr(p, (1<<(32-p.Bits()))-2) }

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones).Masked(), true
}

var _ Provisioner = (*Local)(nil)
