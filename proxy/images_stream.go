package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// ImageNodeHeader names the hosts a pull or load goes to (comma separated;
// an import or a build goes to the first); without it, every healthy host.
const ImageNodeHeader = "X-Clocker-Node"

// progressSource is one host's part of a fanned-out progress stream (pull,
// load): open sends the request; done, if set, runs when the host's answer
// has ended.
type progressSource struct {
	host string
	open func(ctx context.Context) (*http.Response, error)
	done func()
}

type progressKind int

const (
	progressStart progressKind = iota // a 2xx answer: its stream begins
	progressLine                      // one message of the stream
	progressEnd                       // the answer ended (err: how it failed)
)

type progressEvent struct {
	src  int
	kind progressKind
	line []byte
	err  error
}

// progressFailure is why one host's part failed.
type progressFailure struct {
	src  int
	host string
	err  error
}

// mergeProgressStreams sends every source's request at once and merges their
// answers into one newline-delimited JSON stream, each message flushed as
// it arrives and marked with its host ("h1: …"). The 200 goes out with the
// first host that answers 2xx. Hosts that fail (an error status, or an
// error message inside their stream) are reported at the end as one error
// message, Docker's {"errorDetail":…,"error":…}, after the others' progress;
// when every host fails before streaming, the answer is their error status
// and message, as an engine's would be.
func mergeProgressStreams(ctx context.Context, w http.ResponseWriter, sources []progressSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan progressEvent)
	for i, src := range sources {
		go func() {
			if src.done != nil {
				defer src.done()
			}
			send := func(e progressEvent) bool {
				e.src = i
				select {
				case events <- e:
					return true
				case <-ctx.Done():
					return false
				}
			}
			resp, err := src.open(ctx)
			if err != nil {
				send(progressEvent{kind: progressEnd, err: err})
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode >= 300 {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				send(progressEvent{kind: progressEnd, err: relayError(resp.StatusCode, body)})
				return
			}
			if !send(progressEvent{kind: progressStart}) {
				return
			}
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadBytes('\n')
				if len(bytes.TrimSpace(line)) > 0 && !send(progressEvent{kind: progressLine, line: line}) {
					return
				}
				if err == io.EOF {
					send(progressEvent{kind: progressEnd})
					return
				}
				if err != nil {
					send(progressEvent{kind: progressEnd, err: errdefs.New(errdefs.ErrUnavailable,
						fmt.Sprintf("host %s: stream broken: %v", src.host, err))})
					return
				}
			}
		}()
	}
	rc := http.NewResponseController(w)
	var (
		started  bool
		failures []progressFailure
		writeErr error
	)
	write := func(b []byte) {
		if writeErr != nil {
			return // the client went away; keep draining the hosts
		}
		if _, writeErr = w.Write(b); writeErr == nil {
			_ = rc.Flush()
		}
	}
	for ended := 0; ended < len(sources); {
		var e progressEvent
		select {
		case e = <-events:
		case <-ctx.Done():
			return nil // the client went away
		}
		host := sources[e.src].host
		switch e.kind {
		case progressStart:
			if !started {
				started = true
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_ = rc.Flush()
			}
		case progressLine:
			out, msg, isErr := engineapi.PrefixProgress(host, e.line)
			if isErr {
				failures = append(failures, progressFailure{e.src, host, errors.New(msg)})
				continue
			}
			write(out)
		case progressEnd:
			ended++
			if e.err != nil {
				failures = append(failures, progressFailure{e.src, host, e.err})
			}
		}
	}
	slices.SortStableFunc(failures, func(a, b progressFailure) int { return a.src - b.src })
	if !started {
		return combineProgressFailures(failures)
	}
	if len(failures) > 0 {
		write(engineapi.ProgressError(progressFailureText(failures)))
	}
	return nil
}

// progressFailureText names each failed host with its message.
func progressFailureText(failures []progressFailure) string {
	parts := make([]string, len(failures))
	for i, f := range failures {
		parts[i] = f.host + ": " + f.err.Error()
	}
	return strings.Join(parts, "; ")
}

// combineProgressFailures is the answer when every host failed before streaming:
// one engine's error as it is when they all say the same (a bad reference),
// else each host's message under the first one's status.
func combineProgressFailures(failures []progressFailure) error {
	if len(failures) == 0 {
		return errdefs.New(errdefs.ErrUnavailable, "no host answered")
	}
	same := true
	for _, f := range failures[1:] {
		if f.err.Error() != failures[0].err.Error() {
			same = false
		}
	}
	if same {
		return failures[0].err
	}
	kind := error(errEngine)
	var m *errdefs.Message
	if errors.As(failures[0].err, &m) {
		kind = m.Kind
	}
	return errdefs.New(kind, progressFailureText(failures))
}

// imageTargetHosts are the hosts a pull or load goes to: those the ImageNodeHeader
// names, else every healthy host.
func (s *Server) imageTargetHosts(r *http.Request) ([]*hosts.Host, error) {
	v := strings.TrimSpace(r.Header.Get(ImageNodeHeader))
	if v == "" {
		return s.healthyHosts()
	}
	var out []*hosts.Host
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		h, ok := s.Fleet.Host(name)
		if !ok {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: no host %q in the fleet", ImageNodeHeader, name))
		}
		if !h.Healthy() {
			return nil, h.Unavailable()
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return s.healthyHosts()
	}
	return out, nil
}

// teeChunk and teeQueue size the copy to each host: a host may fall this
// many chunks behind the fastest before the copy waits for it.
const (
	teeChunk = 256 << 10
	teeQueue = 16
)

// teeToHosts copies src to every writer, each fed by its own goroutine from
// a bounded queue, so that a host that is slow for a moment does not hold
// the others back. A writer whose host stopped reading is dropped and the
// others go on, until none is left. The writers are closed at the end (with
// src's error, if any).
func teeToHosts(src io.Reader, dsts []*io.PipeWriter) {
	queues := make([]chan []byte, len(dsts))
	dead := make([]atomic.Bool, len(dsts))
	var wg sync.WaitGroup
	for i, pw := range dsts {
		queues[i] = make(chan []byte, teeQueue)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range queues[i] {
				if dead[i].Load() {
					continue // drain
				}
				if _, err := pw.Write(chunk); err != nil {
					dead[i].Store(true)
				}
			}
		}()
	}
	var rerr error
	for {
		buf := make([]byte, teeChunk)
		n, err := src.Read(buf)
		if n > 0 {
			live := 0
			for i, q := range queues {
				if !dead[i].Load() {
					q <- buf[:n]
					live++
				}
			}
			if live == 0 {
				break
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	for _, pw := range dsts {
		_ = pw.CloseWithError(rerr)
	}
}

// errLoadHostDone closes a load pipe whose host has answered.
var errLoadHostDone = errors.New("host answered")

// createImage is POST /images/create: a pull (fromImage) goes to every
// target host with their progress merged; an import (fromSrc) goes to one
// host, chosen as a container would be, with its body streamed.
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromImage") == "" {
		return s.importImage(w, r)
	}
	hs, err := s.imageTargetHosts(r)
	if err != nil {
		return err
	}
	sources := make([]progressSource, len(hs))
	for i, h := range hs {
		sources[i] = progressSource{host: h.Name, open: func(ctx context.Context) (*http.Response, error) {
			touchImages(r.Context(), h)
			return s.hostRequest(ctx, r, h, http.MethodPost, "/images/create", q, nil)
		}}
	}
	return mergeProgressStreams(r.Context(), w, sources)
}

// importImage sends docker import to one host: the first ImageNodeHeader
// names, else the spread choice.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.healthyHosts(); err != nil {
		return err
	}
	var h *hosts.Host
	if r.Header.Get(ImageNodeHeader) != "" {
		hs, err := s.imageTargetHosts(r)
		if err != nil {
			return err
		}
		h = hs[0]
	} else {
		var err error
		if h, err = s.placer.PlaceBuild(r.Context(), nil); err != nil {
			return err
		}
	}
	_ = http.NewResponseController(w).EnableFullDuplex()
	touchImages(r.Context(), h)
	return s.forward(w, r, h, forwardOptions{path: "/images/create"})
}

// loadImages is docker load: the tar body goes to every target host at
// once (one pipe each), their progress merged.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.imageTargetHosts(r)
	if err != nil {
		return err
	}
	// Hosts may report progress while the body still arrives.
	_ = http.NewResponseController(w).EnableFullDuplex()
	q := r.URL.Query()
	readers := make([]*io.PipeReader, len(hs))
	writers := make([]*io.PipeWriter, len(hs))
	sources := make([]progressSource, len(hs))
	for i, h := range hs {
		readers[i], writers[i] = io.Pipe()
		sources[i] = progressSource{
			host: h.Name,
			open: func(ctx context.Context) (*http.Response, error) {
				touchImages(r.Context(), h)
				return s.hostRequest(ctx, r, h, http.MethodPost, "/images/load", q, readers[i])
			},
			done: func() { _ = readers[i].CloseWithError(errLoadHostDone) },
		}
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		body = r.Body
	}
	teeDone := make(chan struct{})
	go func() {
		defer close(teeDone)
		teeToHosts(body, writers)
	}()
	err = mergeProgressStreams(r.Context(), w, sources)
	// Every host has answered and closed its pipe, so the tee ends.
	for _, pr := range readers {
		_ = pr.CloseWithError(errLoadHostDone)
	}
	<-teeDone
	return err
}
