//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/testfleet"
)

// A reference engine: one more dockerd, alone (no Clocker in front), for
// tests that compare what Clocker answers with what one engine answers for
// the same requests. It starts on first use and stops with the suite.

var (
	refOnce  sync.Once
	refFleet *testfleet.Fleet
	refErr   error
)

// referenceEngine starts (once) and returns the reference engine's name in
// refFleet; it fails the test when it cannot start.
func referenceEngine(t testing.TB) string {
	t.Helper()
	refOnce.Do(func() {
		prefix := os.Getenv("CLOCKER_E2E_PREFIX")
		if prefix == "" {
			prefix = "ce2e"
		}
		prefix += "ref"
		if len(prefix) > 10 {
			prefix = prefix[:10]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		refFleet, refErr = testfleet.Start(ctx, prefix, 1)
		if refErr != nil {
			return
		}
		// Every fleet imports its own busybox: the reference engine takes
		// the test fleet's, so that images built on it match.
		old, err := refFleet.Docker(ctx, refFleet.Engines[0].Name, "image", "inspect", "-f", "{{.Id}}", "busybox")
		if err != nil {
			refErr = err
			return
		}
		cmd := exec.CommandContext(ctx, "sh", "-c", `docker -H "$1" save busybox | docker -H "$2" load`, "sh",
			fleet.Engines[0].Unix, refFleet.Engines[0].Unix)
		if out, err := cmd.CombinedOutput(); err != nil {
			refErr = fmt.Errorf("busybox to the reference engine: %v: %s", err, out)
			return
		}
		now, err := refFleet.Docker(ctx, refFleet.Engines[0].Name, "image", "inspect", "-f", "{{.Id}}", "busybox")
		if err == nil && now != old {
			_, err = refFleet.Docker(ctx, refFleet.Engines[0].Name, "rmi", strings.TrimSpace(old))
		}
		refErr = err
	})
	if refErr != nil {
		t.Fatalf("reference engine: %v", refErr)
	}
	return refFleet.Engines[0].Name
}

// stopReferenceEngine removes the reference engine if a test started it.
func stopReferenceEngine() {
	if refFleet == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := refFleet.Stop(ctx); err != nil {
		fmt.Println("e2e: stop the reference engine:", err)
	}
}

// refDocker runs the docker CLI directly against the reference engine.
func refDocker(t testing.TB, args ...string) string {
	t.Helper()
	name := referenceEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := refFleet.Docker(ctx, name, args...)
	if err != nil {
		t.Fatalf("docker on the reference engine: %v", err)
	}
	return out
}

// refURL is the reference engine's HTTP address.
func refURL(t testing.TB, path string) string {
	t.Helper()
	referenceEngine(t)
	return "http://" + strings.TrimPrefix(refFleet.Engines[0].TCP, "tcp://") + path
}
