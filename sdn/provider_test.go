package sdn

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

// fakeProvider keeps applied networks in a map.
type fakeProvider struct {
	cfg     ProviderConfig
	applied map[string]HostNetwork
	fail    map[string]bool // network IDs whose Apply fails
}

func (f *fakeProvider) Name() string { return "fake" }
func (f *fakeProvider) Apply(_ context.Context, hn HostNetwork) error {
	if f.fail[hn.NetworkID] {
		return errors.New("boom")
	}
	f.applied[hn.NetworkID] = hn
	return nil
}
func (f *fakeProvider) Remove(_ context.Context, id string) error { delete(f.applied, id); return nil }
func (f *fakeProvider) Applied(context.Context) ([]string, error) {
	return slices.Sorted(maps.Keys(f.applied)), nil
}
func (f *fakeProvider) Close() error { return nil }

var _ Provider = (*fakeProvider)(nil)

func TestRegistry(t *testing.T) {
	if !slices.Contains(Providers(), "vxlan") {
		t.Fatalf("vxlan not built in: %v", Providers())
	}
	_, err := NewProvider("weave", ProviderConfig{})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `unknown SDN provider "weave" (known: `) {
		t.Fatalf("unknown provider: %v", err)
	}

	var got ProviderConfig
	err = RegisterProvider("fake-registry-test", func(c ProviderConfig) (Provider, error) {
		got = c
		return &fakeProvider{cfg: c, applied: map[string]HostNetwork{}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unregisterProvider("fake-registry-test") })
	if err := RegisterProvider("fake-registry-test", nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("nil constructor: %v", err)
	}
	if err := RegisterProvider("vxlan", func(ProviderConfig) (Provider, error) { return nil, nil }); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("taking vxlan's name: %v", err)
	}
	p, err := NewProvider("fake-registry-test", ProviderConfig{Underlay: "eth0"})
	if err != nil || p.Name() != "fake" {
		t.Fatalf("NewProvider: %v %v", p, err)
	}
	if got.Port != VXLANPort || got.MTU != MTU || got.Underlay != "eth0" {
		t.Fatalf("config not defaulted: %+v", got)
	}
}

func TestReconcile(t *testing.T) {
	f := &fakeProvider{applied: map[string]HostNetwork{"stale": {NetworkID: "stale"}, "keep": {NetworkID: "keep"}},
		fail: map[string]bool{"bad": true}}
	err := Reconcile(context.Background(), f, []HostNetwork{
		{NetworkID: "keep", Name: "keep", VNI: 2},
		{NetworkID: "new", Name: "new"},
		{NetworkID: "bad", Name: "bad"},
	})
	if err == nil || !strings.Contains(err.Error(), "apply network bad: boom") {
		t.Fatalf("err %v, want the failure of bad", err)
	}
	if got := slices.Sorted(maps.Keys(f.applied)); !slices.Equal(got, []string{"keep", "new"}) {
		t.Fatalf("applied %v, want [keep new]: a failure must not hold up the others", got)
	}
	if f.applied["keep"].VNI != 2 {
		t.Fatal("keep not re-applied")
	}
}

// unregisterProvider lets a test run again in the same process (-count).
func unregisterProvider(name string) { providers.Unregister(name) }
