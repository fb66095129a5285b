// Package authz decides whether an authenticated request may go on: the
// built-in rules for the common cases (--deny-privileged,
// --allowed-bind-path, --deny-host-network, --deny-cap-add), then the
// authorization plugins that speak dockerd's AuthZPlugin protocol, asked
// about the request and, for answers that are not streams, about the
// response. A refusal is 403 with the reason, before anything is made.
package authz

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Rules are the built-in refusals. They read the bodies of the requests
// that could make what they forbid: container creates (and the old start
// with a HostConfig), exec creates, and local volumes that bind a path.
type Rules struct {
	// DenyPrivileged refuses --privileged containers and execs.
	DenyPrivileged bool
	// AllowedBindPaths, when not empty, are the only host paths (and
	// what is below them) that binds and bind mounts may name.
	AllowedBindPaths []string
	// DenyHostNetwork refuses --network host.
	DenyHostNetwork bool
	// DenyCapAdd refuses --cap-add.
	DenyCapAdd bool
}

// Empty reports whether no rule is set.
func (r Rules) Empty() bool {
	return !r.DenyPrivileged && len(r.AllowedBindPaths) == 0 && !r.DenyHostNetwork && !r.DenyCapAdd
}

var (
	createRoute = regexp.MustCompile(`^(/v[0-9.]+)?/containers/create$`)
	// Before API 1.24 a start could carry the HostConfig.
	startRoute  = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[^/]+/start$`)
	execRoute   = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[^/]+/exec$`)
	volumeRoute = regexp.MustCompile(`^(/v[0-9.]+)?/volumes/create$`)
)

// ReadsBody reports whether the rules need the body of a request.
func (r Rules) ReadsBody(method, p string) bool {
	if r.Empty() || method != "POST" {
		return false
	}
	return createRoute.MatchString(p) || startRoute.MatchString(p) || execRoute.MatchString(p) || volumeRoute.MatchString(p)
}

type hostConfig struct {
	Privileged  bool
	Binds       []string
	NetworkMode string
	CapAdd      []string
	Mounts      []struct {
		Type   string
		Source string
	}
}

// Check returns why the request is refused, or "" when the rules let it
// through. A body that does not decode is left to the handler, which
// answers 400 for it.
func (r Rules) Check(method, p string, body []byte) string {
	if !r.ReadsBody(method, p) || len(body) == 0 {
		return ""
	}
	switch {
	case createRoute.MatchString(p):
		var c struct {
			HostConfig hostConfig
		}
		if json.Unmarshal(body, &c) != nil {
			return ""
		}
		return r.checkHost(c.HostConfig)
	case startRoute.MatchString(p):
		var hc hostConfig
		if json.Unmarshal(body, &hc) != nil {
			return ""
		}
		return r.checkHost(hc)
	case execRoute.MatchString(p):
		var e struct{ Privileged bool }
		if json.Unmarshal(body, &e) == nil && e.Privileged && r.DenyPrivileged {
			return "privileged exec is not allowed (--deny-privileged)"
		}
	case volumeRoute.MatchString(p):
		// A local volume with o=bind mounts a host path: a bind by
		// another name.
		var v struct {
			Driver     string
			DriverOpts map[string]string
		}
		if json.Unmarshal(body, &v) != nil || len(r.AllowedBindPaths) == 0 {
			return ""
		}
		if (v.Driver == "" || v.Driver == "local") && strings.Contains(","+v.DriverOpts["o"]+",", ",bind,") {
			return r.checkBindSource(v.DriverOpts["device"], "volume device")
		}
	}
	return ""
}

func (r Rules) checkHost(hc hostConfig) string {
	if r.DenyPrivileged && hc.Privileged {
		return "privileged containers are not allowed (--deny-privileged)"
	}
	if r.DenyHostNetwork && hc.NetworkMode == "host" {
		return "the host network is not allowed (--deny-host-network)"
	}
	if r.DenyCapAdd && len(hc.CapAdd) > 0 {
		return fmt.Sprintf("adding capabilities (%s) is not allowed (--deny-cap-add)", strings.Join(hc.CapAdd, ", "))
	}
	if len(r.AllowedBindPaths) == 0 {
		return ""
	}
	for _, b := range hc.Binds {
		src, _, ok := strings.Cut(b, ":")
		if !ok || !strings.HasPrefix(src, "/") {
			continue // a named or anonymous volume
		}
		if reason := r.checkBindSource(src, "bind"); reason != "" {
			return reason
		}
	}
	for _, m := range hc.Mounts {
		if m.Type != "bind" {
			continue
		}
		if reason := r.checkBindSource(m.Source, "bind mount"); reason != "" {
			return reason
		}
	}
	return ""
}

func (r Rules) checkBindSource(src, what string) string {
	if BindAllowed(src, r.AllowedBindPaths) {
		return ""
	}
	return fmt.Sprintf("%s of %q is outside the allowed paths (--allowed-bind-path %s)", what, src, strings.Join(r.AllowedBindPaths, ", "))
}

// BindAllowed reports whether the host path src is one of prefixes or
// below one, after `..` and repeated slashes are resolved (a relative
// path never is).
func BindAllowed(src string, prefixes []string) bool {
	if !strings.HasPrefix(src, "/") {
		return false
	}
	c := path.Clean(src)
	for _, p := range prefixes {
		p = path.Clean(p)
		if p == "/" || c == p || strings.HasPrefix(c, p+"/") {
			return true
		}
	}
	return false
}
