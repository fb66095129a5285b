package main

// The cost of TLS at the front door: a new connection (TCP, and with TLS
// the mutual handshake) plus GET /containers/json, p50 over TLS against
// p50 over plain TCP, through the whole wrapped handler on a fake engine
// holding 30 containers. The target: tls/plain ≤ 1.3. Run with
//
//	go test -run '^$' -bench FrontDoorTLS -benchtime 1x ./cmd/clocker/
//
// It reports plain-p50-ms, tls-p50-ms (a full mutual handshake, as the
// docker CLI makes one per command), ratio, and resumed-p50-ms and
// resumed-ratio for a client that keeps TLS sessions, and
// kept-alive-ratio for requests on an open connection (at least 300
// samples of each, interleaved, so all see the same machine); it passes or
// fails on nothing.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clocker/clocker/frontdoor/tlsconf"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

func BenchmarkFrontDoorTLS(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	e := fakeengine.New(fakeengine.Options{Name: "h1", Images: []string{"busybox"}})
	for range 30 {
		if _, err := e.Create(fakeengine.Spec{Image: "busybox", Running: true}); err != nil {
			b.Fatal(err)
		}
	}
	es, err := fakeengine.Listen(e, "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	fleet := hosts.NewFleet(nil, log, hosts.NewMetrics(nil))
	defer fleet.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := fleet.Add(ctx, hosts.Record{Name: "h1", URL: es.URL}, false); err != nil {
		b.Fatal(err)
	}
	if err := fleet.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	strategy, err := scheduler.New("spread")
	if err != nil {
		b.Fatal(err)
	}
	handler := proxy.NewServer(fleet, strategy, log, 10<<20, nil).Handler()

	dir := b.TempDir()
	if err := tlsconf.InitDir(dir, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, "bench"); err != nil {
		b.Fatal(err)
	}
	serveWith := func(f frontDoorFlags) (string, *http.Client) {
		if err := f.check(); err != nil {
			b.Fatal(err)
		}
		fd, err := f.build(ctx, 10<<20, log)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := listen("tcp://127.0.0.1:0", fd.tls)
		if err != nil {
			b.Fatal(err)
		}
		srv := fd.cfg.HTTPServer(fd.cfg.Wrap(handler))
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		// A new connection for every request: the handshake is the point.
		tr := &http.Transport{DisableKeepAlives: true}
		scheme := "http://"
		if fd.tls != nil {
			scheme = "https://"
			tr.TLSClientConfig = clientTLS(b, dir)
		}
		return scheme + ln.Addr().String() + "/v1.41/containers/json", &http.Client{Transport: tr}
	}
	defaults := frontDoorFlags{maxDepth: 100, maxStreams: 256, readHeader: 30 * time.Second, idle: time.Minute, maxHeaderBytes: 256 << 10}
	plain := defaults
	secure := defaults
	secure.tlsVerify = true
	secure.caCert, secure.cert, secure.key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem")
	plainURL, plainClient := serveWith(plain)
	tlsURL, tlsClient := serveWith(secure)
	// A client that keeps TLS sessions resumes them (TLS 1.3 PSK with
	// ECDHE): no certificates signed or verified again.
	resumeTr := tlsClient.Transport.(*http.Transport).Clone()
	resumeTr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	resumeClient := &http.Client{Transport: resumeTr}
	// Kept-alive connections (SDKs, and the docker CLI within one
	// command): the handshake paid once, what each request costs.
	warmPlainTr := plainClient.Transport.(*http.Transport).Clone()
	warmPlainTr.DisableKeepAlives = false
	warmTLSTr := tlsClient.Transport.(*http.Transport).Clone()
	warmTLSTr.DisableKeepAlives = false
	warmPlain, warmTLS := &http.Client{Transport: warmPlainTr}, &http.Client{Transport: warmTLSTr}

	get := func(c *http.Client, url string) time.Duration {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %s", url, resp.Status)
		}
		return time.Since(start)
	}
	n := max(b.N, 300)
	var tp, tt, tr, wp, wt []time.Duration
	b.ResetTimer()
	for range n {
		tp = append(tp, get(plainClient, plainURL))
		tt = append(tt, get(tlsClient, tlsURL))
		tr = append(tr, get(resumeClient, tlsURL))
		wp = append(wp, get(warmPlain, plainURL))
		wt = append(wt, get(warmTLS, tlsURL))
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	pp, pt, pr := p50(tp), p50(tt), p50(tr)
	b.ReportMetric(pp, "plain-p50-ms")
	b.ReportMetric(pt, "tls-p50-ms")
	b.ReportMetric(pt/pp, "ratio")
	b.ReportMetric(pr, "resumed-p50-ms")
	b.ReportMetric(pr/pp, "resumed-ratio")
	b.ReportMetric(p50(wt)/p50(wp), "kept-alive-ratio")
}

func clientTLS(b *testing.B, dir string) *tls.Config {
	raw, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost"}
}
