package main

import (
	"os"
	"path/filepath"
	"testing"
)

// composeQuery names the project as docker compose would: -p, else the
// file's name:, else the directory's name (normalised).
func TestComposeQuery(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	for _, tc := range []struct {
		name, project, body, want string
	}{
		{"-p", "given", "name: infile\nservices: {}\n", "given"},
		{"name:", "", "name: infile\nservices: {}\n", ""}, // the server reads it
		{"directory", "", "services: {}\n", "myshop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := composeQuery(file, tc.project, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if q.Get("name") != tc.want || q.Get("workdir") != dir || q.Get("file") != file {
				t.Errorf("query %v, want name %q, workdir %q, file %q", q, tc.want, dir, file)
			}
		})
	}
}
