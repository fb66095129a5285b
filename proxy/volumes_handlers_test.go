package proxy

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"
)

func TestVolumeCreate(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(e *vnEnv)
		contentType string // default application/json
		body        string
		wantStatus  int
		wantMsg     string // for errors; a prefix when it ends in …
		wantHost    string // where the volume must be ("" when none is made)
		wantName    string
	}{
		{name: "spread: fewest containers, then fewest volumes", setup: func(e *vnEnv) {
			e.addContainer("h1", "busy", nil)
			e.fakes["h2"].addVolume("other", nil)
		}, body: `{"Name":"v1","Driver":"local","DriverOpts":{},"Labels":{}}`, wantStatus: 201, wantHost: "h3", wantName: "v1"},
		{name: "the label names the host", body: `{"Name":"v1","Labels":{"io.clocker.host":"h2"}}`, wantStatus: 201, wantHost: "h2", wantName: "v1"},
		{name: "HOST/NAME names the host", body: `{"Name":"h3/data"}`, wantStatus: 201, wantHost: "h3", wantName: "data"},
		{name: "HOST/NAME and the same label", body: `{"Name":"h3/data","Labels":{"io.clocker.host":"h3"}}`, wantStatus: 201, wantHost: "h3", wantName: "data"},
		{name: "anonymous volume", body: `{}`, wantStatus: 201, wantHost: "h1"},
		{name: "an existing name is answered by its host", setup: func(e *vnEnv) {
			e.fakes["h2"].addVolume("data", map[string]string{"made": "outside"})
		}, body: `{"Name":"data"}`, wantStatus: 201, wantHost: "h2", wantName: "data"},
		{name: "an existing name on the host asked for", setup: func(e *vnEnv) {
			e.fakes["h2"].addVolume("data", nil)
		}, body: `{"Name":"h2/data"}`, wantStatus: 201, wantHost: "h2", wantName: "data"},
		{name: "a compose project's volume goes where the project is", setup: func(e *vnEnv) {
			e.addContainer("h3", "busy1", nil)
			e.addContainer("h3", "busy2", nil)
			e.fakes["h3"].addNetwork("p_default", map[string]string{"com.docker.compose.project": "p"})
		}, body: `{"Name":"p_data","Labels":{"com.docker.compose.project":"p"}}`, wantStatus: 201, wantHost: "h3", wantName: "p_data"},
		{name: "existing on another host than asked", setup: func(e *vnEnv) {
			e.fakes["h2"].addVolume("data", nil)
		}, body: `{"Name":"data","Labels":{"io.clocker.host":"h1"}}`, wantStatus: 409, wantMsg: "volume data already exists on host h2"},
		{name: "name and label disagree", body: `{"Name":"h1/data","Labels":{"io.clocker.host":"h2"}}`, wantStatus: 400,
			wantMsg: "h1/data names host h1 but the label io.clocker.host=h2 names host h2"},
		{name: "unknown host", body: `{"Name":"data","Labels":{"io.clocker.host":"h9"}}`, wantStatus: 400,
			wantMsg: `label io.clocker.host=h9: no host "h9" in the fleet (hosts: h1, h2, h3)`},
		{name: "malformed JSON", body: `{"Name":"v2"`, wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "wrong types", body: `{"Name":5}`, wantStatus: 400, wantMsg: "invalid JSON…"},
		{name: "empty body", body: ``, wantStatus: 400, wantMsg: "got EOF while reading request body"},
		{name: "not JSON", contentType: "text/plain", body: `{"Name":"v3"}`, wantStatus: 400,
			wantMsg: "Content-Type specified (text/plain) must be 'application/json'"},
		{name: "the engine's own refusal", body: `{"Name":"a b"}`, wantStatus: 400,
			wantMsg: `create a b: "a b" includes invalid characters for a local volume name…`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newVNEnv(t, "h1", "h2", "h3")
			if tt.setup != nil {
				tt.setup(e)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			r := e.do("POST", "/v1.41/volumes/create", ct, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantStatus >= 400 {
				checkMessage(t, r.message(), tt.wantMsg)
				for host, calls := range e.mutations() {
					for _, c := range calls {
						if c != "POST /volumes/create" || tt.wantStatus != 400 {
							t.Errorf("%s changed: %v", host, calls)
						}
					}
				}
				for _, f := range e.fakes {
					if n := f.volumeCount(); n > 1 {
						t.Errorf("%s has %d volumes", f.name, n)
					}
				}
				return
			}
			var got struct {
				Name   string
				Labels map[string]string
				Node   struct{ Name string }
			}
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("answer %s: %v", r.body, err)
			}
			if tt.wantName != "" && got.Name != tt.wantName {
				t.Errorf("name %q, want %q", got.Name, tt.wantName)
			}
			if _, ok := got.Labels[HostLabel]; ok || got.Node.Name != tt.wantHost {
				t.Errorf("answer's Node %q, want %q, and no label %s: %s", got.Node.Name, tt.wantHost, HostLabel, r.body)
			}
			if !e.fakes[tt.wantHost].hasVolume(got.Name) {
				t.Errorf("%s has no volume %q", tt.wantHost, got.Name)
			}
			for host, calls := range e.mutations() {
				if host != tt.wantHost {
					t.Errorf("%s was changed too: %v", host, calls)
				} else if !slices.Equal(calls, []string{"POST /volumes/create"}) {
					t.Errorf("%s got %v", host, calls)
				}
			}
		})
	}
}

// checkMessage compares an error message with a wanted one, a prefix when
// it ends in "…".
func checkMessage(t *testing.T, got, want string) {
	t.Helper()
	if p, ok := strings.CutSuffix(want, "…"); ok {
		if !strings.HasPrefix(got, p) {
			t.Errorf("message %q, want it to start with %q", got, p)
		}
	} else if got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// The engine keeps the labels a new volume is created with: Clocker's
// host label is among them.
func TestVolumeCreateLabelsTheVolume(t *testing.T) {
	e := newVNEnv(t, "h1", "h2")
	r := e.doJSON("POST", "/volumes/create", map[string]any{"Name": "v1", "Labels": map[string]string{"a": "b"}, "DriverOpts": map[string]string{"o": "1"}})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	f := e.fakes["h1"]
	var v *fakeengine.Volume
	for _, vol := range f.Volumes() {
		if vol.Name == "v1" {
			v = &vol
		}
	}
	bodies := f.bodies()
	body := bodies[len(bodies)-1]
	if v == nil || v.Labels["a"] != "b" || v.Labels[HostLabel] != "h1" {
		t.Fatalf("volume on h1: %+v", v)
	}
	if !strings.Contains(body, `"DriverOpts":{"o":"1"}`) {
		t.Errorf("the engine did not get the client's other fields: %s", body)
	}
}

func TestVolumeListInspectRemove(t *testing.T) {
	e := newVNEnv(t, "h1", "h2")
	e.fakes["h1"].addVolume("web", map[string]string{"tier": "web"})
	e.fakes["h1"].addVolume("shared", nil)
	e.fakes["h2"].addVolume("shared", nil)
	e.fakes["h2"].addVolume("db", map[string]string{"tier": "db", HostLabel: "h2"})
	dbUser := e.addContainer("h2", "dbuser", nil, "db")

	list := func(query string) ([]string, []string) {
		t.Helper()
		r := e.do("GET", "/v1.41/volumes"+query, "", "")
		if r.status != 200 {
			t.Fatalf("list %s: %d %s", query, r.status, r.body)
		}
		var l struct {
			Volumes  []json.RawMessage
			Warnings []string
		}
		if err := json.Unmarshal([]byte(r.body), &l); err != nil {
			t.Fatal(err)
		}
		checkHostLabel(t, query, l.Volumes)
		return nameAtHost(t, l.Volumes), l.Warnings
	}
	filters := func(f string) string { return "?filters=" + url.QueryEscape(f) }

	tests := []struct {
		name, query string
		want        []string
	}{
		{name: "everything", query: "", want: []string{"db@h2", "shared@h1", "shared@h2", "web@h1"}},
		{name: "label filter passed to the engines", query: filters(`{"label":{"tier=web":true}}`), want: []string{"web@h1"}},
		{name: "name filter passed to the engines", query: filters(`{"name":{"sha":true}}`), want: []string{"shared@h1", "shared@h2"}},
		{name: "host filter", query: filters(`{"label":{"io.clocker.host=h2":true}}`), want: []string{"db@h2", "shared@h2"}},
		{name: "host filter and a label", query: filters(`{"label":{"io.clocker.host=h1":true,"tier":true}}`), want: []string{"web@h1"}},
		{name: "unknown host", query: filters(`{"label":{"io.clocker.host=h9":true}}`), want: []string{}},
	}
	for _, tt := range tests {
		t.Run("list/"+tt.name, func(t *testing.T) {
			got, warnings := list(tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if warnings != nil {
				t.Errorf("warnings %v", warnings)
			}
		})
	}
	if calls := e.fakes["h1"].callsTo("GET /volumes?filters="); len(calls) != 3 {
		t.Errorf("h1 was asked %v: want the two passed-through filters and the label+tier one", calls)
	} else if !strings.Contains(calls[2], url.QueryEscape(`{"label":{"tier":true}}`)) {
		t.Errorf("h1 got %s: the host condition must not reach the engine", calls[2])
	}
	if r := e.do("GET", "/volumes"+filters(`{"bogus":["x"]}`), "", ""); r.status != 400 || r.message() != "Invalid filter 'bogus'" {
		t.Errorf("bad filter: %d %s", r.status, r.body)
	}

	inspect := []struct {
		name, ref  string
		wantStatus int
		want       string // NAME@HOST or the error message
	}{
		{name: "on one host", ref: "db", wantStatus: 200, want: "db@h2"},
		{name: "made outside Clocker: labelled", ref: "web", wantStatus: 200, want: "web@h1"},
		{name: "on two hosts: the first", ref: "shared", wantStatus: 200, want: "shared@h1"},
		{name: "HOST/NAME", ref: "h2/shared", wantStatus: 200, want: "shared@h2"},
		{name: "unknown", ref: "nope", wantStatus: 404, want: "get nope: no such volume"},
		{name: "HOST/NAME not there", ref: "h1/db", wantStatus: 404, want: "get db: no such volume"},
	}
	for _, tt := range inspect {
		t.Run("inspect/"+tt.name, func(t *testing.T) {
			r := e.do("GET", "/v1.41/volumes/"+tt.ref, "", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if r.status != 200 {
				checkMessage(t, r.message(), tt.want)
				return
			}
			if got := nameAtHost(t, []json.RawMessage{json.RawMessage(r.body)}); got[0] != tt.want {
				t.Errorf("got %s, want %s", got[0], tt.want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	remove := []struct {
		name, path string
		wantStatus int
		wantMsg    string
		gone       string // HOST/NAME removed
	}{
		{name: "in use: the engine's 409", path: "/volumes/db", wantStatus: 409, wantMsg: "remove db: volume is in use - [" + dbUser + "]"},
		{name: "on two hosts", path: "/volumes/shared", wantStatus: 400,
			wantMsg: "volume shared is ambiguous: hosts h1, h2 each have one; name one as HOST/shared (e.g. h1/shared)"},
		{name: "unknown", path: "/volumes/nope", wantStatus: 404, wantMsg: "get nope: no such volume"},
		{name: "unknown, forced", path: "/volumes/nope?force=1", wantStatus: 204},
		{name: "HOST/NAME", path: "/v1.41/volumes/h2/shared", wantStatus: 204, gone: "h2/shared"},
		{name: "the only one left", path: "/volumes/shared", wantStatus: 204, gone: "h1/shared"},
	}
	for _, tt := range remove {
		t.Run("remove/"+tt.name, func(t *testing.T) {
			before := e.fakes["h1"].volumeCount() + e.fakes["h2"].volumeCount()
			r := e.do("DELETE", tt.path, "", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantMsg != "" {
				checkMessage(t, r.message(), tt.wantMsg)
			}
			after := e.fakes["h1"].volumeCount() + e.fakes["h2"].volumeCount()
			if tt.gone == "" && after != before {
				t.Errorf("%d volumes before, %d after", before, after)
			}
			if host, name, ok := strings.Cut(tt.gone, "/"); ok && e.fakes[host].hasVolume(name) {
				t.Errorf("%s still has %s", host, name)
			}
		})
	}
}

func TestVolumePrune(t *testing.T) {
	e := newVNEnv(t, "h1", "h2")
	e.fakes["h1"].addVolume("a", nil)
	e.addContainer("h1", "user", nil, "b")
	e.fakes["h2"].addVolume("c", nil)
	e.fakes["h2"].addVolume("d", nil)

	filters := func(f string) string { return "?filters=" + url.QueryEscape(f) }
	if r := e.do("POST", "/volumes/prune"+filters(`{"bogus":["x"]}`), "", ""); r.status != 400 || r.message() != "Invalid filter 'bogus'" {
		t.Errorf("bad filter: %d %s", r.status, r.body)
	}
	if !e.fakes["h1"].hasVolume("a") || !e.fakes["h2"].hasVolume("c") {
		t.Fatal("a refused prune removed volumes")
	}
	prune := func(query string) (deleted []string, space uint64) {
		t.Helper()
		r := e.do("POST", "/v1.41/volumes/prune"+query, "", "")
		if r.status != 200 {
			t.Fatalf("prune: %d %s", r.status, r.body)
		}
		var rep struct {
			VolumesDeleted []string
			SpaceReclaimed uint64
		}
		if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.VolumesDeleted, rep.SpaceReclaimed
	}
	if got, _ := prune(filters(`{"label!":{"io.clocker.host=h1":true}}`)); !slices.Equal(got, []string{"c", "d"}) {
		t.Errorf("prune all but h1: %v", got)
	}
	if got, space := prune(""); !slices.Equal(got, []string{"a"}) || space != 10 {
		t.Errorf("prune: %v %d", got, space)
	}
	if got, _ := prune(""); got == nil || len(got) != 0 {
		t.Errorf("prune of nothing: %#v, want []", got)
	}
	if !e.fakes["h1"].hasVolume("b") {
		t.Error("a volume in use was pruned")
	}
}

func TestVolumeHostDown(t *testing.T) {
	e := newVNEnv(t, "h1", "h2")
	e.fakes["h1"].addVolume("a", nil)
	e.fakes["h2"].addVolume("b", nil)
	e.fakes["h2"].stop()
	h2, _ := e.fleet.Host("h2")
	deadline := time.Now().Add(10 * time.Second)
	for h2.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("h2 still healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := e.do("GET", "/volumes", "", "")
	var l struct {
		Volumes  []json.RawMessage
		Warnings []string
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &l) != nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if got := nameAtHost(t, l.Volumes); !slices.Equal(got, []string{"a@h1"}) {
		t.Errorf("volumes %v", got)
	}
	if !slices.Equal(l.Warnings, []string{"host h2 is unavailable: its volumes are not included"}) {
		t.Errorf("warnings %q", l.Warnings)
	}
	if r := e.do("GET", "/volumes/h2/b", "", ""); r.status != 503 {
		t.Errorf("inspect on the host that is down: %d %s", r.status, r.body)
	}
	if r := e.doJSON("POST", "/volumes/create", map[string]any{"Name": "x", "Labels": map[string]string{HostLabel: "h2"}}); r.status != 503 {
		t.Errorf("create on the host that is down: %d %s", r.status, r.body)
	}
	if r := e.doJSON("POST", "/volumes/create", map[string]any{"Name": "xx"}); r.status != 201 || !e.fakes["h1"].hasVolume("xx") {
		t.Errorf("create: %d %s", r.status, r.body)
	}
}

// Concurrent creates of one name make it on one host only.
func TestVolumeAndNetworkCreateConcurrent(t *testing.T) {
	e := newVNEnv(t, "h1", "h2", "h3")
	const n = 12
	statuses := make(chan int, 2*n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			statuses <- e.doJSON("POST", "/volumes/create", map[string]any{"Name": "same"}).status
		}()
		go func() {
			defer wg.Done()
			statuses <- e.doJSON("POST", "/networks/create", map[string]any{"Name": "same", "CheckDuplicate": true}).status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	// Volumes: every create answers 201 (the existing volume); networks: one
	// 201, the others 409.
	if count[201] != n+1 || count[409] != n-1 {
		t.Errorf("statuses %v", count)
	}
	var vols, nets []string
	for name, f := range e.fakes {
		if f.hasVolume("same") {
			vols = append(vols, name)
		}
		if f.networkByName("same") != nil {
			nets = append(nets, name)
		}
	}
	if len(vols) != 1 || len(nets) != 1 {
		t.Errorf("volume on %v, network on %v", vols, nets)
	}
}
