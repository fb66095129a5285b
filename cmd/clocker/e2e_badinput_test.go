//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Every wrong input gets a Docker-style error and changes nothing.
func TestE2EBadInputChangesNothing(t *testing.T) {
	big := `{"Image":"busybox","Env":["X=` + strings.Repeat("a", 11<<20) + `"]}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		message                         string // a part of the message
	}{
		{"malformed JSON", "POST", "/v1.41/containers/create", "application/json", `{"Image":`, 400, "invalid JSON"},
		{"wrong types", "POST", "/v1.41/containers/create", "application/json", `{"Image":"busybox","Cmd":5}`, 400, "invalid JSON"},
		{"empty body", "POST", "/v1.41/containers/create", "application/json", ``, 400, "config cannot be empty"},
		{"oversized body", "POST", "/v1.41/containers/create", "application/json", big, 413, "larger than"},
		{"invalid name", "POST", "/v1.41/containers/create?name=bad%20name!", "application/json", `{"Image":"busybox"}`, 400, "Invalid container name (bad name!)"},
		{"missing image", "POST", "/v1.41/containers/create", "application/json", `{"Image":"nope:none"}`, 404, "No such image: nope:none"},
		{"unknown container", "GET", "/v1.41/containers/deadbeefdead/json", "", "", 404, "No such container: deadbeefdead"},
		{"unknown container start", "POST", "/v1.41/containers/nobody/start", "", "", 404, "No such container: nobody"},
		{"unknown exec", "GET", "/v1.41/exec/0123abcd/json", "", "", 404, "No such exec instance"},
		{"unknown route", "GET", "/v1.41/nothing/here", "", "", 404, "page not found"},
		{"version too new", "GET", "/v9.99/version", "", "", 400, "client version 9.99 is too new. Maximum supported API version is 1.41"},
		{"version too old", "GET", "/v1.5/version", "", "", 400, "is too old"},
		{"swarm route", "GET", "/v1.41/services", "", "", 503, "not a swarm manager"},
		{"route not served yet", "POST", "/v1.41/images/busybox/fly", "", "", 501, "not supported by Clocker yet"},
		{"bad list filter JSON", "GET", "/v1.41/containers/json?filters=%7Bnope", "", "", 400, ""},
		{"bad exec body", "POST", "/v1.41/containers/x/exec", "application/json", `{"Cmd":`, 404, "No such container: x"},
	}
	before := engineContainerCount(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body *bytes.Reader
			body = bytes.NewReader([]byte(tt.body))
			code, out := apiCall(t, tt.method, tt.path, tt.ctype, body)
			if code != tt.status {
				t.Fatalf("status %d, want %d (%s)", code, tt.status, trunc(out))
			}
			var e struct{ Message string }
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Message == "" {
				t.Fatalf("body is not Docker's {\"message\": …}: %s", trunc(out))
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Fatalf("message %q lacks %q", e.Message, tt.message)
			}
		})
	}
	// A bad exec body on a real container: refused before the engine.
	cleanup(t, "badexec")
	mustDocker(t, "run", "-d", "--name", "badexec", "busybox", "sleep", "300")
	before++
	code, out := apiCall(t, "POST", "/v1.41/containers/badexec/exec", "application/json", strings.NewReader(`{"Cmd":`))
	if code != 400 || !strings.Contains(out, "invalid JSON") {
		t.Fatalf("bad exec body: %d %s", code, out)
	}
	if after := engineContainerCount(t); after != before {
		t.Fatalf("bad input changed the engines: %d containers before, %d after", before, after)
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
