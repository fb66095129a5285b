//go:build e2e

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// What the Python SDK's own integration tests found through Clocker, each
// as the SDK sends it, against the reference engine where the answer is
// the engine's.

// refCall sends a raw request to the reference engine.
func refCall(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, refURL(t, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b.String()
}

// A network's IPAM part reads back as the engine shows what the create
// sent (the SDK's test_create_network_with_ipam_config): Options null
// when none were sent, {} or the map when they were; AuxiliaryAddresses
// kept. A container then runs on the network (each member's copy reserves
// the auxiliary addresses), and an auxiliary address outside the subnet is
// the engine's 403 with nothing made.
func TestE2ESDKNetworkIPAMAsSent(t *testing.T) {
	names := []string{"sdkipam1", "sdkipam2", "sdkipam3"}
	fnCleanupNets(t, names...)
	cleanup(t, "sdkipamc")
	t.Cleanup(func() {
		for _, n := range names {
			refCall(t, http.MethodDelete, "/networks/"+n, "")
		}
	})
	bodies := map[string]string{
		// As docker-py 7.1 sends it: Options null, IPAM without Options.
		"sdkipam1": `{"Name":"sdkipam1","Driver":null,"Options":null,"IPAM":{"Driver":"default","Config":[{"Subnet":"10.231.0.0/16",` +
			`"IPRange":"10.231.5.0/24","Gateway":"10.231.5.254","AuxiliaryAddresses":{"a":"10.231.1.5","b":"10.231.1.6"}}]},"CheckDuplicate":true}`,
		"sdkipam2": `{"Name":"sdkipam2","IPAM":{"Driver":"","Options":{},"Config":[{"Subnet":"10.232.0.0/24"}]}}`,
		"sdkipam3": `{"Name":"sdkipam3","IPAM":{"Options":{"x":"y"},"Config":[{"Subnet":"10.233.0.0/24"}]}}`,
	}
	ipamOf := func(body string) string {
		var n struct{ IPAM json.RawMessage }
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			t.Fatalf("inspect: %v: %s", err, body)
		}
		return string(n.IPAM)
	}
	for _, name := range names {
		if code, body := refCall(t, http.MethodPost, "/networks/create", bodies[name]); code != http.StatusCreated {
			t.Fatalf("reference engine: create %s: %d %s", name, code, body)
		}
		if code, body := apiCall(t, http.MethodPost, "/networks/create", "application/json", strings.NewReader(bodies[name])); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
		_, ref := refCall(t, http.MethodGet, "/networks/"+name, "")
		_, got := apiCall(t, http.MethodGet, "/networks/"+name, "", nil)
		if want, got := ipamOf(ref), ipamOf(got); got != want {
			t.Errorf("IPAM of %s:\n Clocker %s\n engine  %s", name, got, want)
		}
	}
	mustDocker(t, "run", "-d", "--name", "sdkipamc", "--network", "sdkipam1", "busybox", "sleep", "1d")
	ip := mustDocker(t, "inspect", "-f", "{{.NetworkSettings.Networks.sdkipam1.IPAddress}}", "sdkipamc")
	if !strings.HasPrefix(ip, "10.231.5.") {
		t.Errorf("address %s: not in the network's range 10.231.5.0/24", ip)
	}

	bad := `{"Name":"sdkipambad","IPAM":{"Config":[{"Subnet":"10.234.0.0/24","AuxiliaryAddresses":{"a":"10.235.0.1"}}]}}`
	code, body := apiCall(t, http.MethodPost, "/networks/create", "application/json", strings.NewReader(bad))
	if code != http.StatusForbidden || !strings.Contains(body, "must belong to the master pool") {
		t.Errorf("aux address outside the subnet: %d %s", code, body)
	}
	if r := docker(t, nil, "network", "inspect", "sdkipambad"); r.Code == 0 {
		t.Error("a refused create made the network")
	}
}

// /info's Images counts the images GET /images/json?all=1 lists, one a
// distinct ID, as an engine's does (the SDK's ListImagesTest.test_images):
// busybox, on every host, counts once.
func TestE2ESDKInfoImagesCountsTheList(t *testing.T) {
	if len(enginesWith(t, "busybox")) < 2 {
		t.Fatal("busybox is not on two engines")
	}
	_, body := apiCall(t, http.MethodGet, "/images/json?all=1", "", nil)
	var rows []struct{ Id string }
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		t.Fatalf("images: %v: %s", err, body)
	}
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r.Id] = true
	}
	_, body = apiCall(t, http.MethodGet, "/info", "", nil)
	var info struct{ Images int }
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Images != len(ids) {
		t.Errorf("info says %d images; the list of every image shows %d", info.Images, len(ids))
	}
}
