package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

func TestCombineProgressFailures(t *testing.T) {
	e500a := relayError(500, []byte(`{"message":"registry down (from 10.0.0.1)"}`))
	e500b := relayError(500, []byte(`{"message":"registry down (from 10.0.0.2)"}`))
	e400 := relayError(400, []byte(`{"message":"invalid reference format: repository name must be lowercase"}`))
	tests := []struct {
		name       string
		failures   []progressFailure
		wantStatus int
		wantMsg    string
	}{
		{name: "same message is the engine's answer", failures: []progressFailure{{0, "h1", e400}, {1, "h2", e400}},
			wantStatus: 400, wantMsg: "invalid reference format: repository name must be lowercase"},
		{name: "different messages name hosts", failures: []progressFailure{{0, "h1", e500a}, {1, "h2", e500b}},
			wantStatus: 500, wantMsg: "h1: registry down (from 10.0.0.1); h2: registry down (from 10.0.0.2)"},
		{name: "one host", failures: []progressFailure{{0, "h1", e500a}}, wantStatus: 500, wantMsg: "registry down (from 10.0.0.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := combineProgressFailures(tt.failures)
			if errdefs.Status(err) != tt.wantStatus || err.Error() != tt.wantMsg {
				t.Errorf("got %d %q, want %d %q", errdefs.Status(err), err, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

// answer is a canned engine answer for mergeProgressStreams.
type answer struct {
	status int
	body   string
	err    error
	delay  time.Duration
}

func sourcesOf(answers map[string]answer) []progressSource {
	var out []progressSource
	for _, h := range []string{"h1", "h2", "h3"} {
		a, ok := answers[h]
		if !ok {
			continue
		}
		out = append(out, progressSource{host: h, open: func(ctx context.Context) (*http.Response, error) {
			time.Sleep(a.delay)
			if a.err != nil {
				return nil, a.err
			}
			return &http.Response{StatusCode: a.status, Body: io.NopCloser(strings.NewReader(a.body))}, nil
		}})
	}
	return out
}

func TestMergeProgressStreams(t *testing.T) {
	regErr := `{"message":"Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"}`
	tests := []struct {
		name       string
		answers    map[string]answer
		wantStatus int
		wantLines  []string // in any order, except the error last
		wantErr    string   // the closing error message, or the error answer's
	}{
		{
			name: "all succeed",
			answers: map[string]answer{
				"h1": {status: 200, body: `{"status":"Pulling from library/busybox","id":"latest"}` + "\n" + `{"status":"Status: Image is up to date for busybox:latest"}` + "\n"},
				"h2": {status: 200, body: `{"status":"Pulling from library/busybox","id":"latest"}` + "\n", delay: 20 * time.Millisecond},
			},
			wantStatus: 200,
			wantLines: []string{
				`{"id":"h1: latest","status":"Pulling from library/busybox"}`,
				`{"status":"h1: Status: Image is up to date for busybox:latest"}`,
				`{"id":"h2: latest","status":"Pulling from library/busybox"}`,
			},
		},
		{
			name: "every host refuses alike: the engine's status and message",
			answers: map[string]answer{
				"h1": {status: 500, body: regErr}, "h2": {status: 500, body: regErr}, "h3": {status: 500, body: regErr},
			},
			wantStatus: 500,
			wantErr:    `Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host`,
		},
		{
			name: "bad reference: 400 from every host",
			answers: map[string]answer{
				"h1": {status: 400, body: `{"message":"invalid reference format"}`}, "h2": {status: 400, body: `{"message":"invalid reference format"}`},
			},
			wantStatus: 400, wantErr: "invalid reference format",
		},
		{
			name: "one host fails by status: progress, then its error",
			answers: map[string]answer{
				"h1": {status: 200, body: `{"status":"Downloaded","id":"l1"}` + "\n", delay: 20 * time.Millisecond},
				"h2": {status: 404, body: `{"message":"manifest unknown"}`},
			},
			wantStatus: 200,
			wantLines:  []string{`{"id":"h1: l1","status":"Downloaded"}`},
			wantErr:    "h2: manifest unknown",
		},
		{
			name: "errors inside streams come last, per host",
			answers: map[string]answer{
				"h1": {status: 200, body: `{"status":"Downloading","id":"l1"}` + "\n" + `{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}` + "\n"},
				"h2": {status: 200, body: `{"status":"Downloading","id":"l1"}` + "\n" + `{"errorDetail":{"message":"disk full"},"error":"disk full"}` + "\n", delay: 10 * time.Millisecond},
				"h3": {status: 200, body: `{"status":"Done","id":"l1"}` + "\n"},
			},
			wantStatus: 200,
			wantLines: []string{
				`{"id":"h1: l1","status":"Downloading"}`, `{"id":"h2: l1","status":"Downloading"}`, `{"id":"h3: l1","status":"Done"}`,
			},
			wantErr: "h1: unexpected EOF; h2: disk full",
		},
		{
			name: "unreachable host among answering ones",
			answers: map[string]answer{
				"h1": {err: errdefs.New(errdefs.ErrUnavailable, "host h1 (tcp://x): connection refused")},
				"h2": {status: 200, body: `{"status":"ok"}` + "\n"},
			},
			wantStatus: 200,
			wantLines:  []string{`{"status":"h2: ok"}`},
			wantErr:    "h1: host h1 (tcp://x): connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := mergeProgressStreams(context.Background(), rec, sourcesOf(tt.answers))
			if tt.wantStatus != 200 {
				if err == nil || errdefs.Status(err) != tt.wantStatus || err.Error() != tt.wantErr {
					t.Fatalf("got %v (%d), want %d %q", err, errdefs.Status(err), tt.wantStatus, tt.wantErr)
				}
				if rec.Body.Len() != 0 {
					t.Fatalf("wrote %q before the error", rec.Body)
				}
				return
			}
			if err != nil || rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("err %v, code %d, content type %q", err, rec.Code, rec.Header().Get("Content-Type"))
			}
			lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
			if tt.wantErr != "" {
				last := lines[len(lines)-1]
				lines = lines[:len(lines)-1]
				if want := string(bytes.TrimSpace(engineapi.ProgressError(tt.wantErr))); last != want {
					t.Errorf("last line %s, want %s", last, want)
				}
			}
			slices.Sort(lines)
			want := slices.Clone(tt.wantLines)
			slices.Sort(want)
			if !slices.Equal(lines, want) {
				t.Errorf("lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestMergeProgressStreamsFlushesAsItArrives(t *testing.T) {
	// h1 writes one line, then waits for the test to see it before ending.
	pr, pw := io.Pipe()
	seen := make(chan struct{})
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan string, 10)}
	src := []progressSource{{host: "h1", open: func(ctx context.Context) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: pr}, nil
	}}}
	done := make(chan error)
	go func() { done <- mergeProgressStreams(context.Background(), rec, src) }()
	go func() {
		_, _ = pw.Write([]byte(`{"status":"first"}` + "\n"))
		<-seen
		pw.Close()
	}()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case body := <-rec.flushed:
			if strings.Contains(body, "h1: first") {
				close(seen)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return
			}
		case <-deadline:
			t.Fatal("the first message was not flushed before the stream ended")
		}
	}
}

// flushRecorder reports the body at each flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushed chan string
}

func (f *flushRecorder) Flush() {
	f.ResponseRecorder.Flush()
	f.flushed <- f.Body.String()
}

func TestTeeToHosts(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB, several chunks
	tests := []struct {
		name     string
		quitters int // readers that stop after the first read
		readers  int
		srcErr   error
	}{
		{name: "every host gets everything", readers: 3},
		{name: "a host that stops does not stall the others", readers: 3, quitters: 1},
		{name: "every host stops", readers: 2, quitters: 2},
		{name: "source error reaches every host", readers: 2, srcErr: errors.New("client went away")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(data)
			if tt.srcErr != nil {
				src = io.MultiReader(bytes.NewReader(data[:1000]), &failingReader{tt.srcErr})
			}
			readers := make([]*io.PipeReader, tt.readers)
			writers := make([]*io.PipeWriter, tt.readers)
			for i := range readers {
				readers[i], writers[i] = io.Pipe()
			}
			done := make(chan struct{})
			go func() { teeToHosts(src, writers); close(done) }()
			got := make([][]byte, tt.readers)
			errs := make([]error, tt.readers)
			finished := make(chan int)
			for i := range readers {
				go func() {
					if i < tt.quitters {
						buf := make([]byte, 10)
						_, _ = readers[i].Read(buf)
						readers[i].CloseWithError(errLoadHostDone)
					} else {
						got[i], errs[i] = io.ReadAll(readers[i])
					}
					finished <- i
				}()
			}
			for range readers {
				select {
				case <-finished:
				case <-time.After(5 * time.Second):
					t.Fatal("a reader is stuck")
				}
			}
			<-done
			for i := tt.quitters; i < tt.readers; i++ {
				switch {
				case tt.srcErr != nil:
					if !errors.Is(errs[i], tt.srcErr) {
						t.Errorf("reader %d: err %v, want %v", i, errs[i], tt.srcErr)
					}
				case errs[i] != nil || !bytes.Equal(got[i], data):
					t.Errorf("reader %d: %d bytes of %d, err %v", i, len(got[i]), len(data), errs[i])
				}
			}
		})
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestSpillBuffer(t *testing.T) {
	b := &spillBuffer{memLimit: 10}
	defer b.Close()
	for _, s := range []string{"01234", "56789", "abcdef", "g"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if b.file == nil {
		t.Fatal("did not spill past memLimit")
	}
	r, err := b.Reader()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "0123456789abcdefg" {
		t.Fatalf("got %q", got)
	}
}

func TestImageFanout(t *testing.T) {
	hs := []*hosts.Host{{Record: hosts.Record{Name: "h1"}}, {Record: hosts.Record{Name: "h2"}}, {Record: hosts.Record{Name: "h3"}}}
	tests := []struct {
		name      string
		failOn    map[string]error
		wantCalls int32
		wantErr   string
	}{
		{name: "all succeed", wantCalls: 3},
		{name: "first refuses: nobody else is asked", failOn: map[string]error{"h1": errors.New("bad input")}, wantCalls: 1, wantErr: "bad input"},
		{name: "later failures: the first in host order", failOn: map[string]error{"h2": errors.New("two"), "h3": errors.New("three")}, wantCalls: 3, wantErr: "two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			err := imageFanout(hs, func(i int, h *hosts.Host) error {
				calls.Add(1)
				return tt.failOn[h.Name]
			})
			if calls.Load() != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.wantCalls)
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("error %q, want %q", got, tt.wantErr)
			}
		})
	}
}
