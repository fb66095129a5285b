//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// Fleet networks on the three engines: a VXLAN overlay across the hosts'
// namespaces, names answered by each host's agent.

// fnHost is the name of engine i (also its network namespace).
func fnHost(i int) string { return fleet.Engines[i].Name }

// fnHTTPD runs a busybox httpd serving its own name on host i, in net.
func fnHTTPD(t testing.TB, name string, host int, network string, extra ...string) {
	t.Helper()
	args := []string{"run", "-d", "--name", name, "--network", network, "-e", "constraint:node==" + fnHost(host)}
	args = append(args, extra...)
	args = append(args, "busybox", "sh", "-c", "mkdir -p /www && echo "+name+" > /www/index.html && exec httpd -f -p 80 -h /www")
	mustDocker(t, args...)
	if got := hostOf(t, name); got != fnHost(host) {
		t.Fatalf("%s runs on %s, want %s", name, got, fnHost(host))
	}
}

// fnGet fetches http://target/ from container from.
func fnGet(t testing.TB, from, target string, secs int) (string, bool) {
	t.Helper()
	r := docker(t, nil, "exec", from, "timeout", fmt.Sprint(secs), "wget", "-q", "-O", "-", "http://"+target+"/")
	return strings.TrimSpace(r.Stdout), r.Code == 0
}

// fnReach waits until from gets want from target.
func fnReach(t testing.TB, from, target, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		var ok bool
		if got, ok = fnGet(t, from, target, 3); ok && got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s cannot fetch http://%s/ (last answer %q)", from, target, got)
}

// fnUnreachable checks that from cannot fetch from target.
func fnUnreachable(t testing.TB, from, target string) {
	t.Helper()
	if got, ok := fnGet(t, from, target, 3); ok {
		t.Fatalf("%s fetched http://%s/: %q, want no answer", from, target, got)
	}
}

// fnIP is a container's address in a network.
func fnIP(t testing.TB, name, network string) string {
	t.Helper()
	return mustDocker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, name)
}

// fnEngineNets lists the hosts whose engine has a network of that name.
func fnEngineNets(t testing.TB, name string) []string {
	t.Helper()
	var out []string
	for i := range fleet.Engines {
		if engineDocker(t, i, "network", "ls", "-q", "--filter", "name=^"+name+"$") != "" {
			out = append(out, fnHost(i))
		}
	}
	return out
}

// fnDevices lists the Clocker VXLAN devices in host i's namespace.
func fnDevices(t testing.TB, i int) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", fnHost(i), "ip", "-o", "link", "show", "type", "vxlan").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link in %s: %v\n%s", fnHost(i), err, out)
	}
	var devs []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], "ckv-") {
			devs = append(devs, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return devs
}

// fnNetID is the fleet network's ID.
func fnNetID(t testing.TB, name string) string {
	return mustDocker(t, "network", "inspect", "-f", "{{.Id}}", name)
}

func fnCleanupNets(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			docker(t, nil, "network", "rm", n)
		}
	})
}

func TestE2EFleetNetAcrossHosts(t *testing.T) {
	fnCleanupNets(t, "cfa")
	cleanup(t, "cfa1", "cfa2", "cfa3")
	mustDocker(t, "network", "create", "cfa")
	if got := fnEngineNets(t, "cfa"); len(got) != 0 {
		t.Fatalf("a new fleet network is on engines %v before any member", got)
	}
	fnHTTPD(t, "cfa1", 0, "cfa", "--network-alias", "alpha1")
	fnHTTPD(t, "cfa2", 1, "cfa", "--network-alias", "alpha2")
	if got := fnEngineNets(t, "cfa"); !slices.Equal(got, []string{fnHost(0), fnHost(1)}) {
		t.Fatalf("cfa is on engines %v, want the two member hosts", got)
	}

	t.Run("by name and alias both ways", func(t *testing.T) {
		fnReach(t, "cfa1", "cfa2", "cfa2")
		fnReach(t, "cfa1", "alpha2", "cfa2")
		fnReach(t, "cfa2", "cfa1", "cfa1")
		fnReach(t, "cfa2", "alpha1", "cfa1")
	})
	t.Run("a host that joins later", func(t *testing.T) {
		fnHTTPD(t, "cfa3", 2, "cfa", "--network-alias", "alpha3")
		for _, from := range []string{"cfa1", "cfa2", "cfa3"} {
			for _, to := range []string{"cfa1", "cfa2", "cfa3"} {
				if from != to {
					fnReach(t, from, to, to)
				}
			}
		}
		fnReach(t, "cfa1", "alpha3", "cfa3")
		fnReach(t, "cfa3", "alpha1", "cfa1")
	})
	t.Run("ls once, inspect lists every host's members", func(t *testing.T) {
		names := strings.Fields(mustDocker(t, "network", "ls", "--format", "{{.Name}}"))
		if c := countOf(names, "cfa"); c != 1 {
			t.Errorf("network ls shows cfa %d times: %v", c, names)
		}
		var nets []struct {
			Scope      string
			Containers map[string]struct{ Name, IPv4Address string }
			IPAM       struct{ Config []struct{ Subnet string } }
		}
		if err := json.Unmarshal([]byte(mustDocker(t, "network", "inspect", "cfa")), &nets); err != nil || len(nets) != 1 {
			t.Fatalf("inspect: %v %v", err, nets)
		}
		var members []string
		for _, c := range nets[0].Containers {
			members = append(members, c.Name)
		}
		slices.Sort(members)
		if !slices.Equal(members, []string{"cfa1", "cfa2", "cfa3"}) {
			t.Errorf("inspect Containers: %v", members)
		}
		subnet := netip.MustParsePrefix(nets[0].IPAM.Config[0].Subnet)
		if !netip.MustParsePrefix("10.200.0.0/16").Overlaps(subnet) {
			t.Errorf("subnet %s is not from the fleet pool", subnet)
		}
	})
}

// A host added to the fleet while it runs (here: one taken out, which
// removes its agent, and added back with `clocker host add`)
// gets an agent and joins an existing network when its first member
// arrives.
func TestE2EFleetNetHostAddedAtRuntime(t *testing.T) {
	late := fleet.Engines[2]
	fnCleanupNets(t, "cfl")
	cleanup(t, "cfl1", "cfl3")
	mustDocker(t, "network", "create", "cfl")
	fnHTTPD(t, "cfl1", 0, "cfl")

	mustClockerHost(t, "drain", late.Name)
	mustClockerHost(t, "rm", late.Name)
	readded := false
	t.Cleanup(func() {
		if !readded {
			clockerHost(t, "add", late.Name+"="+late.TCP)
		}
	})
	// Removing the host removes Clocker's agent from it: it comes back
	// as a fresh machine would.
	if out := engineDocker(t, 2, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "clocker-agent-") {
		t.Fatalf("the removed host still runs an agent: %s", out)
	}
	mustClockerHost(t, "add", late.Name+"="+late.TCP)
	readded = true
	waitFor(t, 90*time.Second, "an agent on the added host", func() bool {
		return strings.Contains(engineDocker(t, 2, "ps", "--format", "{{.Names}}"), "clocker-agent-"+late.Name)
	})
	fnHTTPD(t, "cfl3", 2, "cfl")
	fnReach(t, "cfl1", "cfl3", "cfl3")
	fnReach(t, "cfl3", "cfl1", "cfl1")
}

func TestE2EFleetNetIsolationConnect(t *testing.T) {
	fnCleanupNets(t, "cfi1", "cfi2")
	cleanup(t, "cfb1", "cfb2", "cfm")
	mustDocker(t, "network", "create", "cfi1")
	mustDocker(t, "network", "create", "-d", "overlay", "cfi2")
	fnHTTPD(t, "cfb1", 0, "cfi1")
	fnHTTPD(t, "cfb2", 1, "cfi2")
	ip2 := fnIP(t, "cfb2", "cfi2")

	t.Run("two networks are isolated", func(t *testing.T) {
		fnUnreachable(t, "cfb1", ip2)
		fnUnreachable(t, "cfb1", "cfb2")
	})
	t.Run("a container on two networks", func(t *testing.T) {
		fnHTTPD(t, "cfm", 2, "cfi1")
		mustDocker(t, "network", "connect", "cfi2", "cfm")
		fnReach(t, "cfm", "cfb1", "cfb1")
		fnReach(t, "cfm", "cfb2", "cfb2")
		fnReach(t, "cfb1", "cfm", "cfm")
		fnReach(t, "cfb2", fnIP(t, "cfm", "cfi2"), "cfm")
	})
	t.Run("connect and disconnect across hosts", func(t *testing.T) {
		mustDocker(t, "network", "connect", "cfi1", "cfb2") // cfb2 runs on host 2, cfb1 on host 1
		fnReach(t, "cfb1", "cfb2", "cfb2")
		fnReach(t, "cfb2", fnIP(t, "cfb1", "cfi1"), "cfb1")
		ip := fnIP(t, "cfb2", "cfi1")
		mustDocker(t, "network", "disconnect", "cfi1", "cfb2")
		fnUnreachable(t, "cfb1", ip)
	})
}

// fnHostDNS is host i's DNS address: its default bridge's gateway, where
// its agent answers.
func fnHostDNS(t testing.TB, i int) string {
	t.Helper()
	return engineDocker(t, i, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge")
}

// fnWaitHostDNS waits until containers created on host i get its DNS
// address (the manager hands it out once it has told the agent).
func fnWaitHostDNS(t testing.TB, i int) {
	t.Helper()
	want := "[" + fnHostDNS(t, i) + "]"
	probe := "cfdnsprobe"
	defer docker(t, nil, "rm", "-f", probe)
	waitFor(t, 30*time.Second, "containers on "+fnHost(i)+" to get the host's DNS address", func() bool {
		docker(t, nil, "rm", "-f", probe)
		mustDocker(t, "create", "--name", probe, "-e", "constraint:node=="+fnHost(i), "busybox", "true")
		return mustDocker(t, "inspect", "-f", "{{.HostConfig.Dns}}", probe) == want
	})
}

// fnMetric is the value of one series on Clocker's /metrics (-1: absent).
func fnMetric(t testing.TB, series string) float64 {
	t.Helper()
	resp, err := http.Get(httpURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// fnResolves tells whether container from resolves name (by the
// resolver in its resolv.conf).
func fnResolves(t testing.TB, from, name string) bool {
	t.Helper()
	return docker(t, nil, "exec", from, "timeout", "10", "nslookup", name).Code == 0
}

// Containers that join a fleet network after their creation, from the
// default bridge or a local network of host 1, resolve the members on
// host 2 by name and alias: every container gets its host's DNS address,
// where the agent answers by the networks the querier is on at the time.
// A container of another fleet network on the same host does not.
func TestE2EFleetNetConnectedResolves(t *testing.T) {
	fnCleanupNets(t, "cfc", "cfo", "cfcloc")
	cleanup(t, "cfcb", "cfca", "cfcl", "cfco", "cfob")
	mustDocker(t, "network", "create", "cfc")
	mustDocker(t, "network", "create", "cfo")
	mustDocker(t, "network", "create", "-o", "clocker.scope=local", "--label", "io.clocker.host="+fnHost(0), "cfcloc")
	fnWaitHostDNS(t, 0)
	fnHTTPD(t, "cfcb", 1, "cfc", "--network-alias", "cfcalias")
	fnHTTPD(t, "cfca", 0, "bridge")
	fnHTTPD(t, "cfcl", 0, "cfcloc")
	if got, want := mustDocker(t, "inspect", "-f", "{{.HostConfig.Dns}}", "cfca"), "["+fnHostDNS(t, 0)+"]"; got != want {
		t.Fatalf("a container on the default bridge got DNS %s, want %s", got, want)
	}
	mustDocker(t, "network", "connect", "cfc", "cfca")
	mustDocker(t, "network", "connect", "cfc", "cfcl")
	for _, from := range []string{"cfca", "cfcl"} {
		fnReach(t, from, "cfcb", "cfcb")
		fnReach(t, from, "cfcalias", "cfcb")
	}
	// And the other way: the member on host 2 reaches them by name.
	fnReach(t, "cfcb", "cfca", "cfca")
	fnReach(t, "cfcb", "cfcl", "cfcl")

	t.Run("a member of another network does not resolve them", func(t *testing.T) {
		// cfco is on host 1 too, which is now a member of both networks.
		fnHTTPD(t, "cfco", 0, "cfo")
		fnHTTPD(t, "cfob", 1, "cfo")
		fnReach(t, "cfco", "cfob", "cfob") // its own network's names work
		for _, name := range []string{"cfcb", "cfcalias", "cfca"} {
			if fnResolves(t, "cfco", name) {
				t.Errorf("cfco (on cfo) resolves %s of cfc", name)
			}
		}
		if fnResolves(t, "cfca", "cfob") {
			t.Error("cfca (on cfc) resolves cfob of cfo")
		}
	})
	t.Run("metrics", func(t *testing.T) {
		if v := fnMetric(t, `clocker_fleetnet_network_hosts{network="cfc"}`); v != 2 {
			t.Errorf("cfc member hosts: %v, want 2", v)
		}
		if v := fnMetric(t, `clocker_fleetnet_network_containers{network="cfc"}`); v != 3 {
			t.Errorf("cfc containers: %v, want 3", v)
		}
		// The agents report every few seconds.
		series := `clocker_fleetnet_dns_queries_total{host="` + fnHost(0) + `",result="answered"}`
		waitFor(t, 30*time.Second, series, func() bool { return fnMetric(t, series) > 0 })
	})
	t.Run("after disconnect the names are gone", func(t *testing.T) {
		mustDocker(t, "network", "disconnect", "cfc", "cfcl")
		waitFor(t, 20*time.Second, "cfcl to stop resolving cfcb", func() bool { return !fnResolves(t, "cfcl", "cfcb") })
		if !fnResolves(t, "cfca", "cfcb") {
			t.Error("cfca lost cfcb when cfcl left")
		}
	})
}

// Members of an internal network have no route to their host's DNS
// address: they get their gateway in the network as second server, which
// Docker's resolver falls back to at once (the first is unreachable).
func TestE2EFleetNetInternalResolves(t *testing.T) {
	fnCleanupNets(t, "cfint")
	cleanup(t, "cfint1", "cfint2")
	mustDocker(t, "network", "create", "--internal", "cfint")
	fnWaitHostDNS(t, 0)
	fnHTTPD(t, "cfint1", 0, "cfint", "--network-alias", "intalias")
	fnHTTPD(t, "cfint2", 1, "cfint")
	want := "[" + fnHostDNS(t, 0) + " " + fnGateway(t, 0, "cfint") + "]"
	if got := mustDocker(t, "inspect", "-f", "{{.HostConfig.Dns}}", "cfint1"); got != want {
		t.Errorf("DNS of a member of an internal network: %s, want %s", got, want)
	}
	fnReach(t, "cfint1", "cfint2", "cfint2")
	fnReach(t, "cfint2", "intalias", "cfint1")
}

// --ip outside the slice of the host a container lands on is a 400 and
// makes nothing.
func TestE2EFleetNetIPOutsideSlice(t *testing.T) {
	fnCleanupNets(t, "cfip")
	cleanup(t, "cfip1", "cfip2")
	mustDocker(t, "network", "create", "--subnet", "10.202.9.0/24", "cfip")
	fnHTTPD(t, "cfip1", 0, "cfip", "--ip", "10.202.9.10") // host 1 takes the first slice, 10.202.9.0/27
	r := docker(t, nil, "run", "-d", "--name", "cfip2", "--network", "cfip", "--ip", "10.202.9.11",
		"-e", "constraint:node=="+fnHost(1), "busybox", "sleep", "60")
	if r.Code == 0 || !strings.Contains(r.Stderr, "10.202.9.32/27") {
		t.Fatalf("run with another host's address: %+v", r)
	}
	if out := mustDocker(t, "ps", "-aq", "--filter", "name=^cfip2$"); out != "" {
		t.Errorf("the refused create left a container: %s", out)
	}
	if got := fnEngineNets(t, "cfip"); !slices.Equal(got, []string{fnHost(0)}) {
		t.Errorf("cfip is on engines %v, want host 1 alone", got)
	}
}

func TestE2EFleetNetAgentRestart(t *testing.T) {
	fnCleanupNets(t, "cfr")
	cleanup(t, "cfr1", "cfr2", "cfr3")
	mustDocker(t, "network", "create", "cfr")
	fnHTTPD(t, "cfr1", 0, "cfr")
	fnHTTPD(t, "cfr2", 1, "cfr")
	fnReach(t, "cfr1", "cfr2", "cfr2")
	ip := fnIP(t, "cfr2", "cfr")

	// Traffic by address while host 2's agent restarts: the data plane is
	// in the kernel and stays.
	var fails, oks atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, ok := fnGet(t, "cfr1", ip, 5); ok {
				oks.Add(1)
			} else {
				fails.Add(1)
			}
		}
	}()
	engineDocker(t, 1, "restart", "-t", "1", "clocker-agent-"+fnHost(1))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if fails.Load() > 0 || oks.Load() == 0 {
		t.Errorf("during the agent's restart: %d fetches failed, %d succeeded", fails.Load(), oks.Load())
	}
	// Names come back with the agent, and nothing is duplicated.
	fnReach(t, "cfr1", "cfr2", "cfr2")
	fnReach(t, "cfr2", "cfr1", "cfr1")
	if devs := fnDevices(t, 1); countOf(devs, "ckv-"+fnNetID(t, "cfr")[:11]) != 1 {
		t.Errorf("devices on %s after the restart: %v", fnHost(1), devs)
	}

	t.Run("manager restart", func(t *testing.T) {
		stopServer()
		// Asked of the engine directly: the manager is down.
		if got := engineDocker(t, 0, "exec", "cfr1", "timeout", "5", "wget", "-q", "-O", "-", "http://cfr2/"); got != "cfr2" {
			t.Errorf("without the manager: %q", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := startServer(ctx, false); err != nil {
			t.Fatal(err)
		}
		fnReach(t, "cfr1", "cfr2", "cfr2")
		// The restarted manager goes on: a new member is reached by name,
		// and each host still runs exactly one agent.
		fnHTTPD(t, "cfr3", 2, "cfr")
		fnReach(t, "cfr1", "cfr3", "cfr3")
		fnReach(t, "cfr3", "cfr2", "cfr2")
		for i := range fleet.Engines {
			if out := engineDocker(t, i, "ps", "-aq", "--filter", "label=io.clocker.agent=1"); len(strings.Fields(out)) != 1 {
				t.Errorf("agents on %s: %q", fnHost(i), out)
			}
		}
	})
}

func TestE2EFleetNetRemove(t *testing.T) {
	fnCleanupNets(t, "cfx")
	cleanup(t, "cfx1", "cfx2")
	mustDocker(t, "network", "create", "cfx")
	id := fnNetID(t, "cfx")
	dev := "ckv-" + id[:11]
	fnHTTPD(t, "cfx1", 0, "cfx")
	fnHTTPD(t, "cfx2", 2, "cfx")
	fnReach(t, "cfx1", "cfx2", "cfx2")

	r := docker(t, nil, "network", "rm", "cfx")
	if r.Code == 0 || !strings.Contains(r.Stderr, "active endpoints") {
		t.Fatalf("rm while in use: %+v", r)
	}
	mustDocker(t, "rm", "-f", "cfx1", "cfx2")
	mustDocker(t, "network", "rm", "cfx")
	if got := fnEngineNets(t, "cfx"); len(got) != 0 {
		t.Errorf("after rm, engines %v still have cfx", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := range fleet.Engines {
		for slices.Contains(fnDevices(t, i), dev) {
			if time.Now().After(deadline) {
				t.Fatalf("%s still has %s", fnHost(i), dev)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if r := docker(t, nil, "network", "inspect", "cfx"); r.Code == 0 {
		t.Errorf("inspect after rm: %+v", r)
	}
}

func TestE2EFleetNetBadInput(t *testing.T) {
	fnCleanupNets(t, "cfbad", "cfok")
	mustDocker(t, "network", "create", "--subnet", "10.201.7.0/24", "cfok")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"invalid CIDR", []string{"--subnet", "10.201.300.0/24"}, "invalid"},
		{"overlapping another fleet network", []string{"--subnet", "10.201.7.128/25"}, "overlap"},
		{"overlapping the hosts", []string{"--subnet", netip.PrefixFrom(netip.MustParseAddr(fleet.Engines[0].Addr), 24).Masked().String()}, "overlap"},
		{"gateway outside the subnet", []string{"--subnet", "10.201.8.0/24", "--gateway", "10.201.9.1"}, "gateway"},
		{"duplicate name", nil, "already exists"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := "cfbad"
			if tt.args == nil {
				name = "cfok"
			}
			args := append(append([]string{"network", "create"}, tt.args...), name)
			r := docker(t, nil, args...)
			if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), tt.want) {
				t.Fatalf("docker %v: %+v, want an error about %q", args, r, tt.want)
			}
			if got := fnEngineNets(t, "cfbad"); len(got) != 0 {
				t.Errorf("refused create left cfbad on %v", got)
			}
		})
	}
	if out := mustDocker(t, "network", "ls", "-q", "--filter", "name=cfbad"); out != "" {
		t.Errorf("refused create is listed: %q", out)
	}
}

// --- speed -------------------------------------------------------------------

// inNetns runs fn on a thread inside the named namespace: sockets it opens
// live there.
func inNetns(tb testing.TB, name string, fn func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Back to the original namespace before the thread is let go (a
		// thread left in there, say the main one, would put the whole test
		// process among the namespace's, which the fleet's stop kills).
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			tb.Errorf("own netns: %v", err)
			return // the thread dies with the goroutine
		}
		defer orig.Close()
		ns, err := netns.GetFromName(name)
		if err != nil {
			tb.Errorf("netns %s: %v", name, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			tb.Errorf("enter %s: %v", name, err)
			return
		}
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
		}()
		fn()
	}()
	<-done
}

// tcpThroughput sends n bytes from host a's namespace to a listener on addr
// in host b's namespace and returns bytes per second.
func tcpThroughput(b *testing.B, nsA, nsB, addr string, n int64) float64 {
	var ln net.Listener
	inNetns(b, nsB, func() {
		var err error
		if ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0")); err != nil {
			b.Fatal(err)
		}
	})
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		k, _ := io.Copy(io.Discard, c)
		got <- k
	}()
	var c net.Conn
	inNetns(b, nsA, func() {
		var err error
		if c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); err != nil {
			b.Fatal(err)
		}
	})
	buf := make([]byte, 256<<10)
	start := time.Now()
	var sent int64
	for sent < n {
		k, err := c.Write(buf)
		if err != nil {
			b.Fatal(err)
		}
		sent += int64(k)
	}
	c.Close()
	if k := <-got; k != sent {
		b.Fatalf("received %d of %d bytes", k, sent)
	}
	return float64(sent) / time.Since(start).Seconds()
}

// fnGateway is a host's gateway address in a fleet network, from the
// engine's copy.
func fnGateway(b testing.TB, host int, network string) string {
	return engineDocker(b, host, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network)
}

// BenchmarkFleetNet measures the overlay between host 1's and host 2's
// namespaces against their underlay (TCP throughput), the agent's DNS
// answer latency, and the time from `docker run` to reachable by name.
func BenchmarkFleetNet(b *testing.B) {
	b.Cleanup(func() {
		docker(b, nil, "rm", "-f", "cfbench1", "cfbench2")
		docker(b, nil, "network", "rm", "cfbench")
	})
	mustDocker(b, "network", "create", "cfbench")
	fnHTTPD(b, "cfbench1", 0, "cfbench")
	fnHTTPD(b, "cfbench2", 1, "cfbench", "--network-alias", "benchalias")
	fnReach(b, "cfbench1", "cfbench2", "cfbench2")
	gw1, gw2 := fnGateway(b, 0, "cfbench"), fnGateway(b, 1, "cfbench")

	b.Run("throughput", func(b *testing.B) {
		const n = 500 << 20
		var under, over float64
		for range b.N {
			under += tcpThroughput(b, fnHost(0), fnHost(1), fleet.Engines[1].Addr, n)
			over += tcpThroughput(b, fnHost(0), fnHost(1), gw2, n)
		}
		b.ReportMetric(under/float64(b.N)/1e6, "underlay-MB/s")
		b.ReportMetric(over/float64(b.N)/1e6, "overlay-MB/s")
		b.ReportMetric(over/under, "overlay/underlay")
	})
	// From host 1's namespace, as a member of cfbench there (source gw1):
	// to its gateway, and to the host's DNS address that containers get.
	hostDNS := fnHostDNS(b, 0)
	for _, tt := range []struct{ name, server string }{{"dns", gw1}, {"dns-host-address", hostDNS}} {
		b.Run(tt.name, func(b *testing.B) {
			var conn *dns.Conn
			inNetns(b, fnHost(0), func() {
				d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(gw1)}}
				c, err := d.Dial("udp", net.JoinHostPort(tt.server, "53"))
				if err != nil {
					b.Fatal(err)
				}
				conn = &dns.Conn{Conn: c}
			})
			defer conn.Close()
			var lat latencies
			b.ResetTimer()
			for i := range b.N {
				m := new(dns.Msg)
				m.SetQuestion([]string{"cfbench2.", "benchalias."}[i%2], dns.TypeA)
				start := time.Now()
				if err := conn.WriteMsg(m); err != nil {
					b.Fatal(err)
				}
				r, err := conn.ReadMsg()
				if err != nil || len(r.Answer) == 0 {
					b.Fatalf("answer %v: %v", r, err)
				}
				lat = append(lat, time.Since(start))
			}
			lat.report(b)
		})
	}
	b.Run("run-to-reachable", func(b *testing.B) {
		var conn *dns.Conn
		inNetns(b, fnHost(0), func() {
			var err error
			if conn, err = dns.Dial("udp", net.JoinHostPort(gw1, "53")); err != nil {
				b.Fatal(err)
			}
		})
		defer conn.Close()
		var total, runs time.Duration
		for i := range b.N {
			name := fmt.Sprintf("cfbrun%d", i)
			start := time.Now()
			mustDocker(b, "run", "-d", "--name", name, "--network", "cfbench", "-e", "constraint:node=="+fnHost(1),
				"busybox", "sh", "-c", "mkdir -p /www && echo "+name+" > /www/index.html && exec httpd -f -p 80 -h /www")
			runs += time.Since(start)
			reachable := false
			for !reachable && time.Since(start) < 10*time.Second {
				// A name not yet known is forwarded upstream, which may
				// take its time: ask again rather than wait for that.
				m := new(dns.Msg)
				m.SetQuestion(name+".", dns.TypeA)
				_ = conn.WriteMsg(m)
				_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				r, err := conn.ReadMsg()
				for err == nil && r.Id != m.Id {
					r, err = conn.ReadMsg()
				}
				if err == nil && len(r.Answer) > 0 {
					ip := r.Answer[0].(*dns.A).A.String()
					inNetns(b, fnHost(0), func() {
						c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "80"), 200*time.Millisecond)
						if err == nil {
							c.Close()
							reachable = true
						}
					})
				}
				if !reachable {
					time.Sleep(20 * time.Millisecond)
				}
			}
			spent := time.Since(start)
			docker(b, nil, "rm", "-f", name)
			if !reachable {
				b.Fatalf("%s not reachable by name after %s", name, spent)
			}
			total += spent
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/run-to-reachable")
		b.ReportMetric(float64(runs.Milliseconds())/float64(b.N), "ms/docker-run")
	})
}
