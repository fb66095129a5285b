package proxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// A torrent arrives whole and in order; the copy ends with the stream.
func TestBurstCopyTorrent(t *testing.T) {
	w, r := tcpPair(t)
	data := make([]byte, 8<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	go func() {
		for off := 0; off < len(data); off += 4096 { // engine-sized pieces
			_, _ = w.Write(data[off:min(off+4096, len(data))])
		}
		_ = w.CloseWrite()
	}()
	var got bytes.Buffer
	n, err := burstCopy(&got, r)
	if err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("copied %d bytes (%v), equal %v; want %d", n, err, bytes.Equal(got.Bytes(), data), len(data))
	}
}

// After a hot spell, a small piece is still delivered at once (well before
// the low-water mark would be reached), and a quiet stream piece by piece.
func TestBurstCopyTrickleAfterTorrent(t *testing.T) {
	w, r := tcpPair(t)
	pr, pw := io.Pipe()
	go func() { _, _ = burstCopy(pw, r); pw.Close() }()

	hot := make([]byte, 1<<20)
	go func() { _, _ = w.Write(hot) }()
	if _, err := io.ReadFull(pr, make([]byte, len(hot))); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := []byte{'p', 'i', 'n', 'g', byte('0' + i)}
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(pr, got); done <- err }()
		select {
		case err := <-done:
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("piece %d: %q (%v)", i, got, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("piece %d of %d bytes held back", i, len(msg))
		}
		time.Sleep(10 * time.Millisecond) // quiet between pieces
	}
}
