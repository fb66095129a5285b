package ingress

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var loopback = net.ParseIP("127.0.0.1")

// freeKey finds a port free for proto on loopback.
func freeKey(t *testing.T, proto string) Key {
	t.Helper()
	var addr net.Addr
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr()
		c.Close()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr()
		l.Close()
	}
	_, p, _ := net.SplitHostPort(addr.String())
	n, _ := strconv.Atoi(p)
	return Key{Proto: proto, Port: uint16(n)}
}

// echoTCP serves an echo that, on EOF from the client, writes "bye" and
// closes: it proves half-close travels each way.
func echoTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_, _ = c.Write([]byte("bye"))
			}()
		}
	}()
	return l.Addr().String()
}

func newFwd(t *testing.T, opts Options) *Forwarder {
	f := New(loopback, opts)
	t.Cleanup(f.CloseAll)
	return f
}

func TestTCPEchoAndHalfClose(t *testing.T) {
	f := newFwd(t, Options{})
	k := freeKey(t, "tcp")
	if err := f.Open(k); err != nil {
		t.Fatal(err)
	}
	f.SetTarget(k, echoTCP(t))
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", k.portString()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("ingress "), 100000)
	go func() {
		_, _ = c.Write(msg)
		_ = c.(*net.TCPConn).CloseWrite() // half-close: the reply still comes
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, msg...), "bye"...); !bytes.Equal(got, want) {
		t.Fatalf("echo: got %d bytes, want %d", len(got), len(want))
	}
	waitFor(t, func() bool {
		st, _ := f.Stats(k)
		return st.Active == 0
	})
	st, ok := f.Stats(k)
	if !ok || st.Connections != 1 || st.BytesIn != uint64(len(msg)) || st.BytesOut != uint64(len(msg)+3) {
		t.Fatalf("stats: %+v", st)
	}
}

func TestTCPWaitsForTarget(t *testing.T) {
	f := newFwd(t, Options{WaitTarget: 30 * time.Second}) // longer than any stall before SetTarget
	k := freeKey(t, "tcp")
	if err := f.Open(k); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", k.portString()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	target := echoTCP(t)
	time.AfterFunc(100*time.Millisecond, func() { f.SetTarget(k, target) })
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	if string(got) != "hibye" {
		t.Fatalf("got %q", got)
	}
}

func TestTCPNoTargetCloses(t *testing.T) {
	f := newFwd(t, Options{WaitTarget: 50 * time.Millisecond})
	k := freeKey(t, "tcp")
	if err := f.Open(k); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", k.portString()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var ne net.Error
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read from a forward without target: %d %v", n, err)
	}
}

func TestCloseRemovesListenerAndConnections(t *testing.T) {
	f := newFwd(t, Options{})
	k := freeKey(t, "tcp")
	if err := f.Open(k); err != nil {
		t.Fatal(err)
	}
	if err := f.Open(k); err != nil { // opening twice is a no-op
		t.Fatal(err)
	}
	f.SetTarget(k, echoTCP(t))
	addr := net.JoinHostPort("127.0.0.1", k.portString())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	f.Close(k)
	if _, ok := f.Stats(k); ok || len(f.Keys()) != 0 {
		t.Fatal("closed key still listed")
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("open connection after close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the port still accepts after Close")
	}
	// The port is free again.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	l.Close()
}

func TestOpenTakenPortFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	n, _ := strconv.Atoi(p)
	f := newFwd(t, Options{})
	err = f.Open(Key{Proto: "tcp", Port: uint16(n)})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("open a taken port: %v", err)
	}
	if err := f.Open(Key{Proto: "sctp", Port: 1}); !errors.Is(err, ErrProto) {
		t.Fatalf("sctp: %v", err)
	}
}

func TestUDPEcho(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
		}
	}()
	// Idle long enough that no stall between a client's packets on a loaded
	// machine ends its session (a third session would be counted).
	f := newFwd(t, Options{UDPIdle: 2 * time.Second})
	k := freeKey(t, "udp")
	if err := f.Open(k); err != nil {
		t.Fatal(err)
	}
	f.SetTarget(k, srv.LocalAddr().String())
	for i := range 2 { // two clients, two sessions
		c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", k.portString()))
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			msg := "ping" + strconv.Itoa(i) + strconv.Itoa(j)
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != strings.ToUpper(msg) {
				t.Fatalf("udp echo: %q %v", buf[:n], err)
			}
		}
		c.Close()
	}
	// Bytes are counted after they are written, so a reply may be read
	// before the counters move: wait for them, fail on a wrong total.
	var st Stats
	waitFor(t, func() bool {
		st, _ = f.Stats(k)
		return st.BytesIn >= 36 && st.BytesOut >= 36
	})
	if st.Connections != 2 || st.BytesIn != 36 || st.BytesOut != 36 {
		t.Fatalf("stats: %+v", st)
	}
	// Idle sessions end.
	waitFor(t, func() bool {
		st, _ := f.Stats(k)
		return st.Active == 0
	})
}

func TestCollector(t *testing.T) {
	f := newFwd(t, Options{})
	k := freeKey(t, "tcp")
	if err := f.Open(k); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector{F: f})
	want := `
# HELP clocker_ingress_forwards_open Open ingress listeners, by protocol.
# TYPE clocker_ingress_forwards_open gauge
clocker_ingress_forwards_open{proto="tcp"} 1
clocker_ingress_forwards_open{proto="udp"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "clocker_ingress_forwards_open"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(Collector{F: f}, "clocker_ingress_bytes_total"); n != 2 {
		t.Fatalf("bytes series: %d", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
