package fakeengine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// do sends a request (a JSON body when any) and returns status and body.
func do(t *testing.T, s *Server, method, path, body string) (int, string) {
	t.Helper()
	return doType(t, s, method, path, "application/json", body)
}

func doType(t *testing.T, s *Server, method, path, contentType, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+strings.TrimPrefix(s.URL, "tcp://")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// session opens a hijacked stream: the response head read, stdin early.
func session(t *testing.T, s *Server, path, body string, upgrade bool, early string) (*net.TCPConn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: engine\r\n", path)
	if body != "" {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	if upgrade {
		req.WriteString("Connection: Upgrade\r\nUpgrade: tcp\r\n")
	}
	req.WriteString("\r\n" + body + early)
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func TestLogs(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	id, _ := s.Create(Spec{Name: "web", Image: "busybox", Running: true})
	tty, _ := s.Create(Spec{Name: "term", Image: "busybox", Tty: true})
	for i := range 4 {
		_ = s.WriteLog(id, 1+i%2, fmt.Sprintf("line %d\n", i))
	}
	_ = s.WriteLog(tty, Stdout, "raw\n")
	if err := s.WriteLog(id, Stdin, "x"); err == nil {
		t.Error("a log line on stdin")
	}
	frames := func(lines ...int) string {
		var b bytes.Buffer
		for _, i := range lines {
			b.Write(MuxFrame(byte(1+i%2), fmt.Sprintf("line %d\n", i)))
		}
		return b.String()
	}
	for _, tt := range []struct {
		query, want string
		status      int
	}{
		{query: "stdout=1&stderr=1", want: frames(0, 1, 2, 3), status: 200},
		{query: "stdout=1", want: frames(0, 2), status: 200},
		{query: "stderr=true&tail=1", want: frames(3), status: 200},
		{query: "stdout=1&stderr=1&tail=all", want: frames(0, 1, 2, 3), status: 200},
		{query: "", want: `{"message":"Bad parameters: you must choose at least one stream"}` + "\n", status: 400},
	} {
		if code, body := do(t, s, "GET", "/v1.41/containers/web/logs?"+tt.query, ""); code != tt.status || body != tt.want {
			t.Errorf("logs?%s: %d %q, want %d %q", tt.query, code, body, tt.status, tt.want)
		}
	}
	if code, body := do(t, s, "GET", "/containers/term/logs?stdout=1", ""); code != 200 || body != "raw\n" {
		t.Errorf("TTY logs: %d %q", code, body)
	}
	if code, _ := do(t, s, "GET", "/containers/nosuch/logs?stdout=1", ""); code != 404 {
		t.Errorf("logs of nothing: %d", code)
	}

	// Follow: what is there, then new lines, until the client goes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+strings.TrimPrefix(s.URL, "tcp://")+"/containers/web/logs?stdout=1&tail=1&follow=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, len(frames(2)))
	if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != frames(2) {
		t.Fatalf("follow first %q %v", got, err)
	}
	if n := s.LogFollowers(); n != 1 {
		t.Errorf("%d followers, want 1", n)
	}
	_ = s.WriteLog(id, Stdout, "line 4\n")
	if _, err := io.ReadFull(resp.Body, got[:len(frames(4))]); err != nil || string(got[:len(frames(4))]) != frames(4) {
		t.Fatalf("follow next %q %v", got, err)
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for s.LogFollowers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("follow did not end with its client")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A stop ends a follow.
	resp2, err := http.Get("http://" + strings.TrimPrefix(s.URL, "tcp://") + "/containers/web/logs?stdout=1&tail=0&follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	_ = s.Stop(id)
	if b, err := io.ReadAll(resp2.Body); err != nil || len(b) != 0 {
		t.Errorf("follow after a stop: %q %v", b, err)
	}
}

func TestExecAndAttach(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	s.RecordCalls()
	id, _ := s.Create(Spec{Name: "web", Image: "busybox", Running: true})
	idle, _ := s.Create(Spec{Name: "idle", Image: "busybox"})
	create := func(cfg string) string {
		t.Helper()
		code, body := do(t, s, "POST", "/v1.41/containers/web/exec", cfg)
		var out struct{ Id string }
		if code != 201 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("exec create: %d %s", code, body)
		}
		return out.Id
	}
	if code, body := do(t, s, "POST", "/containers/idle/exec", `{"Cmd":["sh"]}`); code != 409 || !strings.Contains(body, "Container "+idle+" is not running") {
		t.Errorf("exec in a stopped container: %d %s", code, body)
	}
	if code, _ := do(t, s, "POST", "/containers/web/exec", `{"Cmd":`); code != 400 {
		t.Errorf("bad body: %d", code)
	}
	if code, body := do(t, s, "GET", "/exec/nope/json", ""); code != 404 || !strings.Contains(body, "No such exec instance: nope") {
		t.Errorf("unknown exec: %d %s", code, body)
	}

	// Detached: runs and ends; a second start is refused.
	ex := create(`{"Cmd":["cat"]}`)
	if code, _ := do(t, s, "POST", "/exec/"+ex+"/resize?h=40&w=80", ""); code != 200 {
		t.Errorf("resize: %d", code)
	}
	if code, _ := do(t, s, "POST", "/exec/"+ex+"/start", `{"Detach":true}`); code != 200 {
		t.Errorf("detached start: %d", code)
	}
	code, body := do(t, s, "GET", "/exec/"+ex+"/json", "")
	var in struct {
		ID, ContainerID string
		Running         bool
		ExitCode        *int
	}
	if code != 200 || json.Unmarshal([]byte(body), &in) != nil || in.ID != ex || in.ContainerID != id || in.Running || in.ExitCode == nil || *in.ExitCode != 0 {
		t.Errorf("exec inspect after: %d %s", code, body)
	}
	if code, _ := do(t, s, "POST", "/exec/"+ex+"/start", `{"Detach":true}`); code != 409 {
		t.Errorf("second start: %d, want 409", code)
	}

	// Attached cat, framed without a TTY, both ways, then half-close.
	for _, upgrade := range []bool{true, false} {
		ex := create(`{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true}`)
		conn, br, resp := session(t, s, "/v1.41/exec/"+ex+"/start", `{"Detach":false}`, upgrade, "early\n")
		want := 200
		if upgrade {
			want = 101
		}
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" || resp.Header.Get("Api-Version") != "1.41" {
			t.Fatalf("exec start: %s %v", resp.Status, resp.Header)
		}
		if upgrade && (resp.Header.Get("Upgrade") != "tcp" || resp.Header.Get("Connection") != "Upgrade") {
			t.Errorf("upgrade headers %v", resp.Header)
		}
		frame := string(MuxFrame(Stdout, "early\n"))
		got := make([]byte, len(frame))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != frame {
			t.Fatalf("early stdin echoed as %q %v", got, err)
		}
		_, _ = conn.Write([]byte("last\n"))
		_ = conn.CloseWrite()
		if rest, err := io.ReadAll(br); err != nil || string(rest) != string(MuxFrame(Stdout, "last\n")) {
			t.Errorf("after half-close %q %v", rest, err)
		}
	}

	// echo with a TTY: raw output, ends with stdin still open.
	ex = create(`{"Cmd":["echo","hello","world"],"AttachStdin":true,"AttachStdout":true,"Tty":true}`)
	conn, br, _ := session(t, s, "/exec/"+ex+"/start", `{}`, true, "")
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if out, err := io.ReadAll(br); err != nil || string(out) != "hello world\n" {
		t.Errorf("echo: %q %v", out, err)
	}

	// Attach to a TTY container: raw echo.
	tty, _ := s.Create(Spec{Name: "term", Image: "busybox", Tty: true, Running: true})
	conn, br, resp := session(t, s, "/containers/term/attach?stream=1&stdin=1&stdout=1", "", true, "hi\x00\xff")
	if resp.StatusCode != 101 {
		t.Fatalf("attach: %s", resp.Status)
	}
	_ = conn.CloseWrite()
	if out, err := io.ReadAll(br); err != nil || out == nil || string(out) != "hi\x00\xff" {
		t.Errorf("attach echo %q %v", out, err)
	}
	if code, body := do(t, s, "POST", "/containers/ghost/attach?stream=1", ""); code != 404 || !strings.Contains(body, "No such container: ghost") {
		t.Errorf("attach to nothing: %d %s", code, body)
	}
	if !s.Called("POST", "/containers/"+tty+"/attach") && !s.Called("POST", "/containers/term/attach") {
		t.Error("attach not recorded")
	}
	if calls := s.Calls("POST", "/exec/"+ex); len(calls) != 1 || calls[0].Version != "" || calls[0].Body != "{}" {
		t.Errorf("recorded %+v", calls)
	}
}

// A running container's port bindings show in list and inspect; Exit,
// Container; a closed engine serves again, with its containers.
func TestPortsExitAndRevive(t *testing.T) {
	s, cli := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	_ = cli
	hc := `{"PortBindings":{"80/tcp":[{"HostPort":"8080"}],"53/udp":[{"HostPort":""}]}}`
	id, _ := s.Create(Spec{Name: "web", Image: "busybox", HostConfig: []byte(hc), Running: true})
	_, body := do(t, s, "GET", "/containers/json", "")
	// "" is any port: the engine picks one of its ephemeral range.
	if !strings.Contains(body, `"Ports":[{"IP":"0.0.0.0","PrivatePort":53,"PublicPort":32768,"Type":"udp"},{"IP":"::","PrivatePort":53,"PublicPort":32768,"Type":"udp"},{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}]`) {
		t.Errorf("list ports: %s", body)
	}
	_, body = do(t, s, "GET", "/containers/web/json", "")
	if !strings.Contains(body, `"Ports":{"53/udp":[{"HostIp":"0.0.0.0","HostPort":"32768"},{"HostIp":"::","HostPort":"32768"}],"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}]}`) {
		t.Errorf("inspect ports: %s", body)
	}
	c, ok := s.Container("web")
	if !ok || c.ID != id || string(c.HostConfig) != hc || c.State != StateRunning {
		t.Errorf("Container = %+v %v", c, ok)
	}
	waitDone := make(chan string, 1)
	go func() {
		_, b := do(t, s, "POST", "/containers/web/wait", "")
		waitDone <- b
	}()
	waitRegistered(t, s.Engine, id, "not-running")
	if err := s.Exit(id, 3); err != nil {
		t.Fatal(err)
	}
	if b := <-waitDone; b != `{"Error":null,"StatusCode":3}`+"\n" {
		t.Errorf("wait %q", b)
	}
	if err := s.Exit(id, 3); err == nil {
		t.Error("a stopped container exited again")
	}
	_, body = do(t, s, "GET", "/containers/json?all=1", "")
	if !strings.Contains(body, `"Ports":[]`) {
		t.Errorf("a stopped container publishes: %s", body)
	}

	addr := strings.TrimPrefix(s.URL, "tcp://")
	s.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address taken again: %v", err)
	}
	s2 := Serve(s.Engine, ln)
	defer s2.Close()
	if code, body := do(t, s2, "GET", "/containers/web/json", ""); code != 200 || !strings.Contains(body, id) {
		t.Errorf("after the restart: %d %s", code, body)
	}
}

// wait's conditions: not-running answers at once for a created container,
// next-exit waits for the next stop, removed for the removal.
func TestWaitConditions(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	id, _ := s.Create(Spec{Name: "web", Image: "busybox"})
	if code, body := do(t, s, "POST", "/containers/web/wait", ""); code != 200 || body != `{"Error":null,"StatusCode":0}`+"\n" {
		t.Errorf("not-running of a created container: %d %q", code, body)
	}
	wait := func(cond string) chan string {
		ch := make(chan string, 1)
		go func() {
			_, b := do(t, s, "POST", "/containers/web/wait?condition="+cond, "")
			ch <- b
		}()
		return ch
	}
	next, removed := wait("next-exit"), wait("removed")
	waitRegistered(t, s.Engine, id, "next-exit")
	waitRegistered(t, s.Engine, id, "removed")
	select {
	case b := <-next:
		t.Fatalf("next-exit answered before any exit: %q", b)
	default:
	}
	_ = s.Start(id)
	_ = s.Exit(id, 7)
	if b := <-next; b != `{"Error":null,"StatusCode":7}`+"\n" {
		t.Errorf("next-exit %q", b)
	}
	select {
	case b := <-removed:
		t.Fatalf("removed answered before the removal: %q", b)
	case <-time.After(50 * time.Millisecond):
	}
	_ = s.Remove(id, false)
	if b := <-removed; b != `{"Error":null,"StatusCode":7}`+"\n" {
		t.Errorf("removed %q", b)
	}
}
