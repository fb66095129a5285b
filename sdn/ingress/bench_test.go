package ingress

import (
	"io"
	"net"
	"testing"
)

// sink accepts connections, reads each to EOF and closes it.
func sink(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1<<20)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				_, _ = c.Write([]byte{1})
			}()
		}
	}()
	return l.Addr().String()
}

func send(b *testing.B, addr string, n int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(buf) {
		if _, err := c.Write(buf[:min(left, len(buf))]); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTCPForward sends 64 MiB per op on loopback, straight to a sink
// and through a forward to it: the forwarder's own cost.
func BenchmarkTCPForward(b *testing.B) {
	const size = 64 << 20
	target := sink(b)
	f := New(loopback, Options{})
	b.Cleanup(f.CloseAll)
	k := Key{Proto: "tcp", Port: 0}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	k.Port = uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	if err := f.Open(k); err != nil {
		b.Fatal(err)
	}
	f.SetTarget(k, target)
	for _, c := range []struct{ name, addr string }{{"direct", target}, {"forward", net.JoinHostPort("127.0.0.1", k.portString())}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				send(b, c.addr, size)
			}
		})
	}
}
