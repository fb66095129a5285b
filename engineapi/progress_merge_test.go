package engineapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
)

func TestCombineProgressFailures(t *testing.T) {
	e500a := errdefs.FromEngine(500, []byte(`{"message":"registry down (from 10.0.0.1)"}`))
	e500b := errdefs.FromEngine(500, []byte(`{"message":"registry down (from 10.0.0.2)"}`))
	e400 := errdefs.FromEngine(400, []byte(`{"message":"invalid reference format: repository name must be lowercase"}`))
	tests := []struct {
		name       string
		failures   []ProgressFailure
		wantStatus int
		wantMsg    string
	}{
		{name: "same message is the engine's answer", failures: []ProgressFailure{{0, "h1", e400}, {1, "h2", e400}},
			wantStatus: 400, wantMsg: "invalid reference format: repository name must be lowercase"},
		{name: "different messages name hosts", failures: []ProgressFailure{{0, "h1", e500a}, {1, "h2", e500b}},
			wantStatus: 500, wantMsg: "h1: registry down (from 10.0.0.1); h2: registry down (from 10.0.0.2)"},
		{name: "one host", failures: []ProgressFailure{{0, "h1", e500a}}, wantStatus: 500, wantMsg: "registry down (from 10.0.0.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CombineProgressFailures(tt.failures)
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

func sourcesOf(answers map[string]answer) []ProgressSource {
	var out []ProgressSource
	for _, h := range []string{"h1", "h2", "h3"} {
		a, ok := answers[h]
		if !ok {
			continue
		}
		out = append(out, ProgressSource{Host: h, Open: func(ctx context.Context) (*http.Response, error) {
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
			err := MergeProgressStreams(context.Background(), rec, sourcesOf(tt.answers), PrefixMerge{})
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
				last := strings.TrimSuffix(lines[len(lines)-1], "\r")
				lines = lines[:len(lines)-1]
				if want := string(bytes.TrimSpace(ProgressError(tt.wantErr))); last != want {
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
	src := []ProgressSource{{Host: "h1", Open: func(ctx context.Context) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: pr}, nil
	}}}
	done := make(chan error)
	go func() { done <- MergeProgressStreams(context.Background(), rec, src, PrefixMerge{}) }()
	go func() {
		_, _ = pw.Write([]byte(`{"status":"first"}` + "\n"))
		<-seen
		pw.Close()
	}()
	deadline := time.After(30 * time.Second)
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

// A load's merged answer is one engine's: each "Loaded image" line once,
// after every host ended; an error every host gave alike once, as it is.
func TestMergeProgressStreamsLoad(t *testing.T) {
	loaded := `{"stream":"Loaded image: busybox:latest\n"}` + "\n"
	tarErr := `{"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":"Error processing tar file(exit status 1): unexpected EOF"}` + "\n"
	tests := []struct {
		name    string
		answers map[string]answer
		want    string
	}{
		{
			name: "every host loads: the line once",
			answers: map[string]answer{
				"h1": {status: 200, body: loaded}, "h2": {status: 200, body: loaded, delay: 10 * time.Millisecond}, "h3": {status: 200, body: loaded},
			},
			want: loaded,
		},
		{
			name: "every host refuses the archive alike: the engine's error once",
			answers: map[string]answer{
				"h1": {status: 200, body: tarErr}, "h2": {status: 200, body: tarErr}, "h3": {status: 200, body: tarErr},
			},
			want: string(ProgressError("Error processing tar file(exit status 1): unexpected EOF")),
		},
		{
			name: "one host fails: the others' lines, then it, named",
			answers: map[string]answer{
				"h1": {status: 200, body: loaded}, "h2": {status: 200, body: `{"error":"no space left on device"}` + "\n"},
			},
			want: loaded + string(ProgressError("h2: no space left on device")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			src := sourcesOf(tt.answers)
			if err := MergeProgressStreams(context.Background(), rec, src, LoadMerge{NewLoadStream(len(src))}); err != nil {
				t.Fatal(err)
			}
			if rec.Code != 200 || rec.Body.String() != tt.want {
				t.Errorf("got %d\n%s\nwant\n%s", rec.Code, rec.Body, tt.want)
			}
		})
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
