package engineapi

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

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
			keep := &bytes.Buffer{}
			var src io.Reader = body
			if tt.limit > 0 {
				src = io.LimitReader(body, tt.limit)
			}
			got, err := PeekDockerfile(src, tt.dockerfile, keep)
			if tt.wantErr != (err != nil) || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNoDockerfile) {
				t.Errorf("error %v is not ErrNoDockerfile", err)
			}
			// What was kept plus what was not read is the context intact.
			all, err := io.ReadAll(io.MultiReader(keep, body))
			if err != nil || !bytes.Equal(all, tt.context) {
				t.Fatalf("context changed: %d bytes of %d (%v)", len(all), len(tt.context), err)
			}
		})
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
			got := BaseImages([]byte(tt.dockerfile), tt.args)
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
			if got := BuildArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
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
			rep, err := MergeImagePruneReports(tt.key, bodies)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(rep)
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := MergeImagePruneReports("ImagesDeleted", [][]byte{[]byte(`nope`)}); err == nil {
		t.Error("a broken report was accepted")
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
