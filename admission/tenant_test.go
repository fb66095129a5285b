package admission_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/clocker/clocker/admission"
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
