package deploy

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files' expected plans")

const separator = "\n---- plan\n"

// goldenFleet is the fleet the golden files are planned over.
var goldenFleet = []Host{
	{Name: "h1", Labels: map[string]string{"zone": "a", "disk": "ssd"}},
	{Name: "h2", Labels: map[string]string{"zone": "b"}},
	{Name: "h3", Labels: map[string]string{"zone": "a"}},
}

// TestGolden plans every testdata/*.txt (a compose file, a separator
// line, the expected plan or "error: …") with the project directory
// /srv/NAME where NAME is the file's name. The config-hash labels in
// stack.txt are those `docker compose -p stack config --hash '*'` (v5.6.0)
// prints for that file (checked against the real client in
// TestE2EComposeServerDeploy).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), separator)
			if !ok {
				t.Fatalf("%s: no %q line", f, strings.TrimSpace(separator))
			}
			got := plan(t, in, name)
			if *update {
				if err := os.WriteFile(f, []byte(in+separator+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: plan differs\n--- got\n%s--- want\n%s", f, got, want)
			}
		})
	}
}

func plan(t *testing.T, file, name string) string {
	t.Helper()
	src := Source{File: []byte(file), WorkingDir: "/srv/" + name}
	if !strings.HasPrefix(file, "name:") {
		src.Name = name // as the CLI sends the directory's name
	}
	p, err := Load(context.Background(), src)
	if err == nil {
		var pl *Plan
		if pl, err = Build(p, goldenFleet); err == nil {
			return pl.String()
		}
	}
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("error %v: want ErrInvalid", err)
	}
	return "error: " + err.Error() + "\n"
}

func TestIsCompose(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want bool
	}{
		{"compose", "services:\n  web:\n    image: busybox\n", true},
		{"compose with name", "name: x\nservices: {}\n", true},
		{"blueprint", "name: x\nservices:\n- type: docker:busybox\n", false},
		{"no services", "name: x\n", false},
		{"not yaml", "{{{", false},
		{"a list", "- a\n- b\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsCompose([]byte(tc.body)); got != tc.want {
				t.Errorf("IsCompose = %t, want %t", got, tc.want)
			}
		})
	}
}
