package engineapi

// Legacy links (--link on the default bridge) as an engine serves them
// (moby's daemon/links): the variables it sets in the linking container
// and the names it writes in its /etc/hosts. Clocker sets them itself for
// a link to a container on another host, which the engine cannot see.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// LegacyLinks are the links an engine serves on its default bridge (env,
// /etc/hosts). On a user network a link is only a name, answered
// fleet-wide by the fleet DNS (and may name a container that does not
// exist yet), so it is not one of these.
func LegacyLinks(hc *container.HostConfig) []string {
	if hc == nil {
		return nil
	}
	switch hc.NetworkMode {
	case "", "default", "bridge":
		return hc.Links
	}
	return nil
}

// ParseLink splits a link "NAME[:ALIAS]" (or an inspect's
// "/NAME:/PARENT/ALIAS"); the alias is the name when none is given.
func ParseLink(l string) (ref, alias string) {
	ref, alias, ok := strings.Cut(l, ":")
	ref = strings.TrimPrefix(ref, "/")
	if !ok || alias == "" {
		alias = ref
	}
	return ref, alias[strings.LastIndex(alias, "/")+1:]
}

// LinkTarget is what a link's variables tell of the linked container.
type LinkTarget struct {
	// IP is its address the linking container reaches it at.
	IP netip.Addr
	// Env is its Config.Env; ExposedPorts its Config.ExposedPorts.
	Env          []string
	ExposedPorts network.PortSet
}

// LinkEnv is what an engine sets in container parent for its link alias
// to t (daemon/links Link.ToEnv): ALIAS_PORT (the lowest port, TCP
// first), per port ALIAS_PORT_P_PROTO{,_ADDR,_PORT,_PROTO}, per run of
// three or more contiguous ports ..._START/_END, ALIAS_NAME=/parent/alias,
// and ALIAS_ENV_K for t's env (HOME and PATH aside).
func LinkEnv(parent, alias string, t LinkTarget) []string {
	name := "/" + strings.TrimPrefix(parent, "/") + "/" + alias
	prefix := strings.ReplaceAll(strings.ToUpper(alias), "-", "_")
	ip := t.IP.String()
	ports := make([]network.Port, 0, len(t.ExposedPorts))
	for p := range t.ExposedPorts {
		ports = append(ports, p)
	}
	// The engine's order: by number, TCP first for one number.
	slices.SortFunc(ports, func(a, b network.Port) int {
		if a.Num() != b.Num() {
			return int(a.Num()) - int(b.Num())
		}
		at, bt := strings.EqualFold(string(a.Proto()), "tcp"), strings.EqualFold(string(b.Proto()), "tcp")
		switch {
		case at && !bt:
			return -1
		case bt && !at:
			return 1
		}
		return strings.Compare(string(a.Proto()), string(b.Proto()))
	})
	var env []string
	if len(ports) > 0 {
		p := ports[0]
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%s", prefix, p.Proto(), ip, p.Port()))
	}
	key := func(p network.Port) string {
		return fmt.Sprintf("%s_PORT_%s_%s", prefix, p.Port(), strings.ToUpper(string(p.Proto())))
	}
	for i := 0; i < len(ports); {
		p := ports[i]
		j := nextContiguous(ports, int(p.Num()), i)
		if j > i+1 {
			q := ports[j]
			env = append(env,
				fmt.Sprintf("%s_START=%s://%s:%s", key(p), p.Proto(), ip, p.Port()),
				fmt.Sprintf("%s_ADDR=%s", key(p), ip),
				fmt.Sprintf("%s_PROTO=%s", key(p), p.Proto()),
				fmt.Sprintf("%s_PORT_START=%s", key(p), p.Port()),
				fmt.Sprintf("%s_PORT_%s_%s_END=%s://%s:%s", prefix, p.Port(), strings.ToUpper(string(q.Proto())), q.Proto(), ip, q.Port()),
				fmt.Sprintf("%s_PORT_%s_%s_PORT_END=%s", prefix, p.Port(), strings.ToUpper(string(q.Proto())), q.Port()))
			i = j + 1
			continue
		}
		i++
	}
	for _, p := range ports {
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%s", key(p), p.Proto(), ip, p.Port()),
			fmt.Sprintf("%s_ADDR=%s", key(p), ip),
			fmt.Sprintf("%s_PORT=%s", key(p), p.Port()),
			fmt.Sprintf("%s_PROTO=%s", key(p), p.Proto()))
	}
	env = append(env, fmt.Sprintf("%s_NAME=%s", prefix, name))
	for _, kv := range t.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", prefix, k, v))
	}
	return env
}

// nextContiguous is the index of the last port of the run of contiguous
// numbers that starts at index (daemon/links).
func nextContiguous(ports []network.Port, value, index int) int {
	if index+1 == len(ports) {
		return index
	}
	for i := index + 1; i < len(ports); i++ {
		if int(ports[i].Num()) > value+1 {
			return i - 1
		}
		value++
	}
	return len(ports) - 1
}

// MergeEnv is the env of a container whose engine-made variables are
// base: the container's own env wins a name both set, as the engine
// replaces its variables with the container's.
func MergeEnv(base, own []string) []string {
	set := map[string]bool{}
	for _, kv := range own {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	out := make([]string, 0, len(base)+len(own))
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			out = append(out, kv)
		}
	}
	return append(out, own...)
}

// LinkHosts are the /etc/hosts names an engine writes for a link: the
// alias, the linked container's hostname and, unless the alias is it, its
// name; as ExtraHosts entries NAME:IP.
func LinkHosts(alias, hostname, name string, ip netip.Addr) []string {
	names := []string{alias}
	if hostname != "" && hostname != alias {
		names = append(names, hostname)
	}
	if name = strings.TrimPrefix(name, "/"); name != alias && name != hostname {
		names = append(names, name)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + ":" + ip.String()
	}
	return out
}

// ShowLinks returns a container's inspect answer obj with the links
// Clocker served across hosts over network net (kept as that endpoint's
// Links, "/NAME:ALIAS") added to HostConfig.Links in an engine's form
// ("/NAME:/PARENT/ALIAS"); obj itself, byte for byte, when it has none.
func ShowLinks(obj []byte, net string) []byte {
	if !bytes.Contains(obj, []byte(`"`+net+`"`)) {
		return obj
	}
	s, e, ok := valueSpan(obj, []string{"NetworkSettings", "Networks", net, "Links"})
	if !ok {
		return obj
	}
	var served []string
	if json.Unmarshal(obj[s:e], &served) != nil || len(served) == 0 {
		return obj
	}
	var name string
	if s, e, ok := valueSpan(obj, []string{"Name"}); ok {
		_ = json.Unmarshal(obj[s:e], &name)
	}
	start, end, ok := valueSpan(obj, []string{"HostConfig", "Links"})
	if !ok {
		return obj
	}
	var links []string
	_ = json.Unmarshal(obj[start:end], &links)
	for _, l := range served {
		ref, alias := ParseLink(l)
		links = append(links, "/"+ref+":"+"/"+strings.TrimPrefix(name, "/")+"/"+alias)
	}
	enc, err := json.Marshal(links)
	if err != nil {
		return obj
	}
	return replaceSpan(obj, start, end, enc)
}
