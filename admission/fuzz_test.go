package admission

import (
	"net/url"
	"testing"
)

// FuzzNewCreate: any body decodes to a Create or an error, never a panic,
// and a Create always has its Config.
func FuzzNewCreate(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","Cmd":["echo","hi"]}`,
		`{"Image":"busybox","HostConfig":{"Binds":["/tmp:/t"],"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`,
		`{"Image":"busybox","Env":["constraint:node==h1","affinity:container!=web"],"Labels":{"a":"b"}}`,
		`{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"net":{"Aliases":["a"],"IPAMConfig":{"IPv4Address":"10.0.0.5"}}}}}`,
		``, `null`, `{}`, `[]`, `{"Image":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := NewCreate("web", url.Values{}, body)
		if err == nil && (c == nil || c.Spec == nil || c.Spec.Config == nil) {
			t.Fatalf("no error and no config for %q", body)
		}
	})
}
