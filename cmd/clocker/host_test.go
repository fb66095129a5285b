package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The host commands send what the fleet API expects and show its answers
// and its errors.
func TestHostCommands(t *testing.T) {
	type call struct{ method, path, body string }
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls = append(calls, call{r.Method, r.URL.RequestURI(), strings.TrimSpace(string(b))})
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/fleet/hosts/busy":
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "host busy has 2 containers"})
		case r.Method == http.MethodGet:
			_ = json.NewEncoder(w).Encode([]map[string]any{{"Name": "h1", "Address": "tcp://10.0.0.1:2375", "Provisioner": "static",
				"State": "healthy", "Containers": 3, "NCPU": 2, "ReservedCPUs": 0.5, "MemTotal": 1 << 30, "Labels": map[string]string{"zone": "z1"}}})
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"Name": "h4", "State": "draining", "ClockerLabels": map[string]string{"a": "b"}})
		}
	}))
	defer srv.Close()
	host := "tcp://" + strings.TrimPrefix(srv.URL, "http://")

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := hostCmd(append([]string{"--host", host}, args...), &out)
		return out.String(), err
	}
	if out, err := run("ls"); err != nil || !strings.Contains(out, "h1") || !strings.Contains(out, "0.5 / 2") || !strings.Contains(out, "zone=z1") {
		t.Errorf("ls: %q %v", out, err)
	}
	if _, err := run("add", "h4=tcp://10.0.0.4:2375"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("label", "h4", "a=b", "gone="); err != nil {
		t.Fatal(err)
	}
	if _, err := run("drain", "--undo", "h4"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("rm", "busy"); err == nil || err.Error() != "host busy has 2 containers" {
		t.Errorf("rm busy: %v, want the server's message", err)
	}
	want := []call{
		{"GET", "/v1/fleet/hosts", ""},
		{"POST", "/v1/fleet/hosts", `{"Name":"h4","URL":"tcp://10.0.0.4:2375"}`},
		{"POST", "/v1/fleet/hosts/h4/labels", `{"Labels":{"a":"b","gone":""}}`},
		{"POST", "/v1/fleet/hosts/h4/drain?drain=false", ""},
		{"DELETE", "/v1/fleet/hosts/busy", ""},
	}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d = %v, want %v", i, calls[i], want[i])
		}
	}

	for _, bad := range [][]string{{}, {"frob"}, {"add"}, {"label", "h1"}, {"label", "h1", "novalue"}, {"rm"}} {
		if _, err := run(bad...); err == nil || !strings.Contains(err.Error(), "Usage: clocker host") {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
	if len(calls) != len(want) {
		t.Errorf("bad command lines reached the server: %v", calls[len(want):])
	}
}
