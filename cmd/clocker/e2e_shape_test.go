//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The JSON shape of Clocker's answers against a real engine's for the same
// objects: every key the engine sends is there, with the same JSON type
// (an engine's list or object is never null through Clocker), and Clocker
// adds only the keys of addedKeys. SDKs iterate what an engine always
// sends as a list or object ("'NoneType' object is not iterable").

// addedHeaders are the _ping headers Clocker sends that an older engine
// may not (newer engines send both).
var addedHeaders = map[string]bool{"Builder-Version": true, "Swarm": true}

// addedKeys are the keys Clocker adds on purpose (README: Node is the host
// of a container, volume or per-host network, as classic Swarm showed it;
// SystemStatus lists the hosts in /info, as classic Swarm did).
var addedKeys = map[string]bool{"Node": true, "SystemStatus": true}

// dataKeys are objects whose keys are data (names, IDs, labels, ports),
// not schema: only their type is compared.
var dataKeys = map[string]bool{"Labels": true, "Options": true, "Containers": true, "Networks": true, "Ports": true,
	"PortBindings": true, "ExposedPorts": true, "Volumes": true, "Data": true, "Status": true, "DriverOpts": true,
	"Plugins": true, "RegistryConfig": true, "Runtimes": true, "Sysctls": true, "Tmpfs": true, "Config": true}

// shapeDiff lists where got's JSON shape differs from want's.
func shapeDiff(path string, want, got any) []string {
	kind := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case map[string]any:
			return "object"
		case []any:
			return "array"
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		}
		return fmt.Sprintf("%T", v)
	}
	if kind(want) != kind(got) {
		return []string{fmt.Sprintf("%s: engine %s, Clocker %s", path, kind(want), kind(got))}
	}
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		last := path[strings.LastIndex(path, ".")+1:]
		if dataKeys[last] && path != "" {
			if last != "Config" || strings.HasSuffix(path, "LogConfig.Config") {
				return nil
			}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, shapeDiff(path+"."+k, wv, gv)...)
		}
		for k := range g {
			// Added keys only on an answer's own object or a list's rows.
			if _, ok := w[k]; !ok && !(addedKeys[k] && (path == "" || strings.HasSuffix(path, "]"))) {
				out = append(out, fmt.Sprintf("%s.%s: added", path, k))
			}
		}
	case []any:
		g := got.([]any)
		if len(w) > 0 && len(g) > 0 {
			out = append(out, shapeDiff(path+"[0]", w[0], g[0])...)
		}
	}
	sort.Strings(out)
	return out
}

// getJSON answers GET path of base (Clocker's or an engine's URL) decoded.
func getJSON(t *testing.T, base, path string) any {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s%s: %d %s", base, path, resp.StatusCode, b)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s%s: %v: %s", base, path, err, b)
	}
	return v
}

func engineURL(i int) string { return "http://" + strings.TrimPrefix(fleet.Engines[i].TCP, "tcp://") }

// rowOf is the row of a list whose key field is val.
func rowOf(t *testing.T, list any, key, val string) any {
	t.Helper()
	l, ok := list.([]any)
	if !ok {
		t.Fatalf("not a list: %v", list)
	}
	for _, r := range l {
		v := r.(map[string]any)[key]
		if v == val || key == "Names" && slices.Contains(v.([]any), any("/"+val)) {
			return r
		}
	}
	t.Fatalf("no row with %s %s in %v", key, val, list)
	return nil
}

// dfRows narrows a /system/df answer to the shape test's own container
// (shc1) and volume (shv1) and to the busybox image.
func dfRows(t *testing.T, df any) any {
	t.Helper()
	m := df.(map[string]any)
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	out["Containers"] = []any{rowOf(t, m["Containers"], "Names", "shc1")}
	out["Volumes"] = []any{rowOf(t, m["Volumes"], "Name", "shv1")}
	for _, r := range m["Images"].([]any) {
		if tags, _ := r.(map[string]any)["RepoTags"].([]any); slices.Contains(tags, any("busybox:latest")) {
			out["Images"] = []any{r}
		}
	}
	return out
}

func TestE2EShapeMatchesEngine(t *testing.T) {
	const v = "/v1.41"
	cleanup(t, "shc1")
	cleanupVolumes(t, "shv1")
	cleanupNetworks(t, "shn1", "shfn1", "shbr")
	mustDocker(t, "volume", "create", "--label", "a=b", "shv1")
	mustDocker(t, "network", "create", "-o", "clocker.scope=local", "--label", "a=b", "shn1")
	mustDocker(t, "network", "create", "--label", "a=b", "shfn1") // a fleet network
	mustDocker(t, "run", "-d", "--name", "shc1", "--network", "shfn1", "-v", "shv1:/data", "-p", "80", "--label", "a=b", "busybox", "sleep", "600")
	host := hostOf(t, "shc1")
	e := engineIndex(t, host)
	eu := engineURL(e)
	// The engine's own bridge network of the same make, with a member, for
	// the fleet network's shape.
	engineDocker(t, e, "network", "create", "--label", "a=b", "shbr")
	engineDocker(t, e, "network", "connect", "shbr", "shc1")
	cu := httpURL("")
	netHost := engineURL(engineIndex(t, mustDocker(t, "network", "inspect", "-f", "{{.Node.Name}}", "shn1")))
	id := mustDocker(t, "inspect", "-f", "{{.Id}}", "shc1")
	execID := func(base string) string {
		resp, err := http.Post(base+v+"/containers/"+id+"/exec", "application/json", strings.NewReader(`{"Cmd":["true"]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Id string }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out.Id
	}
	ex := execID(cu)
	none := "?filters=" + url.QueryEscape(`{"name":{"sh-nothing-matches":true}}`)
	shv1 := "?filters=" + url.QueryEscape(`{"name":{"shv1":true}}`)
	noneLabel := "?filters=" + url.QueryEscape(`{"label":{"sh-nothing=matches":true}}`)

	cases := []struct {
		name             string
		clocker, engine  string // paths
		rowKey, rowValue string // compare one row of a list
		on               string // the engine's URL, when not the container's
	}{
		{name: "container inspect", clocker: v + "/containers/shc1/json", engine: v + "/containers/shc1/json"},
		{name: "container list", clocker: v + "/containers/json?all=1", engine: v + "/containers/json?all=1", rowKey: "Names", rowValue: "shc1"},
		{name: "container list, none", clocker: v + "/containers/json" + none, engine: v + "/containers/json" + none},
		{name: "container top", clocker: v + "/containers/shc1/top", engine: v + "/containers/shc1/top"},
		{name: "exec inspect", clocker: v + "/exec/" + ex + "/json", engine: v + "/exec/" + ex + "/json"},
		{name: "image inspect", clocker: v + "/images/busybox/json", engine: v + "/images/busybox/json"},
		{name: "image history", clocker: v + "/images/busybox/history", engine: v + "/images/busybox/history"},
		{name: "image list", clocker: v + "/images/json", engine: v + "/images/json", rowKey: "RepoTags0", rowValue: "busybox:latest"},
		{name: "image list, none", clocker: v + "/images/json" + noneLabel, engine: v + "/images/json" + noneLabel},
		{name: "volume inspect", clocker: v + "/volumes/shv1", engine: v + "/volumes/shv1"},
		// Filtered to shv1: the fleet holds other tests' volumes, which the
		// reference engine does not (an engine's own volume without labels
		// has Labels null); "volume list rows" compares shv1's row too.
		{name: "volume list", clocker: v + "/volumes" + shv1, engine: v + "/volumes" + shv1},
		{name: "volume list, none", clocker: v + "/volumes" + none, engine: v + "/volumes" + none},
		{name: "per-host network inspect", clocker: v + "/networks/shn1", engine: v + "/networks/shn1", on: netHost},
		{name: "fleet network inspect", clocker: v + "/networks/shfn1", engine: v + "/networks/shbr"},
		{name: "bridge inspect", clocker: v + "/networks/bridge", engine: v + "/networks/bridge"},
		{name: "network list: per-host", clocker: v + "/networks", engine: v + "/networks", rowKey: "Name", rowValue: "shn1", on: netHost},
		{name: "network list: fleet", clocker: v + "/networks?filters=" + url.QueryEscape(`{"name":{"shfn1":true}}`),
			engine: v + "/networks?filters=" + url.QueryEscape(`{"name":{"shbr":true}}`)},
		{name: "network list: bridge", clocker: v + "/networks", engine: v + "/networks", rowKey: "Name", rowValue: "bridge"},
		{name: "network list, none", clocker: v + "/networks" + none, engine: v + "/networks" + none},
		{name: "info", clocker: v + "/info", engine: v + "/info"},
		{name: "version", clocker: v + "/version", engine: v + "/version"},
		{name: "system df", clocker: v + "/system/df", engine: v + "/system/df", rowKey: "df"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			on := eu
			if tc.on != "" {
				on = tc.on
			}
			want, got := getJSON(t, on, tc.engine), getJSON(t, cu, tc.clocker)
			if tc.rowKey == "RepoTags0" {
				pick := func(l any) any {
					for _, r := range l.([]any) {
						if tags, _ := r.(map[string]any)["RepoTags"].([]any); slices.Contains(tags, any(tc.rowValue)) {
							return r
						}
					}
					t.Fatalf("no image %s in %v", tc.rowValue, l)
					return nil
				}
				want, got = pick(want), pick(got)
			} else if tc.rowKey == "df" {
				// The fleet holds other tests' containers and volumes: compare
				// this test's rows, not whichever comes first.
				want, got = dfRows(t, want), dfRows(t, got)
			} else if tc.rowKey != "" {
				want, got = rowOf(t, want, tc.rowKey, tc.rowValue), rowOf(t, got, tc.rowKey, tc.rowValue)
			}
			if d := shapeDiff("", want, got); len(d) > 0 {
				t.Errorf("%d differences:\n%s", len(d), strings.Join(d, "\n"))
			}
		})
	}
	t.Run("volume list rows", func(t *testing.T) {
		want := rowOf(t, getJSON(t, eu, v+"/volumes").(map[string]any)["Volumes"], "Name", "shv1")
		got := rowOf(t, getJSON(t, cu, v+"/volumes").(map[string]any)["Volumes"], "Name", "shv1")
		if d := shapeDiff("", want, got); len(d) > 0 {
			t.Errorf("%d differences:\n%s", len(d), strings.Join(d, "\n"))
		}
	})
	t.Run("_ping headers", func(t *testing.T) {
		heads := func(base string) []string {
			resp, err := http.Get(base + "/_ping")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var out []string
			for k := range resp.Header {
				if k != "Date" && k != "Content-Length" {
					out = append(out, k)
				}
			}
			sort.Strings(out)
			return out
		}
		want, got := heads(eu), heads(cu)
		got = slices.DeleteFunc(got, func(h string) bool { return addedHeaders[h] && !slices.Contains(want, h) })
		if !slices.Equal(want, got) {
			t.Errorf("headers: engine %v, Clocker %v", want, got)
		}
	})
}
