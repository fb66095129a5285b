package camp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Entity kinds beyond containers, groups and clusters.
const (
	// KindProcess is VanillaSoftwareProcess / EmptySoftwareProcess: its
	// install, customize and launch commands run in a container of a
	// base image; checkRunning is polled for service.isUp.
	KindProcess Kind = "process"
	// KindNetwork is brooklyn.networking.VirtualNetwork: a fleet network
	// other entities join by name.
	KindNetwork Kind = "network"
	// KindWebCluster is ControlledDynamicWebAppCluster: a cluster of web
	// members and a load-balancer container in front of them.
	KindWebCluster Kind = "webcluster"
)

// RunsContainer tells whether an entity of kind k runs one container.
func (k Kind) RunsContainer() bool { return k == KindContainer || k == KindProcess }

// Config keys of the software process (Brooklyn's names).
var (
	ProcessImageKeys = []string{"clocker.softwareProcess.image", "softwareProcess.image"}
	// DefaultProcessImage runs software processes: on every host without
	// a registry (see ENVIRONMENT.md).
	DefaultProcessImage = "busybox:latest"
)

// Config keys of VirtualNetwork and of the entities joining networks.
var (
	NetworkIDKeys   = []string{"networkId", "network.id", "network.name"}
	NetworkCIDRKeys = []string{"cidr", "network.cidr"}
	// NetworkListKeys name the extra networks a container joins (Clocker
	// 1.x's network.list), besides its application's.
	NetworkListKeys = []string{"network.list", "networks", "docker.container.networks"}
)

// Placement keys of a container entity (Clocker 1.x).
var (
	StrategyKeys = []string{"docker.container.strategies", "strategies"}
	AffinityKeys = []string{"affinity.rules", "affinityRules"}
)

// Keys of ControlledDynamicWebAppCluster.
var (
	ProxyPortKeys       = []string{"proxy.http.port", "controller.port"}
	MemberPortKeys      = []string{"http.port", "port"}
	ControllerImageKeys = []string{"clocker.loadBalancer.image"}
	clusterKeys         = []string{"initialSize", "cluster.initial.size", "memberSpec", "dynamiccluster.memberspec", "cluster.max.size", "maxSize"}
)

// Defaults of ControlledDynamicWebAppCluster: Brooklyn's nginx proxy
// port and its web servers' port.
const (
	DefaultProxyPort  = 8000
	DefaultMemberPort = 8080
)

// WebCluster is what a ControlledDynamicWebAppCluster is made of: its
// first child, the controller (a load balancer container), and its
// second, the cluster of members.
type WebCluster struct {
	Controller *Node
	Cluster    *Node
	// MemberPort is the port of the members the controller forwards to.
	MemberPort int
}

// UpstreamsFile is where the controller reads its upstreams
// ("ADDR:PORT ADDR:PORT …"), once per connection; Clocker writes it
// whenever the members change.
const UpstreamsFile = "/tmp/clocker-upstreams"

// lbScript is the controller: busybox nc accepting on port, each
// connection handed to the next upstream in turn (a TCP round robin, so
// HTTP and any TCP protocol pass unchanged).
func lbScript(port int) string {
	pick := strings.Join([]string{
		`set -- $(cat ` + UpstreamsFile + ` 2>/dev/null)`,
		`[ $# -gt 0 ] || exit 1`,
		`n=$(( $(cat /tmp/clocker-lb.n 2>/dev/null || echo 0) + 1 ))`,
		`echo $n > /tmp/clocker-lb.n`,
		`eval up=\${$(( n % $# + 1 ))}`,
		`exec nc ${up%:*} ${up##*:}`,
	}, "\n")
	return "cat > /tmp/clocker-lb.sh <<'EOF'\n" + pick + "\nEOF\ntouch " + UpstreamsFile +
		"\nexec nc -ll -p " + strconv.Itoa(port) + " -e sh /tmp/clocker-lb.sh"
}

// kindOfMore maps the types of this file ("" unknown).
func kindOfMore(t string) Kind {
	short := ShortType(t)
	switch short {
	case "VanillaSoftwareProcess", "EmptySoftwareProcess":
		return KindProcess
	case "VirtualNetwork":
		return KindNetwork
	case "ControlledDynamicWebAppCluster":
		return KindWebCluster
	}
	return ""
}

// prepareKind finishes a service node of the kinds of this file.
func prepareKind(n *Node) error {
	switch n.Kind {
	case KindProcess:
		img, ok := firstString(n.Config, ProcessImageKeys...)
		if !ok || img == "" {
			img = DefaultProcessImage
		}
		if !hasTag(img) {
			img += ":latest"
		}
		n.Image = img
		for _, k := range []string{"install.command", "customize.command", "launch.command", "checkRunning.command", "stop.command"} {
			if v, ok := n.Config[k]; ok && v != nil {
				if _, isStr := v.(string); !isStr {
					if _, isDSL := v.(*Call); !isDSL {
						return fmt.Errorf("%s must be a shell command string, got %s", k, describe(v))
					}
				}
			}
		}
	case KindNetwork:
		name, err := NetworkName(n)
		if err != nil {
			return err
		}
		if len(name) > 60 || slugRE(name) != name {
			return fmt.Errorf("networkId %q: want letters, digits, '-', '_' or '.' (at most 60)", name)
		}
		if n.Name == n.Type {
			n.Name = name // unnamed: called by its network
		}
		if v, ok := lookupKey(n.Config, NetworkCIDRKeys); ok {
			if _, err := netip.ParsePrefix(fmt.Sprint(v)); err != nil {
				return fmt.Errorf("cidr %q: want a subnet such as 10.20.0.0/24", fmt.Sprint(v))
			}
		}
		if len(n.Children) > 0 {
			return fmt.Errorf("a VirtualNetwork has no children")
		}
	case KindWebCluster:
		return webCluster(n)
	}
	return nil
}

func slugRE(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func lookupKey(cfg map[string]any, keys []string) (any, bool) {
	for _, k := range keys {
		if v, ok := cfg[k]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

// NetworkName is the fleet network a VirtualNetwork makes: its networkId,
// else its YAML id.
func NetworkName(n *Node) (string, error) {
	if v, ok := lookupKey(n.Config, NetworkIDKeys); ok {
		s, isStr := v.(string)
		if !isStr || s == "" {
			return "", fmt.Errorf("networkId must be a string")
		}
		return s, nil
	}
	if n.PlanID != "" {
		return n.PlanID, nil
	}
	return "", fmt.Errorf("a VirtualNetwork needs networkId")
}

// intKey reads an integer config key (def when absent).
func intKey(cfg map[string]any, keys []string, def int) (int, error) {
	v, ok := lookupKey(cfg, keys)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s: %v is not a port", keys[0], v)
	}
	return n, nil
}

// webCluster builds a ControlledDynamicWebAppCluster's two children: the
// controller, Clocker's TCP round-robin balancer in a busybox container
// publishing proxy.http.port, and the DynamicCluster holding the
// memberSpec, the sizes and the policies (Brooklyn's resize goes to the
// cluster too).
func webCluster(n *Node) error {
	proxyPort, err := intKey(n.Config, ProxyPortKeys, DefaultProxyPort)
	if err != nil {
		return err
	}
	cl := &Node{Type: "org.apache.brooklyn.entity.webapp.DynamicWebAppCluster", Kind: KindCluster,
		Name: n.Name + " cluster", Config: map[string]any{}, Policies: n.Policies}
	n.Policies = nil
	for _, k := range clusterKeys {
		if v, ok := n.Config[k]; ok {
			cl.Config[k] = v
			delete(n.Config, k)
		}
	}
	if err := memberSpec(cl); err != nil {
		return err
	}
	if cl.MemberSpec == nil {
		return fmt.Errorf("a ControlledDynamicWebAppCluster needs memberSpec: $brooklyn:entitySpec({type: …})")
	}
	if !cl.MemberSpec.Kind.RunsContainer() {
		return fmt.Errorf("memberSpec: a web member runs a container (docker:IMAGE, VanillaSoftwareProcess), not %s", cl.MemberSpec.Type)
	}
	memberPort, err := intKey(n.Config, MemberPortKeys, 0)
	if err != nil {
		return err
	}
	if memberPort == 0 {
		if memberPort, err = intKey(cl.MemberSpec.Config, MemberPortKeys, 0); err != nil {
			return err
		}
	}
	if memberPort == 0 {
		if v, ok := lookupKey(cl.MemberSpec.Config, []string{"openPorts", "docker.container.openPorts"}); ok {
			if l, isList := v.([]any); isList && len(l) > 0 {
				memberPort, _ = strconv.Atoi(fmt.Sprint(l[0]))
			}
		}
	}
	if memberPort == 0 {
		memberPort = DefaultMemberPort
	}
	img, ok := firstString(n.Config, ControllerImageKeys...)
	if !ok || img == "" {
		img = DefaultProcessImage
	}
	if !hasTag(img) {
		img += ":latest"
	}
	ctl := &Node{Type: "docker:" + img, Kind: KindContainer, Image: img, Name: n.Name + " controller",
		Config: map[string]any{"openPorts": []any{proxyPort}, "commands": lbScript(proxyPort)}}
	n.Web = &WebCluster{Controller: ctl, Cluster: cl, MemberPort: memberPort}
	n.Children = append([]*Node{ctl, cl}, n.Children...)
	return nil
}

// EachCall calls fn for every DSL call of the plan: entities' config,
// member specs, sensors and adjuncts.
func (p *Plan) EachCall(fn func(n *Node, c *Call) error) error {
	visit := func(n *Node) error {
		vals := []any{n.Config}
		for _, s := range n.Initializers {
			vals = append(vals, s.Value)
		}
		for _, list := range [][]Adjunct{n.Policies, n.Enrichers} {
			for _, a := range list {
				vals = append(vals, a.Config)
			}
		}
		for _, v := range vals {
			if err := p.walk(n, v, func(c *Call) error { return fn(n, c) }); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range p.Nodes {
		if err := visit(n); err != nil {
			return err
		}
		if n.MemberSpec != nil {
			if err := visit(n.MemberSpec); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNetworks resolves the networks containers join (network.list): a
// VirtualNetwork of the plan (by networkId or YAML id) is waited for;
// another name is a fleet network the deployer checks exists.
func (p *Plan) checkNetworks() error {
	byName := map[string]*Node{}
	for _, n := range p.Nodes {
		if n.Kind != KindNetwork {
			continue
		}
		name, _ := NetworkName(n)
		if o, dup := byName[name]; dup {
			return fmt.Errorf("%s and %s both make network %s", o.Label(), n.Label(), name)
		}
		byName[name] = n
		if n.PlanID != "" {
			byName[n.PlanID] = n
		}
	}
	resolve := func(n *Node, waits *[]Wait) error {
		v, ok := lookupKey(n.Config, NetworkListKeys)
		if !ok {
			return nil
		}
		if !n.Kind.RunsContainer() {
			return fmt.Errorf("%s: network.list: only container entities join networks", n.Label())
		}
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		n.Networks = nil
		for _, x := range list {
			s, isStr := x.(string)
			if !isStr || s == "" {
				return fmt.Errorf("%s: network.list: want network names, got %s", n.Label(), describe(x))
			}
			for _, name := range strings.Split(s, ",") {
				name = strings.TrimSpace(name)
				if net, ok := byName[name]; ok {
					name, _ = NetworkName(net)
					addWait(waits, Wait{Target: net, Sensor: "network.id"})
				}
				n.Networks = append(n.Networks, name)
			}
		}
		return nil
	}
	for _, n := range p.Nodes {
		if err := resolve(n, &n.Waits); err != nil {
			return err
		}
		if n.MemberSpec != nil {
			if err := resolve(n.MemberSpec, nil); err != nil {
				return err
			}
		}
	}
	return nil
}
