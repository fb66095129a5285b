package engineapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
)

func rawRows(t *testing.T, rows ...string) []json.RawMessage {
	t.Helper()
	out := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		if !json.Valid([]byte(r)) {
			t.Fatalf("bad test row %s", r)
		}
		out[i] = json.RawMessage(r)
	}
	return out
}

// listed is what a test reads back of a merged row.
type listedImage struct {
	ID          string `json:"Id"`
	Created     int64
	RepoTags    []string
	RepoDigests []string
	Containers  int64
	Size        int64
}

func TestMergeImageLists(t *testing.T) {
	tests := []struct {
		name  string
		lists map[string][]string // host → rows
		want  []listedImage
	}{
		{
			name: "same image on every host is one row",
			lists: map[string][]string{
				"h1": {`{"Id":"sha256:a","Created":10,"RepoTags":["busybox:latest"],"RepoDigests":null,"Containers":-1,"Size":5}`},
				"h2": {`{"Id":"sha256:a","Created":10,"RepoTags":["busybox:latest"],"RepoDigests":null,"Containers":-1,"Size":5}`},
				"h3": {`{"Id":"sha256:a","Created":10,"RepoTags":["busybox:latest"],"RepoDigests":null,"Containers":-1,"Size":5}`},
			},
			want: []listedImage{{ID: "sha256:a", Created: 10, RepoTags: []string{"busybox:latest"}, Containers: -1, Size: 5}},
		},
		{
			name: "tags and digests unioned in first-seen order",
			lists: map[string][]string{
				"h1": {`{"Id":"sha256:a","Created":10,"RepoTags":["busybox:latest","mine:1"],"RepoDigests":["busybox@sha256:d1"],"Containers":-1}`},
				"h2": {`{"Id":"sha256:a","Created":10,"RepoTags":["busybox:latest","other:2"],"RepoDigests":["busybox@sha256:d1","x@sha256:d2"],"Containers":-1}`},
			},
			want: []listedImage{{ID: "sha256:a", Created: 10, RepoTags: []string{"busybox:latest", "mine:1", "other:2"},
				RepoDigests: []string{"busybox@sha256:d1", "x@sha256:d2"}, Containers: -1}},
		},
		{
			name: "placeholder dropped when another host tags the image",
			lists: map[string][]string{
				"h1": {`{"Id":"sha256:a","Created":10,"RepoTags":["<none>:<none>"],"RepoDigests":["<none>@<none>"],"Containers":-1}`},
				"h2": {`{"Id":"sha256:a","Created":10,"RepoTags":["app:1"],"RepoDigests":["app@sha256:d"],"Containers":-1}`},
			},
			want: []listedImage{{ID: "sha256:a", Created: 10, RepoTags: []string{"app:1"}, RepoDigests: []string{"app@sha256:d"}, Containers: -1}},
		},
		{
			name: "dangling everywhere keeps the placeholder",
			lists: map[string][]string{
				"h1": {`{"Id":"sha256:a","Created":10,"RepoTags":["<none>:<none>"],"Containers":-1}`},
				"h2": {`{"Id":"sha256:a","Created":10,"RepoTags":["<none>:<none>"],"Containers":-1}`},
			},
			want: []listedImage{{ID: "sha256:a", Created: 10, RepoTags: []string{"<none>:<none>"}, Containers: -1}},
		},
		{
			name: "containers summed over hosts that counted",
			lists: map[string][]string{
				"h1": {`{"Id":"sha256:a","Created":10,"Containers":2}`},
				"h2": {`{"Id":"sha256:a","Created":10,"Containers":-1}`},
				"h3": {`{"Id":"sha256:a","Created":10,"Containers":3}`},
			},
			want: []listedImage{{ID: "sha256:a", Created: 10, Containers: 5}},
		},
		{
			name: "newest first, ties by ID",
			lists: map[string][]string{
				"h1": {`{"Id":"sha256:old","Created":1,"Containers":-1}`, `{"Id":"sha256:b","Created":5,"Containers":-1}`},
				"h2": {`{"Id":"sha256:new","Created":9,"Containers":-1}`, `{"Id":"sha256:a","Created":5,"Containers":-1}`},
			},
			want: []listedImage{
				{ID: "sha256:new", Created: 9, Containers: -1},
				{ID: "sha256:a", Created: 5, Containers: -1},
				{ID: "sha256:b", Created: 5, Containers: -1},
				{ID: "sha256:old", Created: 1, Containers: -1},
			},
		},
		{
			name:  "no images",
			lists: map[string][]string{"h1": {}, "h2": {}},
			want:  []listedImage{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lists []HostImages
			for _, h := range []string{"h1", "h2", "h3"} {
				if rows, ok := tt.lists[h]; ok {
					lists = append(lists, HostImages{Host: h, Rows: rawRows(t, rows...)})
				}
			}
			rows, err := MergeImageLists(lists)
			if err != nil {
				t.Fatal(err)
			}
			body, err := EncodeImageRows(rows)
			if err != nil {
				t.Fatal(err)
			}
			var got []listedImage
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMergeImageListsKeepsOtherFields(t *testing.T) {
	rows, err := MergeImageLists([]HostImages{{Host: "h1", Rows: rawRows(t,
		`{"Id":"sha256:a","Created":10,"Labels":{"k":"v"},"ParentId":"p","SharedSize":-1,"VirtualSize":7,"RepoTags":null,"RepoDigests":null,"Containers":-1}`)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := EncodeImageRows(rows)
	want := `[{"Containers":-1,"Created":10,"Id":"sha256:a","Labels":{"k":"v"},"ParentId":"p","RepoDigests":null,"RepoTags":null,"SharedSize":-1,"VirtualSize":7}]` + "\n"
	if string(body) != want {
		t.Errorf("got  %s\nwant %s", body, want)
	}
	if _, err := MergeImageLists([]HostImages{{Host: "h1", Rows: []json.RawMessage{json.RawMessage(`[1]`)}}}); err == nil {
		t.Error("a row that is not an object was accepted")
	}
}

func TestTimeBounds(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 10, 500, time.UTC)
	sec := base.Unix()
	rows := func() []*ImageRow {
		return []*ImageRow{
			{ID: "late", Created: sec + 10},
			{ID: "same-sec-after", Created: sec, Precise: base.Add(time.Millisecond)},
			{ID: "ref", Created: sec, Precise: base},
			{ID: "same-sec-before", Created: sec, Precise: base.Add(-400)},
			{ID: "early", Created: sec - 9},
		}
	}
	tests := []struct {
		name  string
		bound TimeBound
		want  []string
	}{
		{name: "before", bound: TimeBound{Before: base}, want: []string{"same-sec-before", "early"}},
		{name: "since", bound: TimeBound{Since: base}, want: []string{"late", "same-sec-after"}},
		{name: "both", bound: TimeBound{Before: base.Add(time.Hour), Since: time.Unix(sec-5, 0)}, want: []string{"late", "same-sec-after", "ref", "same-sec-before"}},
		{name: "none", bound: TimeBound{}, want: []string{"late", "same-sec-after", "ref", "same-sec-before", "early"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range FilterRowsByTime(rows(), tt.bound) {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	b := TimeBound{Before: base}
	if !b.Undecided(base.Unix()) || b.Undecided(base.Unix()+1) {
		t.Error("undecided: a row of the bound's second must be inspected, others not")
	}
}

func TestParseImageFilters(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string
		want     Filters
	}{
		{name: "empty", in: "", want: Filters{}},
		{name: "map form", in: `{"dangling":{"true":true}}`, want: Filters{"dangling": {"true": true}}},
		{name: "list form", in: `{"reference":["busybox"]}`, want: Filters{"reference": {"busybox": true}}},
		{name: "bad JSON", in: `{nope`, wantErr: "invalid character 'n' looking for beginning of object key string"},
		{name: "wrong shape", in: `{"a":5}`, wantErr: "invalid filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseImageFilters(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || errdefs.Status(err) != 400 {
					t.Fatalf("err %v (status %d), want 400 %q", err, errdefs.Status(err), tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestMergeImageInspect(t *testing.T) {
	tests := []struct {
		name             string
		bodies           []string
		wantTags, wantDg []string
		same             bool // the first body comes back unchanged
	}{
		{name: "one host", bodies: []string{`{"Id":"a","RepoTags":["x:1"],"RepoDigests":[],"Size":1}`}, same: true},
		{name: "nothing new", bodies: []string{`{"Id":"a","RepoTags":["x:1"]}`, `{"Id":"a","RepoTags":["x:1"]}`}, same: true},
		{
			name:     "tags of the same ID added",
			bodies:   []string{`{"Id":"a","RepoTags":["x:1"],"RepoDigests":[],"Size":1}`, `{"Id":"a","RepoTags":["x:1","y:2"],"RepoDigests":["x@sha256:d"]}`},
			wantTags: []string{"x:1", "y:2"}, wantDg: []string{"x@sha256:d"},
		},
		{name: "another ID under the name is left out", bodies: []string{`{"Id":"a","RepoTags":["x:1"]}`, `{"Id":"b","RepoTags":["x:1","z:3"]}`}, same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodies := make([][]byte, len(tt.bodies))
			for i, b := range tt.bodies {
				bodies[i] = []byte(b)
			}
			got, err := MergeImageInspect(bodies)
			if err != nil {
				t.Fatal(err)
			}
			if tt.same {
				if string(got) != tt.bodies[0] {
					t.Fatalf("got %s, want the first body unchanged", got)
				}
				return
			}
			var out struct {
				RepoTags, RepoDigests []string
				Size                  int
			}
			if err := json.Unmarshal(got, &out); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out.RepoTags, tt.wantTags) || !slices.Equal(out.RepoDigests, tt.wantDg) || out.Size != 1 {
				t.Errorf("got %+v", out)
			}
		})
	}
}

func TestImageNotFoundAnswer(t *testing.T) {
	nf := errdefs.New(errdefs.ErrNotFound, "No such image: x:latest")
	bad := errdefs.New(errdefs.ErrInvalid, "invalid reference format")
	down := errdefs.New(errdefs.ErrUnavailable, "host h2 down")
	tests := []struct {
		name       string
		errs       []error
		wantStatus int
		wantMsg    string
	}{
		{name: "all not found", errs: []error{nf, nf}, wantStatus: 404, wantMsg: "No such image: x"},
		{name: "bad reference wins", errs: []error{nf, bad}, wantStatus: 400, wantMsg: "invalid reference format"},
		{name: "down and not found", errs: []error{down, nf}, wantStatus: 404, wantMsg: "No such image: x"},
		{name: "only down", errs: []error{down}, wantStatus: 503, wantMsg: "host h2 down"},
		{name: "no hosts", errs: nil, wantStatus: 404, wantMsg: "No such image: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ImageNotFoundAnswer("x", tt.errs)
			if errdefs.Status(err) != tt.wantStatus || err.Error() != tt.wantMsg {
				t.Errorf("got %d %q, want %d %q", errdefs.Status(err), err, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

func TestMergeImageDeleteReports(t *testing.T) {
	tests := []struct {
		name    string
		reports [][]map[string]string
		want    []map[string]string
	}{
		{name: "none", reports: nil, want: []map[string]string{}},
		{
			name: "same untag everywhere is one entry",
			reports: [][]map[string]string{
				{{"Untagged": "x:1"}}, {{"Untagged": "x:1"}}, {{"Untagged": "x:1"}},
			},
			want: []map[string]string{{"Untagged": "x:1"}},
		},
		{
			name: "deletes joined in order",
			reports: [][]map[string]string{
				{{"Untagged": "x:1"}, {"Deleted": "sha256:a"}},
				{{"Untagged": "x:1"}, {"Deleted": "sha256:b"}, {"Deleted": "sha256:a"}},
			},
			want: []map[string]string{{"Untagged": "x:1"}, {"Deleted": "sha256:a"}, {"Deleted": "sha256:b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeImageDeleteReports(tt.reports...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPickSaveHost(t *testing.T) {
	tests := []struct {
		name                  string
		has                   [][]bool
		wantHost, wantMissing int
	}{
		{name: "first host with all", has: [][]bool{{true, false}, {true, true}, {true, true}}, wantHost: 1, wantMissing: -1},
		{name: "none has all: most, first missing", has: [][]bool{{true, false, false}, {false, true, true}}, wantHost: 1, wantMissing: 0},
		{name: "no names", has: [][]bool{{}, {}}, wantHost: 0, wantMissing: -1},
		{name: "no hosts", has: nil, wantHost: 0, wantMissing: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, m := PickSaveHost(tt.has)
			if h != tt.wantHost || m != tt.wantMissing {
				t.Errorf("got (%d, %d), want (%d, %d)", h, m, tt.wantHost, tt.wantMissing)
			}
		})
	}
}

func TestPrefixProgress(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "id", in: `{"status":"Downloading","progressDetail":{"current":1},"id":"abc"}`,
			want: `{"id":"h1: abc","progressDetail":{"current":1},"status":"Downloading"}`},
		{name: "status only", in: `{"status":"Digest: sha256:x"}`, want: `{"status":"h1: Digest: sha256:x"}`},
		{name: "stream", in: `{"stream":"Loaded image: busybox:latest\n"}`, want: `{"stream":"h1: Loaded image: busybox:latest\n"}`},
		{name: "empty id falls to status", in: `{"id":"","status":"s"}`, want: `{"id":"","status":"h1: s"}`},
		{name: "aux untouched", in: `{"aux":{"ID":"sha256:x"}}`, want: `{"aux":{"ID":"sha256:x"}}`},
		{name: "not JSON passes", in: `hello`, want: `hello`},
		{name: "error detail", in: `{"errorDetail":{"message":"boom"},"error":"boom too"}`, wantErr: "boom"},
		{name: "error only", in: `{"error":"bang"}`, wantErr: "bang"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, msg, isErr := PrefixProgress("h1", []byte(tt.in+"\r\n"))
			if tt.wantErr != "" {
				if !isErr || msg != tt.wantErr {
					t.Fatalf("got %q %v, want error %q", msg, isErr, tt.wantErr)
				}
				return
			}
			if isErr || string(out) != tt.want+"\n" {
				t.Errorf("got %q, want %q", out, tt.want+"\n")
			}
		})
	}
}

func TestTimeBoundNarrow(t *testing.T) {
	t1, t2 := time.Unix(100, 0), time.Unix(200, 0)
	tests := []struct {
		name string
		refs [][2]any // key, time
		want TimeBound
	}{
		{name: "none", want: TimeBound{}},
		{name: "before: the earliest wins", refs: [][2]any{{"before", t2}, {"before", t1}, {"before", t2}}, want: TimeBound{Before: t1}},
		{name: "since: the latest wins", refs: [][2]any{{"since", t1}, {"since", t2}, {"since", t1}}, want: TimeBound{Since: t2}},
		{name: "both", refs: [][2]any{{"since", t1}, {"before", t2}}, want: TimeBound{Before: t2, Since: t1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b TimeBound
			for _, r := range tt.refs {
				b.Narrow(r[0].(string), r[1].(time.Time))
			}
			if !b.Before.Equal(tt.want.Before) || !b.Since.Equal(tt.want.Since) {
				t.Errorf("got %+v, want %+v", b, tt.want)
			}
			if b.IsZero() != (len(tt.refs) == 0) {
				t.Errorf("IsZero = %v with %d references", b.IsZero(), len(tt.refs))
			}
		})
	}
}
