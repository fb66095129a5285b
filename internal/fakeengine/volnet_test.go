package fakeengine

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestVolumes(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}, Volumes: []string{"old"}})
	s.AddVolume("tagged", map[string]string{"tier": "db"})
	for _, tt := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/volumes/create", `{"Name":"v1","Labels":{"a":"b"}}`, 201, `"Name":"v1"`},
		{"POST", "/volumes/create", `{"Name":"v1"}`, 201, `"Labels":{"a":"b"}`}, // there already: as it is
		{"POST", "/volumes/create", `{"Name":"/x"}`, 400, "includes invalid characters for a local volume name"},
		{"POST", "/volumes/create", ``, 400, "got EOF while reading request body"},
		{"GET", "/volumes/v1", ``, 200, `"Mountpoint":"/var/lib/docker/volumes/v1/_data"`},
		{"GET", "/volumes/nope", ``, 404, "get nope: no such volume"},
		{"GET", "/volumes?filters=" + url.QueryEscape(`{"label":{"tier=db":true}}`), ``, 200, `"Name":"tagged"`},
		{"GET", "/volumes?filters=" + url.QueryEscape(`{"bogus":["x"]}`), ``, 400, "Invalid filter 'bogus'"},
		{"DELETE", "/volumes/nope", ``, 404, "no such volume"},
		{"DELETE", "/volumes/nope?force=1", ``, 204, ""},
	} {
		code, body := do(t, s, tt.method, tt.path, tt.body)
		if code != tt.status || !strings.Contains(body, tt.says) {
			t.Errorf("%s %s: %d %s; want %d saying %q", tt.method, tt.path, code, body, tt.status, tt.says)
		}
	}
	// A container's named volume is made, is in use, and survives prune.
	id, err := s.Create(Spec{Name: "db", Image: "busybox", HostConfig: []byte(`{"Binds":["data:/var/lib/db","/host:/h"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, s, "DELETE", "/volumes/data", ""); code != 409 || !strings.Contains(body, "remove data: volume is in use - ["+id+"]") {
		t.Errorf("remove in use: %d %s", code, body)
	}
	code, body := do(t, s, "POST", "/volumes/prune?filters="+url.QueryEscape(`{"label!":["tier"]}`), "")
	var pruned struct{ VolumesDeleted []string }
	if code != 200 || json.Unmarshal([]byte(body), &pruned) != nil || strings.Join(pruned.VolumesDeleted, ",") != "old,v1" {
		t.Errorf("prune: %d %s", code, body)
	}
	var names []string
	for _, v := range s.Volumes() {
		names = append(names, v.Name)
	}
	if strings.Join(names, ",") != "data,tagged" {
		t.Errorf("left %v", names)
	}
}

func TestNetworks(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	s.RecordCalls()
	dup1 := s.AddNetwork("dup", nil)
	s.AddNetwork("dup", nil)
	id, _ := s.Create(Spec{Name: "web", Image: "busybox", Running: true})
	code, body := do(t, s, "POST", "/networks/create", `{"Name":"n1","CheckDuplicate":true,"Labels":{"tier":"db"}}`)
	var made struct{ Id string }
	if code != 201 || json.Unmarshal([]byte(body), &made) != nil || len(made.Id) != 64 {
		t.Fatalf("create: %d %s", code, body)
	}
	for _, tt := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/networks/create", `{"Name":"n1","CheckDuplicate":true}`, 409, "network with name n1 already exists"},
		{"POST", "/networks/create", `{"Name":"bridge"}`, 403, "operation is not permitted on predefined bridge network"},
		{"POST", "/networks/create", `{"Name":"x"}`, 400, "must be 'application/json'"}, // sent as text below
		{"GET", "/networks/n1", ``, 200, `"Labels":{"tier":"db"}`},
		{"GET", "/networks/" + made.Id[:10], ``, 200, `"Name":"n1"`},
		{"GET", "/networks/dup", ``, 400, "network dup is ambiguous (2 matches found based on name)"},
		{"GET", "/networks/" + dup1, ``, 200, `"Name":"dup"`},
		{"GET", "/networks/nope", ``, 404, "network nope not found"},
		{"GET", "/networks?filters=" + url.QueryEscape(`{"label":["tier=db"]}`), ``, 200, `"Name":"n1"`},
		{"GET", "/networks?filters=" + url.QueryEscape(`{"type":["builtin"],"name":["o"]}`), ``, 200, `"Name":"none"`},
		{"GET", "/networks?filters=" + url.QueryEscape(`{"bogus":["x"]}`), ``, 400, "Invalid filter 'bogus'"},
		{"POST", "/networks/n1/connect", `{"Container":"web"}`, 200, ""},
		{"POST", "/networks/n1/connect", `{"Container":"web"}`, 403, "endpoint with name web already exists in network n1"},
		{"GET", "/networks/n1", ``, 200, `"Containers":{"` + id + `":{"Name":"web"}}`},
		{"DELETE", "/networks/n1", ``, 403, "has active endpoints"},
		{"DELETE", "/networks/bridge", ``, 403, "bridge is a pre-defined network and cannot be removed"},
		{"POST", "/networks/n1/disconnect", `{"Container":"web"}`, 200, ""},
		{"POST", "/networks/n1/disconnect", `{"Container":"web"}`, 500, "is not connected to network n1"},
		{"POST", "/networks/n1/disconnect", `{"Container":"ghost","Force":true}`, 404, "endpoint ghost not found"},
		{"DELETE", "/networks/n1", ``, 204, ""},
	} {
		var code int
		var body string
		if strings.HasSuffix(tt.says, "'application/json'") {
			code, body = doType(t, s, tt.method, tt.path, "text/plain", tt.body)
		} else {
			code, body = do(t, s, tt.method, tt.path, tt.body)
		}
		if code != tt.status || !strings.Contains(body, tt.says) {
			t.Errorf("%s %s: %d %s; want %d saying %q", tt.method, tt.path, code, body, tt.status, tt.says)
		}
	}
	code, body = do(t, s, "POST", "/networks/prune", "")
	if code != 200 || body != `{"NetworksDeleted":["dup","dup"]}`+"\n" {
		t.Errorf("prune: %d %s", code, body)
	}
	if n := len(s.Networks()); n != 3 {
		t.Errorf("%d networks left, want the 3 built-ins", n)
	}
	if calls := s.Calls("POST", "/networks/create"); len(calls) != 4 || calls[0].Body == "" {
		t.Errorf("creates recorded: %+v", calls)
	}
}

// A container joins the networks it is created on (and connected to), and
// shows them and its mounts in inspect; an unknown network is refused.
func TestContainerNetworksAndMounts(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}, Networks: []string{"front", "back"}})
	code, body := do(t, s, "POST", "/containers/create?name=web", `{"Image":"busybox","HostConfig":{"NetworkMode":"front","Binds":["data:/d","/etc:/h:ro"]},"NetworkingConfig":{"EndpointsConfig":{"back":{}}}}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := do(t, s, "POST", "/containers/create?name=lost", `{"Image":"busybox","HostConfig":{"NetworkMode":"nope"}}`); code != 404 || !strings.Contains(body, "network nope not found") {
		t.Errorf("unknown network: %d %s", code, body)
	}
	_, body = do(t, s, "GET", "/containers/web/json", "")
	var in struct {
		Mounts []struct {
			Type, Name, Source, Destination string
			RW                              bool
		}
		NetworkSettings struct {
			Networks map[string]struct{ NetworkID, IPAddress string }
		}
	}
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Mounts) != 2 || in.Mounts[0].Type != "volume" || in.Mounts[0].Name != "data" || !in.Mounts[0].RW ||
		in.Mounts[1].Type != "bind" || in.Mounts[1].Source != "/etc" || in.Mounts[1].RW {
		t.Errorf("mounts %+v", in.Mounts)
	}
	nets := in.NetworkSettings.Networks
	if len(nets) != 2 || nets["front"].NetworkID == "" || nets["back"].IPAddress == "" {
		t.Errorf("networks %+v", nets)
	}
	if code, body := do(t, s, "DELETE", "/networks/front", ""); code != 403 || !strings.Contains(body, "active endpoints") {
		t.Errorf("remove a joined network: %d %s", code, body)
	}
	if err := s.Remove("web", true); err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, s, "DELETE", "/networks/front", ""); code != 204 {
		t.Errorf("remove after the container went: %d", code)
	}
}
