// Package statusrec wraps an http.ResponseWriter to learn the status a
// handler answered with, for the middlewares that count or log answers
// (metrics, audit). Flush and Hijack stay reachable, directly and through
// Unwrap for http.ResponseController.
package statusrec

import (
	"bufio"
	"net"
	"net/http"
)

// Recorder is an http.ResponseWriter that remembers the first status.
type Recorder struct {
	http.ResponseWriter
	code     int
	hijacked bool
}

// New wraps w.
func New(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

func (r *Recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Status is the status the client saw: 101 for a connection taken over
// (attach, exec start), 200 when the handler wrote nothing, as net/http
// answers then.
func (r *Recorder) Status() int {
	switch {
	case r.hijacked:
		return http.StatusSwitchingProtocols
	case r.code == 0:
		return http.StatusOK
	}
	return r.code
}

func (r *Recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

func (r *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.hijacked = true
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
