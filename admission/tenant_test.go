package admission_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/tenant"
)

func TestTenantStepStoresTheTenantsNames(t *testing.T) {
	body := `{"Image":"busybox","Labels":{"a":"b"},"Unknown":1,
	 "HostConfig":{"NetworkMode":"front","Binds":["data:/d","/srv:/s:ro"],"VolumesFrom":["db:ro"],"Links":["db:database"],
	  "Mounts":[{"Type":"volume","Source":"logs","Target":"/l"},{"Type":"bind","Source":"/tmp","Target":"/t"}]},
	 "NetworkingConfig":{"EndpointsConfig":{"front":{"Aliases":["w"]},"bridge":{}}}}`
	c, err := admission.NewCreate("web", url.Values{}, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	s := tenant.New("alice")
	c.Tenant = &s
	if err := (admission.TenantStep{}).Validate(c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "alice_web" {
		t.Fatalf("name %q", c.Name)
	}
	out, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Labels     map[string]string
		Unknown    int
		HostConfig struct {
			NetworkMode        string
			Binds, VolumesFrom []string
			Links              []string
			Mounts             []struct{ Type, Source string }
		}
		NetworkingConfig struct {
			EndpointsConfig map[string]struct{ Aliases []string }
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	hc := got.HostConfig
	if got.Labels[labels.Owner] != "alice" || got.Labels["a"] != "b" || got.Unknown != 1 {
		t.Errorf("labels %v, unknown %d", got.Labels, got.Unknown)
	}
	if hc.NetworkMode != "alice_front" || hc.Binds[0] != "alice_data:/d" || hc.Binds[1] != "/srv:/s:ro" ||
		hc.VolumesFrom[0] != "alice_db:ro" || hc.Links[0] != "alice_db:database" ||
		hc.Mounts[0].Source != "alice_logs" || hc.Mounts[1].Source != "/tmp" {
		t.Errorf("host config %+v", hc)
	}
	eps := got.NetworkingConfig.EndpointsConfig
	if _, ok := eps["bridge"]; !ok || len(eps) != 2 {
		t.Errorf("endpoints %v", eps)
	}
	if a := eps["alice_front"].Aliases; len(a) != 2 || a[0] != "w" || a[1] != "web" {
		t.Errorf("aliases on alice_front: %v (want w and the name the tenant gave, web)", a)
	}
}

func TestTenantStepLeavesOthers(t *testing.T) {
	c, err := admission.NewCreate("web", url.Values{}, []byte(`{"Image":"busybox"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := (admission.TenantStep{}).Validate(c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "web" || c.Spec.Labels[labels.Owner] != "" {
		t.Fatalf("an admin's create changed: %q %v", c.Name, c.Spec.Labels)
	}
}

// `docker run --network front` names the network in NetworkMode alone:
// the endpoint with the alias is added.
func TestTenantStepAliasOnNetworkMode(t *testing.T) {
	c, err := admission.NewCreate("web", url.Values{}, []byte(`{"Image":"busybox","HostConfig":{"NetworkMode":"front"}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := tenant.New("alice")
	c.Tenant = &s
	if err := (admission.TenantStep{}).Validate(c); err != nil {
		t.Fatal(err)
	}
	out, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"EndpointsConfig":{"alice_front":{`) || !strings.Contains(string(out), `"Aliases":["web"]`) {
		t.Fatalf("body %s", out)
	}
}

// References to containers go through Resolve: the tenant's own by
// name, ID or ID prefix become their engine names (the modes and the
// link's alias kept); another tenant's is no such container, and the
// create is refused.
func TestTenantStepResolvesContainerReferences(t *testing.T) {
	own := map[string]string{"db": "alice_db", "0123abcd": "alice_db", "0123abcdef99": "alice_db", "9f00": "alice_cache"}
	step := admission.TenantStep{Resolve: func(s tenant.Scope, ref string) (string, error) {
		if n, ok := own[ref]; ok && s.Name == "alice" {
			return n, nil
		}
		return "", errdefs.NoSuchContainer(ref)
	}}
	tests := []struct {
		name, hostConfig string
		want             map[string]any // HostConfig fields
		err              string
	}{
		{name: "volumes-from by ID prefix, mode kept", hostConfig: `{"VolumesFrom":["0123abcd:ro","db"]}`,
			want: map[string]any{"VolumesFrom": []any{"alice_db:ro", "alice_db"}}},
		{name: "link by full ID", hostConfig: `{"Links":["0123abcdef99:database","9f00:9f00"]}`,
			want: map[string]any{"Links": []any{"alice_db:database", "alice_cache:9f00"}}},
		{name: "link without alias keeps the given name", hostConfig: `{"Links":["db"]}`,
			want: map[string]any{"Links": []any{"alice_db:db"}}},
		{name: "container modes", hostConfig: `{"NetworkMode":"container:0123abcd","PidMode":"container:db","IpcMode":"container:9f00"}`,
			want: map[string]any{"NetworkMode": "container:alice_db", "PidMode": "container:alice_db", "IpcMode": "container:alice_cache"}},
		{name: "other modes stay", hostConfig: `{"NetworkMode":"host","PidMode":"host","IpcMode":"private"}`,
			want: map[string]any{"NetworkMode": "host", "PidMode": "host", "IpcMode": "private"}},
		{name: "another's ID in volumes-from", hostConfig: `{"VolumesFrom":["feedbeef"]}`, err: "No such container: feedbeef"},
		{name: "another's ID in a link", hostConfig: `{"Links":["feedbeef:x"]}`, err: "No such container: feedbeef"},
		{name: "another's container network", hostConfig: `{"NetworkMode":"container:bob_web"}`, err: "No such container: bob_web"},
		{name: "another's pid namespace", hostConfig: `{"PidMode":"container:feedbeef"}`, err: "No such container: feedbeef"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := admission.NewCreate("web", url.Values{}, []byte(`{"Image":"busybox","HostConfig":`+tc.hostConfig+`}`))
			if err != nil {
				t.Fatal(err)
			}
			s := tenant.New("alice")
			c.Tenant = &s
			err = step.Validate(c)
			if tc.err != "" {
				if err == nil || !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want not found %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, _ := c.Body()
			var got struct{ HostConfig map[string]any }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if g, _ := json.Marshal(got.HostConfig[k]); string(g) != mustJSON(v) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(v))
				}
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
