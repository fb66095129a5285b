package placement

import (
	"context"
	"net/http"
	"testing"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

func TestPlaceNamed(t *testing.T) {
	tests := []struct {
		name   string
		kind   scheduler.Kind
		ref    string
		labels map[string]string
		held   map[string][]string // names each host lists
		want   string              // host ("" with wantCode)
		bare   string
		// builtin: the create goes to the first host for the engine's refusal
		builtin  bool
		wantCode int
	}{
		{name: "fewest objects", kind: scheduler.KindVolume, ref: "v", held: map[string][]string{"h1": {"a"}, "h3": {"b", "c"}}, want: "h2", bare: "v"},
		{name: "built-in networks are not counted", kind: scheduler.KindNetwork, ref: "n",
			held: map[string][]string{"h1": {"bridge", "host", "none"}, "h2": {"bridge", "x"}, "h3": {"bridge", "y"}}, want: "h1", bare: "n"},
		{name: "a volume named like a built-in network counts", kind: scheduler.KindVolume, ref: "bridge",
			held: map[string][]string{"h2": {"bridge"}}, want: "h2", bare: "bridge"},
		{name: "HOST/NAME", kind: scheduler.KindVolume, ref: "h3/v", want: "h3", bare: "v"},
		{name: "the host label", kind: scheduler.KindNetwork, ref: "n", labels: map[string]string{labels.Host: "h2"}, want: "h2", bare: "n"},
		{name: "HOST/NAME and the label agree", kind: scheduler.KindNetwork, ref: "h2/n", labels: map[string]string{labels.Host: "h2"}, want: "h2", bare: "n"},
		{name: "HOST/NAME and the label disagree", kind: scheduler.KindNetwork, ref: "h2/n", labels: map[string]string{labels.Host: "h1"}, wantCode: http.StatusBadRequest},
		{name: "the label names no host", kind: scheduler.KindVolume, ref: "v", labels: map[string]string{labels.Host: "h9"}, wantCode: http.StatusBadRequest},
		{name: "a network needs a name", kind: scheduler.KindNetwork, ref: "", wantCode: http.StatusBadRequest},
		{name: "a volume the engine names", kind: scheduler.KindVolume, ref: "", held: map[string][]string{"h1": {"a"}, "h2": {"b"}}, want: "h3", bare: ""},
		{name: "a built-in network", kind: scheduler.KindNetwork, ref: "host", want: "h1", bare: "host", builtin: true},
		{name: "an existing volume: its host answers", kind: scheduler.KindVolume, ref: "v", held: map[string][]string{"h3": {"v"}}, want: "h3", bare: "v"},
		{name: "an existing volume on the named host", kind: scheduler.KindVolume, ref: "h2/v", held: map[string][]string{"h1": {"v"}, "h2": {"v"}}, want: "h2", bare: "v"},
		{name: "an existing volume on another host than named", kind: scheduler.KindVolume, ref: "h2/v", held: map[string][]string{"h1": {"v"}}, wantCode: http.StatusConflict},
		{name: "an existing network", kind: scheduler.KindNetwork, ref: "n", held: map[string][]string{"h3": {"n"}}, wantCode: http.StatusConflict},
	}
	tf := threeHosts(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := func(_ context.Context, h *hosts.Host) ([]string, error) { return tt.held[h.Name], nil }
			np, err := tf.placer.PlaceNamed(context.Background(), NamedObject{Kind: tt.kind, Ref: tt.ref, Labels: tt.labels, List: list})
			if tt.wantCode != 0 {
				if errdefs.Status(err) != tt.wantCode {
					t.Fatalf("error %v, want status %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			np.Done()
			if np.Host.Name != tt.want || np.Name != tt.bare || np.Builtin != tt.builtin {
				t.Errorf("placed %s on %s (builtin %v), want %s on %s (builtin %v)", np.Name, np.Host.Name, np.Builtin, tt.bare, tt.want, tt.builtin)
			}
		})
	}
	// A host that cannot list refuses the create, and the name is free again.
	failing := func(_ context.Context, h *hosts.Host) ([]string, error) {
		if h.Name == "h2" {
			return nil, errdefs.New(errdefs.ErrUnavailable, "host h2: down")
		}
		return nil, nil
	}
	if _, err := tf.placer.PlaceNamed(context.Background(), NamedObject{Kind: scheduler.KindVolume, Ref: "v", List: failing}); errdefs.Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("error %v, want 503", err)
	}
	LockName(scheduler.KindVolume, "v")()
}
