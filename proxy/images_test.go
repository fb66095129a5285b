package proxy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
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

// contextTar makes a build context with the given files, in order.
func contextTar(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if strings.HasSuffix(f[0], "/") {
			if err := tw.WriteHeader(&tar.Header{Name: f[0], Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPeekDockerfile(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	plain := contextTar(t, [2]string{"a.txt", "a"}, [2]string{"Dockerfile", "FROM busybox\n"}, [2]string{"z.txt", big})
	late := contextTar(t, [2]string{"big.bin", big}, [2]string{"sub/", ""}, [2]string{"sub/Dockerfile.dev", "FROM alpine\n"})
	tests := []struct {
		name, dockerfile string
		context          []byte
		limit            int64
		want             string
		wantErr          bool
	}{
		{name: "default name", context: plain, want: "FROM busybox\n"},
		{name: "gzip context", context: gzipped(t, plain), want: "FROM busybox\n"},
		{name: "named, after a big file", context: late, dockerfile: "sub/Dockerfile.dev", want: "FROM alpine\n"},
		{name: "named with ./", context: late, dockerfile: "./sub/Dockerfile.dev", want: "FROM alpine\n"},
		{name: "lower-case fallback", context: contextTar(t, [2]string{"dockerfile", "FROM lower\n"}), want: "FROM lower\n"},
		{name: "upper-case wins", context: contextTar(t, [2]string{"dockerfile", "FROM lower\n"}, [2]string{"Dockerfile", "FROM upper\n"}), want: "FROM upper\n"},
		{name: "missing", context: contextTar(t, [2]string{"a", "b"}), wantErr: true},
		{name: "beyond the peek limit", context: late, dockerfile: "sub/Dockerfile.dev", limit: 1 << 20, wantErr: true},
		{name: "not a tar", context: []byte("garbage that is not a tar archive"), wantErr: true},
		{name: "empty", context: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.NewReader(tt.context)
			keep := &spillBuffer{memLimit: 1 << 20}
			defer keep.Close()
			var src io.Reader = body
			if tt.limit > 0 {
				src = io.LimitReader(body, tt.limit)
			}
			got, err := peekDockerfile(src, tt.dockerfile, keep)
			if tt.wantErr != (err != nil) || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errNoDockerfile) {
				t.Errorf("error %v is not errNoDockerfile", err)
			}
			// What was kept plus what was not read is the context intact.
			prefix, err := keep.Reader()
			if err != nil {
				t.Fatal(err)
			}
			all, err := io.ReadAll(io.MultiReader(prefix, body))
			if err != nil || !bytes.Equal(all, tt.context) {
				t.Fatalf("context changed: %d bytes of %d (%v)", len(all), len(tt.context), err)
			}
		})
	}
}

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

func TestBaseImages(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		args       map[string]string
		want       []string
	}{
		{name: "one FROM", dockerfile: "FROM busybox\nRUN echo built > /built\n", want: []string{"busybox"}},
		{name: "scratch", dockerfile: "FROM scratch\nCOPY x /\n", want: nil},
		{name: "lower case, flags, tag", dockerfile: "from --platform=linux/amd64 registry:5000/team/app:1.2 as build\n", want: []string{"registry:5000/team/app:1.2"}},
		{name: "stages are not images", dockerfile: "FROM golang:1 AS build\nRUN go build\nFROM build AS test\nFROM alpine\nCOPY --from=build /x /x\n", want: []string{"golang:1", "alpine"}},
		{name: "stage names case-insensitive", dockerfile: "FROM busybox AS Base\nFROM base\n", want: []string{"busybox"}},
		{name: "each once", dockerfile: "FROM busybox\nFROM busybox\n", want: []string{"busybox"}},
		{name: "ARG default", dockerfile: "ARG BASE=busybox\nARG TAG=latest\nFROM ${BASE}:$TAG\n", want: []string{"busybox:latest"}},
		{name: "build arg overrides", dockerfile: "ARG BASE=busybox\nFROM $BASE\n", args: map[string]string{"BASE": "alpine"}, want: []string{"alpine"}},
		{name: "undeclared build arg ignored", dockerfile: "FROM ${BASE:-busybox}\n", args: map[string]string{"BASE": "alpine"}, want: []string{"busybox"}},
		{name: "alternative form", dockerfile: "ARG DEBUG=1\nFROM app${DEBUG:+-debug}\n", want: []string{"app-debug"}},
		{name: "ARG after FROM is not meta", dockerfile: "FROM busybox\nARG BASE=alpine\nFROM $BASE\n", want: []string{"busybox"}},
		{name: "comments, blank lines, continuation", dockerfile: "# syntax=docker/dockerfile:1\n\n# a comment\nFROM \\\n  busybox \\\n  # inside\n  AS b\nRUN x\n", want: []string{"busybox"}},
		{name: "escape directive", dockerfile: "# escape=`\nFROM `\n  mcr/windows\n", want: []string{"mcr/windows"}},
		{name: "CRLF", dockerfile: "FROM busybox\r\nRUN x\r\n", want: []string{"busybox"}},
		{name: "empty", dockerfile: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := baseImages([]byte(tt.dockerfile), tt.args)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBuildArgs(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "values and nulls", in: `{"A":"1","B":null}`, want: map[string]string{"A": "1"}},
		{name: "bad JSON", in: `{`, want: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMergeImagePruneReports(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		bodies []string
		want   string
	}{
		{name: "nothing pruned", key: "ImagesDeleted", bodies: []string{`{"ImagesDeleted":null,"SpaceReclaimed":0}`, `{"ImagesDeleted":null,"SpaceReclaimed":0}`},
			want: `{"ImagesDeleted":null,"SpaceReclaimed":0}`},
		{name: "summed and joined once", key: "ImagesDeleted", bodies: []string{
			`{"ImagesDeleted":[{"Untagged":"x:1"},{"Deleted":"sha256:a"}],"SpaceReclaimed":10}`,
			`{"ImagesDeleted":[{"Untagged":"x:1"},{"Deleted":"sha256:a"}],"SpaceReclaimed":10}`,
			`{"ImagesDeleted":[{"Deleted":"sha256:b"}],"SpaceReclaimed":5}`},
			want: `{"ImagesDeleted":[{"Untagged":"x:1"},{"Deleted":"sha256:a"},{"Deleted":"sha256:b"}],"SpaceReclaimed":25}`},
		{name: "build cache", key: "CachesDeleted", bodies: []string{`{"CachesDeleted":["c1"],"SpaceReclaimed":1}`, `{"CachesDeleted":["c2"],"SpaceReclaimed":2}`},
			want: `{"CachesDeleted":["c1","c2"],"SpaceReclaimed":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodies := make([][]byte, len(tt.bodies))
			for i, b := range tt.bodies {
				bodies[i] = []byte(b)
			}
			rep, err := mergeImagePruneReports(tt.key, bodies)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(rep)
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := mergeImagePruneReports("ImagesDeleted", [][]byte{[]byte(`nope`)}); err == nil {
		t.Error("a broken report was accepted")
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

func TestExpandBuildArgs(t *testing.T) {
	vars := map[string]string{"A": "a", "E": ""}
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "x$A", want: "xa"},
		{name: "braces", in: "${A}:1", want: "a:1"},
		{name: "default used", in: "${E:-d}", want: "d"},
		{name: "default unused", in: "${A:-d}", want: "a"},
		{name: "alternative", in: "${A:+alt}", want: "alt"},
		{name: "alternative of empty", in: "${E:+alt}", want: ""},
		{name: "unknown", in: "$NOPE", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expandBuildArgs(tt.in, vars); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
