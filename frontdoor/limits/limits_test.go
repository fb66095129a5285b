package limits

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/frontdoor/identity"
)

func TestDepth(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{`{}`, 1},
		{`{"a":[1,{"b":2}]}`, 3},
		{`{"a":"[[[[{{{"}`, 1},
		{`{"a":"\"[["}`, 1},
		{`[[[]],[]]`, 3},
		{`plain`, 0},
	} {
		if got := Depth([]byte(tt.in)); got != tt.want {
			t.Errorf("Depth(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// sink answers with the body it got and whether Buffered held it.
var sink = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, buffered := Buffered(r)
	if buffered {
		w.Header().Set("Buffered", "yes")
	}
	w.Write(b)
})

func TestBody(t *testing.T) {
	b := Body{Max: 64, MaxDepth: 3}
	tests := []struct {
		name, path, ct, body string
		code                 int
		buffered             bool
	}{
		{"small JSON", "/containers/create", "application/json", `{"Image":"busybox"}`, 200, true},
		{"too large", "/containers/create", "application/json", `{"Image":"` + strings.Repeat("x", 80) + `"}`, 413, false},
		{"too deep", "/containers/create", "application/json", `{"a":{"b":{"c":{"d":1}}}}`, 400, false},
		{"create without a content type is read", "/v1.41/containers/create", "", `{"Image":"busybox"}`, 200, true},
		{"YAML under a JSON type is not held to depth", "/v1/applications", "application/json", "services:\n- {a: {b: {c: {d: 1}}}}", 200, true},
		{"a stream passes unread", "/build", "application/x-tar", strings.Repeat("x", 200), 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			w := httptest.NewRecorder()
			b.Middleware(sink).ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code == 200 && w.Body.String() != tt.body {
				t.Errorf("handler got %q", w.Body)
			}
			if (w.Header().Get("Buffered") == "yes") != tt.buffered {
				t.Errorf("buffered: %v, want %v", w.Header().Get("Buffered"), tt.buffered)
			}
		})
	}
	// A body that lies about its length (chunked) is still cut at Max.
	r := httptest.NewRequest("POST", "/containers/create", io.MultiReader(strings.NewReader(`{"a":"`), strings.NewReader(strings.Repeat("y", 100))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	b.Middleware(sink).ServeHTTP(w, r)
	if w.Code != 413 {
		t.Errorf("chunked oversize: %d", w.Code)
	}
}

func TestCleanArchivePath(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp":             "/tmp",
		"/tmp/":            "/tmp/",
		"/tmp/.":           "/tmp/.",
		"/../../etc":       "/etc",
		"/a/../../b//c":    "/b/c",
		"//":               "/",
		"/.":               "/.",
		"rel/../x":         "x",
		"../x":             "../x",
		"/var/lib/../log/": "/var/log/",
	} {
		if got := CleanArchivePath(in); got != want {
			t.Errorf("CleanArchivePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArchive(t *testing.T) {
	got := ""
	h := Archive(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.Query().Get("path") }))
	for _, tt := range []struct {
		method, url string
		code        int
		path        string
	}{
		{"PUT", "/v1.41/containers/web/archive?path=/a/../../etc", 200, "/etc"},
		{"GET", "/containers/web/archive?path=/tmp/./x/", 200, "/tmp/x/"},
		{"PUT", "/containers/web/archive?path=", 400, ""},
		{"PUT", "/containers/web/archive?path=/tmp%00x", 400, ""},
	} {
		got = ""
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.url, nil))
		if w.Code != tt.code || got != tt.path {
			t.Errorf("%s %s: %d path %q, want %d %q", tt.method, tt.url, w.Code, got, tt.code, tt.path)
		}
	}
}

// The bound holds per identity while streams are open, and frees a slot
// when a stream ends.
func TestStreams(t *testing.T) {
	s := &Streams{Max: 2}
	release := make(chan struct{})
	var started sync.WaitGroup
	h := s.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		started.Done()
		<-release
		conn.Close()
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := r.Header.Get("Who")
		h.ServeHTTP(w, r.WithContext(identity.NewContext(r.Context(), identity.Identity{Name: who})))
	}))
	defer srv.Close()
	// open starts an attach; a stream let through is hijacked and answers
	// nothing, which the handler's started.Done tells.
	open := func(who string) net.Conn {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /v1.41/containers/web/attach?stream=1 HTTP/1.1\r\nHost: x\r\nWho: "+who+"\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
		return c
	}
	started.Add(2)
	a1, a2 := open("alice"), open("alice")
	started.Wait()
	c := open("alice")
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a failure bound only
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third stream of alice: %v %v, want 429", resp, err)
	}
	c.Close()
	if s.Open("alice") != 2 {
		t.Errorf("alice holds %d", s.Open("alice"))
	}
	started.Add(1)
	b1 := open("bob") // bob has his own bound
	started.Wait()
	if s.Open("bob") != 1 {
		t.Errorf("bob holds %d", s.Open("bob"))
	}
	close(release)
	for _, c := range []net.Conn{a1, a2, b1} {
		c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Open("alice") != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Open("alice") != 0 {
		t.Errorf("alice still holds %d after her streams ended", s.Open("alice"))
	}
}
