//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/testfleet"
)

// A real engine started with --tlsverify joins through POST /v1/fleet/hosts
// with Clocker's client certificate, and containers run there through the
// front door; without the certificate it cannot join.
func TestE2EEngineOverTLS(t *testing.T) {
	pki, err := testfleet.WritePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := "ctls"
	if p := fleet.Prefix; len(p) <= 7 {
		prefix = p + "tls" // a private fleet per test run
	}
	tf, err := testfleet.StartTLS(ctx, prefix, 1, pki.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tf.Stop(context.Background()) }()
	e := tf.Engines[0]
	if !strings.HasSuffix(e.TCP, ":2376") {
		t.Fatalf("TLS engine at %s, want port 2376", e.TCP)
	}

	add := func(body map[string]any) (int, string) {
		b, _ := json.Marshal(body)
		return apiCall(t, "POST", "/v1/fleet/hosts", "application/json", strings.NewReader(string(b)))
	}
	if code, msg := add(map[string]any{"URL": e.TCP}); code != http.StatusServiceUnavailable {
		t.Errorf("without TLS: %d %s, want 503", code, msg)
	}
	tls := map[string]string{"CACert": pki.CA, "Cert": pki.ClientCert, "Key": pki.ClientKey}
	if code, msg := add(map[string]any{"URL": e.TCP, "TLS": tls}); code != http.StatusCreated {
		t.Fatalf("add over TLS: %d %s", code, msg)
	}
	defer func() {
		mustClockerHost(t, "drain", e.Name)
		mustClockerHost(t, "rm", e.Name)
	}()
	if out := mustClockerHost(t, "ls"); !strings.Contains(out, e.Name) || !strings.Contains(out, "healthy") {
		t.Fatalf("ls:\n%s", out)
	}
	name := "tls-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	cleanup(t, name)
	if out := mustDocker(t, "run", "--name", name, "-e", "constraint:node=="+e.Name, "busybox", "echo", "over tls"); out != "over tls" {
		t.Errorf("run on the TLS engine: %q", out)
	}
	if h := hostOf(t, name); h != e.Name {
		t.Errorf("ran on %s, want %s", h, e.Name)
	}
	if out := mustDocker(t, "logs", name); out != "over tls" {
		t.Errorf("logs over TLS: %q", out)
	}
}
