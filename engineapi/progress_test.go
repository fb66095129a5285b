package engineapi

import (
	"strings"
	"testing"
)

func TestLoadStream(t *testing.T) {
	type msg struct {
		src  int
		line string
	}
	tests := []struct {
		name    string
		in      []msg
		wantNow []string // written as they came, in order
		wantErr []string // error texts, in order
		tail    string
	}{
		{
			name: "a tagged image loaded on three hosts: its line once",
			in: []msg{
				{0, `{"stream":"Loaded image: busybox:latest\n"}`},
				{2, `{"stream":"Loaded image: busybox:latest\n"}`},
				{1, `{"stream":"Loaded image: busybox:latest\n"}`},
			},
			tail: `{"stream":"Loaded image: busybox:latest\n"}` + "\n",
		},
		{
			name: "a repository: every tag once, in the first host's order; then what others alone said",
			in: []msg{
				{1, `{"stream":"Loaded image: app:2\n"}`},
				{0, `{"stream":"Loaded image: app:1\n"}`},
				{1, `{"stream":"Loaded image: app:1\n"}`},
				{1, `{"stream":"The image app:1 already exists, renaming the old one with ID sha256:aa to empty string\n"}`},
				{0, `{"stream":"Loaded image: app:2\n"}`},
			},
			tail: `{"stream":"Loaded image: app:1\n"}` + "\n" + `{"stream":"Loaded image: app:2\n"}` + "\n" +
				`{"stream":"The image app:1 already exists, renaming the old one with ID sha256:aa to empty string\n"}` + "\n",
		},
		{
			name: "an untagged image: its ID once",
			in: []msg{
				{0, `{"stream":"Loaded image ID: sha256:abc\n"}` + "\r\n"},
				{1, `{"stream":"Loaded image ID: sha256:abc\n"}`},
			},
			tail: `{"stream":"Loaded image ID: sha256:abc\n"}` + "\n",
		},
		{
			name: "a layer's progress from the first host that reports it",
			in: []msg{
				{1, `{"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"l1"}`},
				{0, `{"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"l1"}`},
				{0, `{"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"l2"}`},
				{1, `{"status":"Loading layer","progressDetail":{"current":2,"total":2},"id":"l1"}`},
				{1, `{"status":"Loading layer","progressDetail":{"current":2,"total":2},"id":"l2"}`},
			},
			wantNow: []string{
				`{"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"l1"}`,
				`{"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"l2"}`,
				`{"status":"Loading layer","progressDetail":{"current":2,"total":2},"id":"l1"}`,
			},
		},
		{
			name: "errors are the hosts'; text that is not JSON is held as it is",
			in: []msg{
				{0, `{"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":"x"}`},
				{1, `{"error":"bad"}`},
				{1, `plain text`},
			},
			wantErr: []string{"Error processing tar file(exit status 1): unexpected EOF", "bad"},
			tail:    "plain text\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoadStream(3)
			var now, errs []string
			for _, m := range tt.in {
				out, msg, isErr := l.Line(m.src, []byte(m.line))
				if isErr {
					errs = append(errs, msg)
					continue
				}
				if out != nil {
					now = append(now, strings.TrimRight(string(out), "\r\n"))
				}
			}
			if strings.Join(now, "\n") != strings.Join(tt.wantNow, "\n") {
				t.Errorf("written now:\n%s\nwant\n%s", strings.Join(now, "\n"), strings.Join(tt.wantNow, "\n"))
			}
			if strings.Join(errs, "|") != strings.Join(tt.wantErr, "|") {
				t.Errorf("errors %q, want %q", errs, tt.wantErr)
			}
			// Messages end as the engines ended them, else with "\r\n".
			if got := strings.ReplaceAll(string(l.Tail()), "\r\n", "\n"); got != tt.tail {
				t.Errorf("tail:\n%s\nwant\n%s", got, tt.tail)
			}
		})
	}
}
