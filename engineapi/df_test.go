package engineapi

import (
	"testing"
)

func TestMergeDiskUsage(t *testing.T) {
	tests := []struct {
		name    string
		parts   []string
		want    string
		wantErr bool
	}{
		{name: "one host as it is",
			parts: []string{`{"LayersSize":10,"Images":[{"Id":"sha256:a","Containers":1,"RepoTags":["busybox:latest"],"Size":10}],"Containers":[{"Id":"c1"}],"Volumes":[],"BuildCache":null,"BuilderSize":0}`},
			want:  `{"BuildCache":null,"BuilderSize":0,"Containers":[{"Id":"c1"}],"Images":[{"Containers":1,"Id":"sha256:a","RepoTags":["busybox:latest"],"Size":10}],"LayersSize":10,"Volumes":[]}`},
		{name: "sums, merges images by id, concatenates",
			parts: []string{
				`{"LayersSize":10,"Images":[{"Id":"sha256:a","Containers":1,"RepoTags":["busybox:latest"],"RepoDigests":null,"Size":10,"SharedSize":0}],"Containers":[{"Id":"c1"}],"Volumes":[{"Name":"v1"}],"BuildCache":null,"BuilderSize":0}`,
				`{"LayersSize":25,"Images":[{"Id":"sha256:a","Containers":2,"RepoTags":["busybox:latest","bb:1"],"RepoDigests":null,"Size":10,"SharedSize":0},{"Id":"sha256:b","Containers":0,"RepoTags":["app:1"],"RepoDigests":null,"Size":15,"SharedSize":0}],"Containers":[{"Id":"c2"},{"Id":"c3"}],"Volumes":[{"Name":"v1"}],"BuildCache":[{"ID":"x"}],"BuilderSize":3}`,
				`{"LayersSize":0,"Images":[],"Containers":[],"Volumes":[],"BuildCache":null,"BuilderSize":0}`,
			},
			want: `{"BuildCache":[{"ID":"x"}],"BuilderSize":3,"Containers":[{"Id":"c1"},{"Id":"c2"},{"Id":"c3"}],"Images":[{"Containers":3,"Id":"sha256:a","RepoDigests":null,"RepoTags":["busybox:latest","bb:1"],"SharedSize":0,"Size":10},{"Containers":0,"Id":"sha256:b","RepoDigests":null,"RepoTags":["app:1"],"SharedSize":0,"Size":15}],"LayersSize":35,"Volumes":[{"Name":"v1"},{"Name":"v1"}]}`},
		{name: "containers not computed stay -1",
			parts: []string{`{"Images":[{"Id":"a","Containers":-1}]}`, `{"Images":[{"Id":"a","Containers":-1}]}`},
			want:  `{"Images":[{"Containers":-1,"Id":"a"}]}`},
		{name: "null lists everywhere stay null",
			parts: []string{`{"LayersSize":1,"Images":null,"Containers":null}`, `{"LayersSize":2,"Images":null,"Containers":null}`},
			want:  `{"Containers":null,"Images":null,"LayersSize":3}`},
		{name: "null on one host, list on another",
			parts: []string{`{"Volumes":null}`, `{"Volumes":[{"Name":"v"}]}`},
			want:  `{"Volumes":[{"Name":"v"}]}`},
		{name: "bad answer", parts: []string{`{"LayersSize":"x"}`}, wantErr: true},
		{name: "not JSON", parts: []string{`<html>`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := make([][]byte, len(tt.parts))
			for i, p := range tt.parts {
				parts[i] = []byte(p)
			}
			got, err := MergeDiskUsage(parts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error, got %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
