package console

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// maxRunLine bounds a pasted docker run line.
const maxRunLine = 64 << 10

// RunLine is a `docker run` line made into what the CLI would send: the
// container's name (the create's ?name=) and its create body.
type RunLine struct {
	Name string         `json:"Name"`
	Body map[string]any `json:"Body"`
}

// parseRunLine answers POST /ui/api/runline {"Line": "docker run …"} with
// the RunLine the dry run posts to /v1/fleet/placement; a flag it does
// not know, or a value it cannot read, is a 400 naming it.
func (c *Console) parseRunLine(w http.ResponseWriter, r *http.Request) error {
	var in struct{ Line string }
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRunLine))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return errorf(http.StatusBadRequest, `a JSON body {"Line": "docker run …"} is expected: %v`, err)
	}
	rl, err := ParseRunLine(in.Line)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return writeJSON(w, http.StatusOK, rl)
}

// ParseRunLine reads the options of `docker run` that bear on placement
// (and the common others) into a create body.
func ParseRunLine(line string) (RunLine, error) {
	args, err := splitWords(line)
	if err != nil {
		return RunLine{}, err
	}
	for _, prefix := range [][]string{{"docker", "container", "run"}, {"docker", "run"}, {"docker", "container", "create"}, {"docker", "create"}, {"run"}, {"create"}} {
		if len(args) >= len(prefix) && strings.Join(args[:len(prefix)], " ") == strings.Join(prefix, " ") {
			args = args[len(prefix):]
			break
		}
	}
	var (
		out   = RunLine{Body: map[string]any{}}
		hc    = map[string]any{}
		env   []string
		lbls  = map[string]string{}
		ports = map[string][]map[string]string{}
		expo  = map[string]any{}
	)
	appendTo := func(m map[string]any, key, v string) {
		l, _ := m[key].([]string)
		m[key] = append(l, v)
	}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		// Boolean flags, alone or grouped (-dit).
		if !hasVal && isBoolFlags(name) {
			if strings.Contains(name, "P") || name == "--publish-all" {
				hc["PublishAllPorts"] = true
			}
			if name == "--rm" {
				hc["AutoRemove"] = true
			}
			if name == "--privileged" {
				hc["Privileged"] = true
			}
			if name == "--init" {
				hc["Init"] = true
			}
			if strings.Contains(name, "t") && !strings.HasPrefix(name, "--") || name == "--tty" {
				out.Body["Tty"] = true
			}
			if strings.Contains(name, "i") && !strings.HasPrefix(name, "--") || name == "--interactive" {
				out.Body["OpenStdin"] = true
			}
			continue
		}
		if !valueFlags[name] {
			return RunLine{}, fmt.Errorf("unknown or unsupported option %s (the dry run reads: %s)", name, knownFlags())
		}
		if !hasVal {
			if i+1 >= len(args) {
				return RunLine{}, fmt.Errorf("option %s needs a value", name)
			}
			i++
			val = args[i]
		}
		switch name {
		case "--name":
			out.Name = val
		case "-e", "--env":
			env = append(env, val)
		case "-l", "--label":
			k, v, _ := strings.Cut(val, "=")
			lbls[k] = v
		case "-m", "--memory":
			n, err := parseBytes(val)
			if err != nil {
				return RunLine{}, fmt.Errorf("%s %q: %v", name, val, err)
			}
			hc["Memory"] = n
		case "--cpus":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || f < 0 {
				return RunLine{}, fmt.Errorf("--cpus %q: a number of CPUs is expected", val)
			}
			hc["NanoCpus"] = int64(f * 1e9)
		case "-c", "--cpu-shares", "--cpu-quota", "--cpu-period":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return RunLine{}, fmt.Errorf("%s %q: a whole number is expected", name, val)
			}
			hc[map[string]string{"-c": "CpuShares", "--cpu-shares": "CpuShares", "--cpu-quota": "CpuQuota", "--cpu-period": "CpuPeriod"}[name]] = n
		case "-p", "--publish":
			port, binding, err := parsePublish(val)
			if err != nil {
				return RunLine{}, fmt.Errorf("%s %q: %v", name, val, err)
			}
			ports[port] = append(ports[port], binding)
			expo[port] = struct{}{}
		case "--expose":
			if !strings.Contains(val, "/") {
				val += "/tcp"
			}
			expo[val] = struct{}{}
		case "--network", "--net":
			hc["NetworkMode"] = val
		case "--ip", "--ip6":
			key := map[string]string{"--ip": "IPv4Address", "--ip6": "IPv6Address"}[name]
			out.Body["_"+key] = val // moved under the network below
		case "-v", "--volume":
			appendTo(hc, "Binds", val)
		case "--volumes-from":
			appendTo(hc, "VolumesFrom", val)
		case "--link":
			appendTo(hc, "Links", val)
		case "--restart":
			n, max, _ := strings.Cut(val, ":")
			rp := map[string]any{"Name": n}
			if max != "" {
				m, err := strconv.Atoi(max)
				if err != nil {
					return RunLine{}, fmt.Errorf("--restart %q: the retry count is not a number", val)
				}
				rp["MaximumRetryCount"] = m
			}
			hc["RestartPolicy"] = rp
		case "-h", "--hostname":
			out.Body["Hostname"] = val
		case "-w", "--workdir":
			out.Body["WorkingDir"] = val
		case "-u", "--user":
			out.Body["User"] = val
		case "--entrypoint":
			out.Body["Entrypoint"] = []string{val}
		case "--network-alias":
			out.Body["_Aliases"] = append(anyStrings(out.Body["_Aliases"]), val)
		}
	}
	if i >= len(args) {
		return RunLine{}, fmt.Errorf("no image: give `docker run [OPTIONS] IMAGE [COMMAND]`")
	}
	out.Body["Image"] = args[i]
	if cmd := args[i+1:]; len(cmd) > 0 {
		out.Body["Cmd"] = cmd
	}
	if len(env) > 0 {
		out.Body["Env"] = env
	}
	if len(lbls) > 0 {
		out.Body["Labels"] = lbls
	}
	if len(ports) > 0 {
		hc["PortBindings"] = ports
	}
	if len(expo) > 0 {
		out.Body["ExposedPorts"] = expo
	}
	// --ip, --ip6 and aliases are the endpoint's on the --network.
	ep := map[string]any{}
	ipam := map[string]any{}
	for _, k := range []string{"IPv4Address", "IPv6Address"} {
		if v, ok := out.Body["_"+k]; ok {
			ipam[k] = v
			delete(out.Body, "_"+k)
		}
	}
	if len(ipam) > 0 {
		ep["IPAMConfig"] = ipam
	}
	if v, ok := out.Body["_Aliases"]; ok {
		ep["Aliases"] = v
		delete(out.Body, "_Aliases")
	}
	if len(ep) > 0 {
		nw, _ := hc["NetworkMode"].(string)
		if nw == "" {
			return RunLine{}, fmt.Errorf("--ip, --ip6 and --network-alias need a --network")
		}
		out.Body["NetworkingConfig"] = map[string]any{"EndpointsConfig": map[string]any{nw: ep}}
	}
	out.Body["HostConfig"] = hc
	return out, nil
}

func anyStrings(v any) []string {
	l, _ := v.([]string)
	return l
}

// valueFlags are the options read that take a value.
var valueFlags = map[string]bool{
	"--name": true, "-e": true, "--env": true, "-l": true, "--label": true, "-m": true, "--memory": true,
	"--cpus": true, "-c": true, "--cpu-shares": true, "--cpu-quota": true, "--cpu-period": true,
	"-p": true, "--publish": true, "--expose": true, "--network": true, "--net": true, "--ip": true, "--ip6": true,
	"-v": true, "--volume": true, "--volumes-from": true, "--link": true, "--restart": true,
	"-h": true, "--hostname": true, "-w": true, "--workdir": true, "-u": true, "--user": true,
	"--entrypoint": true, "--network-alias": true,
}

var boolLong = map[string]bool{"--rm": true, "--detach": true, "--tty": true, "--interactive": true, "--publish-all": true, "--privileged": true, "--init": true}

// isBoolFlags tells whether a is a boolean option or a group of short
// ones (-d, -it, -dP).
func isBoolFlags(a string) bool {
	if strings.HasPrefix(a, "--") {
		return boolLong[a]
	}
	if len(a) < 2 {
		return false
	}
	for _, r := range a[1:] {
		if !strings.ContainsRune("ditP", r) {
			return false
		}
	}
	return true
}

func knownFlags() string {
	var l []string
	for f := range valueFlags {
		l = append(l, f)
	}
	for f := range boolLong {
		l = append(l, f)
	}
	slices.Sort(l)
	return strings.Join(l, " ") + " -d -i -t -P"
}

// parseBytes reads 512, 64k, 256m, 2g (the CLI's units, powers of 1024).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	t := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	if t == "" {
		return 0, fmt.Errorf("a size such as 512m is expected")
	}
	switch t[len(t)-1] {
	case 'k':
		mult, t = 1<<10, t[:len(t)-1]
	case 'm':
		mult, t = 1<<20, t[:len(t)-1]
	case 'g':
		mult, t = 1<<30, t[:len(t)-1]
	case 't':
		mult, t = 1<<40, t[:len(t)-1]
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("a size such as 512m is expected")
	}
	return int64(f * float64(mult)), nil
}

// parsePublish reads [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
func parsePublish(s string) (port string, binding map[string]string, err error) {
	proto := "tcp"
	if p, pr, ok := strings.Cut(s, "/"); ok {
		s, proto = p, pr
	}
	parts := strings.Split(s, ":")
	var ip, host, ctr string
	switch len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
	case 3:
		ip, host, ctr = parts[0], parts[1], parts[2]
	default:
		return "", nil, fmt.Errorf("[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO] is expected")
	}
	for _, p := range []string{host, ctr} {
		if p == "" {
			continue
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", nil, fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	if ctr == "" {
		return "", nil, fmt.Errorf("no container port")
	}
	return ctr + "/" + proto, map[string]string{"HostIp": ip, "HostPort": host}, nil
}

// splitWords splits a command line as a POSIX shell would, for quotes and
// backslashes (no expansions); line continuations are joined.
func splitWords(line string) ([]string, error) {
	line = strings.ReplaceAll(line, "\\\n", " ")
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune("\"\\$`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case unicode.IsSpace(r):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("an empty line: give `docker run [OPTIONS] IMAGE [COMMAND]`")
	}
	return words, nil
}
