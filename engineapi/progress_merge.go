package engineapi

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

	"github.com/clocker/clocker/internal/errdefs"
)

// ProgressSource is one host's part of a fanned-out progress stream (pull,
// load): Open sends the request (the caller's: nothing here calls an
// engine); Done, if set, runs when the host's answer has ended.
type ProgressSource struct {
	Host string
	Open func(ctx context.Context) (*http.Response, error)
	Done func()
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

// ProgressFailure is why one host's part failed.
type ProgressFailure struct {
	Src  int
	Host string
	Err  error
}

// ProgressMerge shapes the hosts' messages into the one stream the client
// reads.
type ProgressMerge interface {
	// Line is what to write now of one message of host src (nil:
	// nothing), or, when isErr, the host's error text.
	Line(src int, host string, line []byte) (out []byte, errMsg string, isErr bool)
	// Tail is what to write once every host has ended, before the error.
	Tail() []byte
	// FailureText is the closing error message of the failed hosts, of n.
	FailureText(failures []ProgressFailure, n int) string
}

// PrefixMerge is a pull's stream: every host's progress as it comes,
// marked with its host ("h1: …"), and every failed host named.
type PrefixMerge struct{}

func (PrefixMerge) Line(_ int, host string, line []byte) ([]byte, string, bool) {
	return PrefixProgress(host, line)
}
func (PrefixMerge) Tail() []byte { return nil }
func (PrefixMerge) FailureText(failures []ProgressFailure, _ int) string {
	return progressFailureText(failures)
}

// LoadMerge is a load's stream: one engine's answer (LoadStream), and an
// error every host gave alike said once, as that engine says it.
type LoadMerge struct{ *LoadStream }

func (m LoadMerge) Line(src int, _ string, line []byte) ([]byte, string, bool) {
	return m.LoadStream.Line(src, line)
}
func (LoadMerge) FailureText(failures []ProgressFailure, n int) string {
	if len(failures) == n && !slices.ContainsFunc(failures, func(f ProgressFailure) bool {
		return f.Err.Error() != failures[0].Err.Error()
	}) {
		return failures[0].Err.Error()
	}
	return progressFailureText(failures)
}

// MergeProgressStreams sends every source's request at once and merges
// their answers into one newline-delimited JSON stream, each message
// flushed as it arrives, shaped by merge. The 200 goes out with the first
// host that answers 2xx. Hosts that fail (an error status, or an error
// message inside their stream) are reported at the end as one error
// message, Docker's {"errorDetail":…,"error":…}, after the others'
// progress; when every host fails before streaming, the answer is their
// error status and message, as an engine's would be.
func MergeProgressStreams(ctx context.Context, w http.ResponseWriter, sources []ProgressSource, merge ProgressMerge) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan progressEvent)
	for i, src := range sources {
		go func() {
			if src.Done != nil {
				defer src.Done()
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
			resp, err := src.Open(ctx)
			if err != nil {
				send(progressEvent{kind: progressEnd, err: err})
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode >= 300 {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				send(progressEvent{kind: progressEnd, err: errdefs.FromEngine(resp.StatusCode, body)})
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
						fmt.Sprintf("host %s: stream broken: %v", src.Host, err))})
					return
				}
			}
		}()
	}
	rc := http.NewResponseController(w)
	var (
		started  bool
		failures []ProgressFailure
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
		host := sources[e.src].Host
		switch e.kind {
		case progressStart:
			if !started {
				started = true
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_ = rc.Flush()
			}
		case progressLine:
			out, msg, isErr := merge.Line(e.src, host, e.line)
			if isErr {
				failures = append(failures, ProgressFailure{e.src, host, errors.New(msg)})
				continue
			}
			if out != nil {
				write(out)
			}
		case progressEnd:
			ended++
			if e.err != nil {
				failures = append(failures, ProgressFailure{e.src, host, e.err})
			}
		}
	}
	slices.SortStableFunc(failures, func(a, b ProgressFailure) int { return a.Src - b.Src })
	if !started {
		return CombineProgressFailures(failures)
	}
	if t := merge.Tail(); len(t) > 0 {
		write(t)
	}
	if len(failures) > 0 {
		write(ProgressError(merge.FailureText(failures, len(sources))))
	}
	return nil
}

// progressFailureText names each failed host with its message.
func progressFailureText(failures []ProgressFailure) string {
	parts := make([]string, len(failures))
	for i, f := range failures {
		parts[i] = f.Host + ": " + f.Err.Error()
	}
	return strings.Join(parts, "; ")
}

// CombineProgressFailures is the answer when every host failed before
// streaming: one engine's error as it is when they all say the same (a bad
// reference), else each host's message under the first one's status.
func CombineProgressFailures(failures []ProgressFailure) error {
	if len(failures) == 0 {
		return errdefs.New(errdefs.ErrUnavailable, "no host answered")
	}
	same := true
	for _, f := range failures[1:] {
		if f.Err.Error() != failures[0].Err.Error() {
			same = false
		}
	}
	if same {
		return failures[0].Err
	}
	kind := errdefs.ErrEngine
	var m *errdefs.Message
	if errors.As(failures[0].Err, &m) {
		kind = m.Kind
	}
	return errdefs.New(kind, progressFailureText(failures))
}
