package fakeengine

// Logs, attach and exec. The fake runs nothing, so a container's output is
// what a test wrote with WriteLog, and every process behaves as cat (its
// stdin comes back on stdout) except an exec of "echo", which writes its
// arguments and ends. Without a TTY, output is multiplexed in frames, as
// from a real engine; with one, it is raw (there is no line discipline:
// no echo of the input, no \r\n).

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Streams of a multiplexed (non-TTY) stream.
const (
	Stdin  = 0
	Stdout = 1
	Stderr = 2
)

type logLine struct {
	stream byte
	text   string
	at     time.Time
}

// MuxFrame is one frame of a multiplexed stream: an 8-byte header
// (stream, three zero bytes, big-endian length) and the payload.
func MuxFrame(stream byte, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

// WriteLog makes a container write text on stream (Stdout or Stderr): it
// is in its logs from then on, and followers get it at once. A line per
// call, as a process's writes.
func (e *Engine) WriteLog(ref string, stream int, text string) error {
	if stream != Stdout && stream != Stderr {
		return errf(400, "stream %d: want Stdout or Stderr", stream)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return err
	}
	c.logs = append(c.logs, logLine{stream: byte(stream), text: text, at: time.Now()})
	wakeLocked(c)
	return nil
}

// LogFollowers is how many logs?follow=1 streams are open.
func (e *Engine) LogFollowers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.followers
}

// wakeLocked tells a container's log followers that something changed.
func wakeLocked(c *ctr) {
	if c.logged != nil {
		close(c.logged)
		c.logged = nil
	}
}

func flag(q map[string][]string, key string) bool {
	v := ""
	if vs := q[key]; len(vs) > 0 {
		v = vs[0]
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// logs answers GET /containers/{id}/logs: stdout, stderr (one at least),
// tail (a number or all), timestamps, follow (until the container stops,
// the client goes, or the engine shuts down).
func (e *Engine) logs(w http.ResponseWriter, r *http.Request, ref string) error {
	q := r.URL.Query()
	stdout, stderr := flag(q, "stdout"), flag(q, "stderr")
	if !stdout && !stderr {
		return errf(400, "Bad parameters: you must choose at least one stream")
	}
	follow, stamps := flag(q, "follow"), flag(q, "timestamps")
	tail := -1
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err == nil && n >= 0 {
			tail = n
		}
	}
	e.mu.Lock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	tty := c.tty
	pick := func(lines []logLine) []logLine {
		var out []logLine
		for _, l := range lines {
			if l.stream == Stdout && stdout || l.stream == Stderr && stderr {
				out = append(out, l)
			}
		}
		return out
	}
	first := pick(c.logs)
	if tail >= 0 && len(first) > tail {
		first = first[len(first)-tail:]
	}
	next := len(c.logs)
	following := follow && c.state == StateRunning
	if following {
		e.followers++
		defer func() {
			e.mu.Lock()
			e.followers--
			e.mu.Unlock()
		}()
	}
	e.mu.Unlock()

	if tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(lines []logLine) bool {
		for _, l := range lines {
			text := l.text
			if stamps {
				text = l.at.UTC().Format(time.RFC3339Nano) + " " + text
			}
			var err error
			if tty {
				_, err = io.WriteString(w, text)
			} else {
				_, err = w.Write(MuxFrame(l.stream, text))
			}
			if err != nil || rc.Flush() != nil { // a line per write, as an engine
				return false
			}
		}
		return true
	}
	if !send(first) {
		return nil
	}
	_ = rc.Flush()
	for following {
		e.mu.Lock()
		more := pick(c.logs[next:])
		next = len(c.logs)
		alive := c.state == StateRunning && e.containers[c.id] == c
		if c.logged == nil {
			c.logged = make(chan struct{})
		}
		wake, down := c.logged, e.down
		e.mu.Unlock()
		if !send(more) || !alive {
			return nil
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return nil
		case <-down:
			return nil
		}
	}
	return nil
}

// --- hijacked streams ------------------------------------------------------

// hijack takes the connection over as an engine does for attach and exec
// start: 101 UPGRADED when the client asked to upgrade, else 200 with a
// raw stream on the same socket; the headers already set go along.
func (e *Engine) hijack(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.ReadWriter, bool) {
	h := w.Header().Clone()
	h.Del("Content-Type")
	h.Del("Content-Length")
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, errf(500, "hijack: %v", err))
		return nil, nil, false
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		_, _ = brw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	} else {
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n")
	}
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, false
	}
	// The engine going down drops the session.
	done := make(chan struct{})
	down := e.downC()
	go func() {
		select {
		case <-down:
			conn.Close()
		case <-done:
		}
	}()
	return &doneConn{Conn: conn, done: done}, brw, true
}

// doneConn ends hijack's watch when closed.
type doneConn struct {
	net.Conn
	done chan struct{}
	once bool
}

func (c *doneConn) Close() error {
	if !c.once {
		c.once = true
		close(c.done)
	}
	return c.Conn.Close()
}

func closeWrite(c net.Conn) {
	if dc, ok := c.(*doneConn); ok {
		c = dc.Conn
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// output writes a process's stdout: raw with a TTY, else in frames.
type output struct {
	w   io.Writer
	tty bool
}

func (o output) Write(p []byte) (int, error) {
	if o.tty {
		return o.w.Write(p)
	}
	if _, err := o.w.Write(MuxFrame(Stdout, string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// cat copies stdin (what is buffered first) to out until stdin ends.
func cat(out io.Writer, in *bufio.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// attach answers POST /containers/{id}/attach: with logs=1 the output so
// far, then, with stream=1, the process's output live: stdin (stdin=1)
// comes back on stdout (stdout=1); the output ends when stdin does.
func (e *Engine) attach(w http.ResponseWriter, r *http.Request, ref string) error {
	q := r.URL.Query()
	e.mu.Lock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	tty := c.tty
	past := append([]logLine(nil), c.logs...)
	e.mu.Unlock()
	conn, brw, ok := e.hijack(w, r)
	if !ok {
		return nil
	}
	defer conn.Close()
	if flag(q, "logs") {
		for _, l := range past {
			if l.stream == Stdout && flag(q, "stdout") || l.stream == Stderr && flag(q, "stderr") {
				if tty {
					_, _ = io.WriteString(conn, l.text)
				} else {
					_, _ = conn.Write(MuxFrame(l.stream, l.text))
				}
			}
		}
	}
	if flag(q, "stream") && flag(q, "stdin") {
		var out io.Writer = io.Discard
		if flag(q, "stdout") {
			out = output{w: conn, tty: tty}
		}
		cat(out, brw.Reader)
	}
	closeWrite(conn)
	if !flag(q, "stdin") || !flag(q, "stream") {
		return nil
	}
	_, _ = io.Copy(io.Discard, conn) // until the client closes
	return nil
}

// --- exec ------------------------------------------------------------------

type execInst struct {
	id, container string
	cmd           []string
	tty           bool
	stdin, stdout bool
	running       bool
	exitCode      *int
	pid           int
}

type execConfig struct {
	Cmd          []string
	Tty          bool
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	Env          []string
	User         string
	WorkingDir   string
	Privileged   bool
	DetachKeys   string
}

// createExec answers POST /containers/{id}/exec.
func (e *Engine) createExec(w http.ResponseWriter, r *http.Request, ref string) error {
	var cfg execConfig
	if err := json.NewDecoder(r.Body).Decode(&cfg); err != nil && err != io.EOF {
		return errf(400, "invalid JSON: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return err
	}
	if c.state != StateRunning {
		return errf(409, "Container %s is not running", c.id)
	}
	if len(cfg.Cmd) == 0 {
		return errf(400, "No exec command specified")
	}
	e.seq++
	id := hexID("exec/" + e.opts.Name + "/" + strconv.FormatUint(e.seq, 10))
	e.execs[id] = &execInst{id: id, container: c.id, cmd: cfg.Cmd, tty: cfg.Tty,
		stdin: cfg.AttachStdin, stdout: cfg.AttachStdout}
	c.execIDs = append(c.execIDs, id)
	e.publishAttrsLocked("exec_create: "+strings.Join(cfg.Cmd, " "), c, map[string]string{"execID": id})
	writeJSON(w, http.StatusCreated, map[string]string{"Id": id})
	return nil
}

func (e *Engine) findExecLocked(id string) (*execInst, *ctr, error) {
	ex, ok := e.execs[id]
	if !ok {
		return nil, nil, errf(404, "No such exec instance: %s", id)
	}
	return ex, e.containers[ex.container], nil
}

// inspectExec answers GET /exec/{id}/json.
func (e *Engine) inspectExec(w http.ResponseWriter, id string) error {
	e.mu.Lock()
	ex, _, err := e.findExecLocked(id)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	a := map[string]any{"ID": ex.id, "ContainerID": ex.container, "Running": ex.running, "ExitCode": ex.exitCode,
		"Pid": ex.pid, "OpenStdin": ex.stdin, "OpenStdout": ex.stdout, "OpenStderr": ex.stdout,
		"CanRemove": false, "DetachKeys": "",
		"ProcessConfig": map[string]any{"tty": ex.tty, "entrypoint": ex.cmd[0], "arguments": append([]string{}, ex.cmd[1:]...), "privileged": false}}
	e.mu.Unlock()
	writeJSON(w, 200, a)
	return nil
}

// startExec answers POST /exec/{id}/start: detached, the command runs and
// ends at once; attached, the connection is taken over (cat, or echo).
func (e *Engine) startExec(w http.ResponseWriter, r *http.Request, id string) error {
	var start struct{ Detach, Tty bool }
	if err := json.NewDecoder(r.Body).Decode(&start); err != nil && err != io.EOF {
		return errf(400, "invalid JSON: %v", err)
	}
	e.mu.Lock()
	ex, c, err := e.findExecLocked(id)
	switch {
	case err != nil:
	case ex.running:
		err = errf(409, "Error: Exec command %s is already running", id)
	case ex.exitCode != nil:
		err = errf(409, "Error: Exec command %s has already run", id)
	case c == nil || c.state != StateRunning:
		err = errf(409, "Container %s is not running", ex.container)
	}
	if err != nil {
		e.mu.Unlock()
		return err
	}
	ex.running, ex.pid = true, 4243
	e.publishAttrsLocked("exec_start: "+strings.Join(ex.cmd, " "), c, map[string]string{"execID": id})
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		code := 0
		ex.running, ex.exitCode = false, &code
		if c := e.containers[ex.container]; c != nil {
			e.publishAttrsLocked("exec_die", c, map[string]string{"execID": id, "exitCode": "0"})
		}
		e.mu.Unlock()
	}()
	if start.Detach {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, brw, ok := e.hijack(w, r)
	if !ok {
		return nil
	}
	defer conn.Close()
	var out io.Writer = io.Discard
	if ex.stdout {
		out = output{w: conn, tty: ex.tty}
	}
	if ex.cmd[0] == "echo" {
		// Output and exit without reading stdin, which stays open.
		_, _ = io.WriteString(out, strings.Join(ex.cmd[1:], " ")+"\n")
		closeWrite(conn)
		_, _ = io.Copy(io.Discard, conn)
		return nil
	}
	if ex.stdin {
		cat(out, brw.Reader)
	}
	closeWrite(conn)
	_, _ = io.Copy(io.Discard, conn) // until the client closes
	return nil
}

// resizeExec answers POST /exec/{id}/resize.
func (e *Engine) resizeExec(w http.ResponseWriter, r *http.Request, id string) error {
	e.mu.Lock()
	_, _, err := e.findExecLocked(id)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	if err := checkSize(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func checkSize(r *http.Request) error {
	q := r.URL.Query()
	for _, k := range []string{"h", "w"} {
		if v := q.Get(k); v != "" {
			if _, err := strconv.ParseUint(v, 10, 16); err != nil {
				return errf(400, "invalid resize %s: %q", k, v)
			}
		}
	}
	return nil
}
