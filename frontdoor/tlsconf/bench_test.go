package tlsconf

// What one mutual handshake costs the two ends together (client and
// server in one process over loopback TCP): "default" a default Go client
// (as the docker CLI) against the server as configured (Go's default
// groups: the post-quantum X25519MLKEM768 hybrid when the client offers
// it), "server-classical" a server without the hybrids, client-* a client
// offering one group only, "resumed" a client keeping sessions.
// cpu-µs/op is the process's CPU time per handshake, which the machine's
// other load sways less than wall time. Run with
//
//	go test -run '^$' -bench Handshake ./frontdoor/tlsconf/

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used: the
// machine's other load does not count, as it does in wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchClient(b *testing.B, dir string) *tls.Config {
	raw, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile))
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{c}}
}

func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	if err := InitDir(dir, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, "bench"); err != nil {
		b.Fatal(err)
	}
	s, err := Load(serverFiles(dir))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		curves []tls.CurveID
		resume bool
		server []tls.CurveID
	}{
		{name: "default"},
		{name: "client-x25519", curves: []tls.CurveID{tls.X25519}},
		{name: "client-p256", curves: []tls.CurveID{tls.CurveP256}},
		{name: "resumed", resume: true},
		{name: "server-classical", server: []tls.CurveID{tls.X25519, tls.CurveP256}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cc := benchClient(b, dir)
			cc.CurvePreferences = tc.curves
			if tc.resume {
				cc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			scfg := s.Config()
			if tc.server != nil {
				base := s.cur.Load().Clone()
				base.CurvePreferences = tc.server
				base.GetConfigForClient = nil
				scfg = base
			}
			tln := tls.NewListener(ln, scfg)
			go func() {
				for {
					c, err := tln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						if c.(*tls.Conn).Handshake() == nil {
							_, _ = c.Write([]byte{1})
						}
						var one [1]byte
						_, _ = c.Read(one[:])
					}()
				}
			}()
			before := cpuTime(b)
			for b.Loop() {
				cli, err := tls.Dial("tcp", ln.Addr().String(), cc)
				if err != nil {
					b.Fatal(err)
				}
				var one [1]byte
				if _, err := cli.Read(one[:]); err != nil {
					b.Fatal(err)
				}
				cli.Close()
			}
			b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
