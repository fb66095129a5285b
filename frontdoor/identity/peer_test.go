package identity

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// A unix socket's peer is identified by its user, and root is an admin.
func TestUnixPeer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Required: true}
	srv := &http.Server{Handler: cfg.Middleware(echo), ConnContext: ConnContext}
	go srv.Serve(ln)
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", sock)
	}}}
	resp, err := c.Get("http://x/containers/json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	name := "uid:" + strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	want := "unix:" + name
	if os.Getuid() == 0 {
		want += ":admin"
	}
	if resp.StatusCode != 200 || string(b) != want {
		t.Errorf("%d %q, want %q", resp.StatusCode, b, want)
	}
}
