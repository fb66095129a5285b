package authz

import "testing"

// FuzzRules: any create body is allowed or refused, never a panic; a
// body binding / is never allowed under /srv.
func FuzzRules(f *testing.F) {
	for _, s := range []string{
		`{"HostConfig":{"Binds":["/:/h"]}}`, `{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/../"}]}}`,
		`{"HostConfig":{"Privileged":true,"CapAdd":["ALL"],"NetworkMode":"host"}}`, `{}`, `[`, `{"HostConfig":null}`,
	} {
		f.Add([]byte(s))
	}
	r := Rules{DenyPrivileged: true, AllowedBindPaths: []string{"/srv"}, DenyHostNetwork: true, DenyCapAdd: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = r.Check("POST", "/containers/create", body)
		_ = r.Check("POST", "/volumes/create", body)
		_ = r.Check("POST", "/containers/x/exec", body)
	})
}
