package memconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// The connections pass the standard library's net.Conn conformance tests
// (buffering, deadlines, close while blocked, concurrent use).
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		a, b := Pipe("test")
		return a, b, func() { a.Close(); b.Close() }, nil
	})
}

// A half-close is seen as EOF by the other end after what was sent, and
// the other end can still answer.
func TestCloseWrite(t *testing.T) {
	a, b := Pipe("test")
	defer a.Close()
	defer b.Close()
	if _, err := a.Write([]byte("question")); err != nil {
		t.Fatal(err)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "question" {
		t.Fatalf("b read %q, %v; want question then EOF", got, err)
	}
	if _, err := b.Write([]byte("answer")); err != nil {
		t.Fatalf("b cannot answer after a's half-close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(a)
	if err != nil || string(got) != "answer" {
		t.Fatalf("a read %q, %v; want answer then EOF", got, err)
	}
	if _, err := a.Write([]byte("more")); err == nil {
		t.Error("a wrote after its half-close")
	}
}

// A closed end's writes and reads fail; the other end's writes fail.
func TestClose(t *testing.T) {
	a, b := Pipe("test")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Error("b wrote to a closed end")
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("b read %v, want EOF", err)
	}
}

// Dial reaches Accept; after Close, Accept ends and Dial is refused; a
// Dial nobody accepts ends with its context.
func TestListener(t *testing.T) {
	l := Listen("front")
	if got := l.Addr().String(); got != "front" {
		t.Errorf("Addr %q", got)
	}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		c.Close()
	}()
	c, err := l.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("ping"))
	_ = c.(*Conn).CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "ping" {
		t.Errorf("echo %q", got)
	}
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Dial(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial with nobody accepting: %v", err)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if _, err := l.Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Dial after Close: %v", err)
	}
}

// An http.Server serves the listener and an http.Client dials it, keeping
// connections alive between requests.
func TestHTTP(t *testing.T) {
	l := Listen("front")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(bytes.ToUpper(body))
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: l.DialContext}}
	for _, word := range []string{"one", "two"} {
		resp, err := hc.Post("http://front/", "text/plain", strings.NewReader(word))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != strings.ToUpper(word) {
			t.Errorf("%s: %q", word, got)
		}
	}
}
