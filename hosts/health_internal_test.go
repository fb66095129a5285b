package hosts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNextCheck(t *testing.T) {
	const (
		I    = 2 * time.Second
		slot = 250 * time.Millisecond
		base = 1000 * time.Second // a multiple of slot: due times are exact
	)
	for _, tt := range []struct {
		name                string
		now, proof, factsAt time.Duration
		wait                time.Duration
		facts               bool
	}{
		{"just checked", base, base, base, I, false},
		{"proof one interval old", base + I, base, base, 0, false},
		{"proof older", base + 3*I, base, base + 3*I, -2 * I, false},
		{"answered meanwhile", base + I, base + I/2, base, I / 2, false},
		// Rounded down to the slot: early by less than a slot, never late.
		{"rounded down", base, base + 100*time.Millisecond, base, I, false},
		{"rounded down more", base, base + 300*time.Millisecond, base, I + slot, false},
		{"facts due before the ping", base + 10*I, base + 9*I + I/2, base, 0, true},
		{"facts folded into a due check", base + 9*I, base + 8*I, base - 3*I/4, 0, true},
		{"facts not yet", base + 9*I, base + 8*I, base - I/4, 0, false},
		{"facts not near", base + 5*I, base + 4*I, base, 0, false},
	} {
		wait, facts := nextCheck(tt.now, tt.proof, tt.factsAt, I)
		if wait != tt.wait || facts != tt.facts {
			t.Errorf("%s: nextCheck = %v, %v; want %v, %v", tt.name, wait, facts, tt.wait, tt.facts)
		}
	}
}

// Whatever the phase, a host is checked no later than one interval after
// its last answer (a dead engine is found as soon as with a ticker), and
// not more than a slot earlier.
func TestNextCheckNeverLate(t *testing.T) {
	for _, I := range []time.Duration{100 * time.Millisecond, 2 * time.Second, time.Hour} {
		slot := checkSlot(I)
		for i := range 5000 {
			proof := time.Duration(i)*7919*time.Microsecond + time.Second
			now := proof + time.Duration(i%13)*I/13
			wait, _ := nextCheck(now, proof, proof, I)
			due := now + wait
			if due > proof+I || due <= proof+I-slot {
				t.Fatalf("interval %v, proof %v: due %v, want in (%v, %v]", I, proof, due, proof+I-slot, proof+I)
			}
		}
	}
}

// probeServer is an engine's HTTP server that counts its connections.
func probeServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, Endpoint, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	ep, err := ParseEndpoint("tcp://" + srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return srv, ep, &conns
}

func soon() time.Time { return time.Now().Add(5 * time.Second) }

// The probe keeps one connection for all its checks, reads chunked and
// sized answers, and replaces a connection the engine closed without
// failing the check.
func TestProbe(t *testing.T) {
	info := `{"Name":"e1","NCPU":4,"Labels":["` + strings.Repeat("x", 5000) + `"]}`
	srv, ep, conns := probeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_ping":
			_, _ = io.WriteString(w, "OK")
		case "/info":
			// Big enough to be sent chunked, as dockerd's is.
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, info)
		default:
			http.NotFound(w, r)
		}
	})
	p := newProbe(t.Context(), ep)
	defer p.close()
	for range 5 {
		if status, _, err := p.get("/_ping", soon(), false); err != nil || status != 200 {
			t.Fatalf("ping: %d %v", status, err)
		}
	}
	status, body, err := p.get("/info", soon(), true)
	if err != nil || status != 200 || string(body) != info {
		t.Fatalf("info: %d %v %.40q", status, err, body)
	}
	if status, _, err := p.get("/nope", soon(), false); err != nil || status != 404 {
		t.Fatalf("GET /nope: %d %v", status, err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 7 checks, want 1", n)
	}

	srv.CloseClientConnections() // as an engine dropping idle connections
	if status, _, err := p.get("/_ping", soon(), false); err != nil || status != 200 {
		t.Fatalf("ping after the engine closed the connection: %d %v", status, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A check of an engine that does not answer ends at its deadline; the end
// of the host's context ends it at once.
func TestProbeHungEngine(t *testing.T) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	_, ep, _ := probeServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	p := newProbe(ctx, ep)
	defer p.close()

	if _, _, err := p.get("/_ping", time.Now().Add(50*time.Millisecond), false); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("hung engine: err %v, want a deadline exceeded", err)
	}
	<-arrived

	done := make(chan error, 1)
	go func() {
		_, _, err := p.get("/_ping", time.Now().Add(time.Hour), false)
		done <- err
	}()
	<-arrived // the check waits for its answer
	cancel()
	if err := <-done; err == nil {
		t.Fatal("check of a removed host succeeded")
	}
}
