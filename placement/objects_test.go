package placement

import (
	"context"
	"errors"
	"testing"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

func TestPlaceObject(t *testing.T) {
	project := map[string]string{labels.ComposeProject: "p"}
	tests := []struct {
		name     string
		setup    func(tf *testFleet)
		obj      Object // Host is named by host
		host     string
		want     string
		wantCode int
	}{
		{name: "spread: fewest containers", setup: func(tf *testFleet) {
			tf.add("h1", fakeengine.Spec{Name: "busy1"})
			tf.add("h2", fakeengine.Spec{Name: "busy2"})
		}, obj: Object{Kind: scheduler.KindVolume}, want: "h3"},
		{name: "equally busy: fewest volumes", setup: func(tf *testFleet) {
			tf.add("h1", fakeengine.Spec{Name: "busy"})
		}, obj: Object{Kind: scheduler.KindVolume, Objects: map[string]int{"h2": 2, "h3": 1}}, want: "h3"},
		{name: "the named host", obj: Object{Kind: scheduler.KindNetwork}, host: "h2", want: "h2"},
		{name: "the named host beats the project", setup: func(tf *testFleet) {
			tf.add("h3", fakeengine.Spec{Name: "p-web", Labels: project})
		}, obj: Object{Kind: scheduler.KindVolume, Project: "p"}, host: "h1", want: "h1"},
		{name: "a volume goes where the project's network is", setup: func(tf *testFleet) {
			tf.add("h3", fakeengine.Spec{Name: "busy1"})
			tf.add("h3", fakeengine.Spec{Name: "busy2"})
			tf.engines["h3"].AddNetwork("p_default", project)
		}, obj: Object{Kind: scheduler.KindVolume, Project: "p"}, want: "h3"},
		{name: "a network goes where the project's volume is", setup: func(tf *testFleet) {
			tf.add("h2", fakeengine.Spec{Name: "busy"})
			tf.engines["h2"].AddVolume("p_data", project)
		}, obj: Object{Kind: scheduler.KindNetwork, Project: "p"}, want: "h2"},
		{name: "where most of the project is", setup: func(tf *testFleet) {
			tf.engines["h1"].AddVolume("p_data", project)
			tf.add("h2", fakeengine.Spec{Name: "p-web", Labels: project})
			tf.add("h2", fakeengine.Spec{Name: "p-db", Labels: project})
		}, obj: Object{Kind: scheduler.KindNetwork, Project: "p"}, want: "h2"},
		{name: "another project's objects do not count", setup: func(tf *testFleet) {
			tf.add("h1", fakeengine.Spec{Name: "q-web", Labels: map[string]string{labels.ComposeProject: "q"}})
		}, obj: Object{Kind: scheduler.KindVolume, Project: "p"}, want: "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := threeHosts(t)
			if tt.setup != nil {
				tt.setup(tf)
			}
			if tt.host != "" {
				tt.obj.Host = tf.host(tt.host)
			}
			h, err := tf.placer.PlaceObject(context.Background(), tf.fleet.Hosts(), tt.obj)
			if tt.wantCode != 0 {
				if errdefs.Status(err) != tt.wantCode {
					t.Fatalf("error %v, want status %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name != tt.want {
				t.Errorf("placed on %s, want %s", h.Name, tt.want)
			}
		})
	}
}

func TestPlaceObjectNamedHostDown(t *testing.T) {
	tf := threeHosts(t)
	h := tf.host("h2")
	tf.engines["h2"].Close()
	waitUntil(t, func() bool { return !h.Healthy() })
	_, err := tf.placer.PlaceObject(context.Background(), nil, Object{Kind: scheduler.KindVolume, Host: h})
	if errdefs.Status(err) != 503 {
		t.Fatalf("error %v, want 503", err)
	}
	// Not named, the volume goes elsewhere.
	got, err := tf.placer.PlaceObject(context.Background(), healthyOf(tf.fleet.Hosts()), Object{Kind: scheduler.KindVolume})
	if err != nil || got.Name == "h2" {
		t.Fatalf("placed on %v: %v", got, err)
	}
}

func healthyOf(hs []*hosts.Host) []*hosts.Host {
	var out []*hosts.Host
	for _, h := range hs {
		if h.Healthy() {
			out = append(out, h)
		}
	}
	return out
}

func TestPlaceBuild(t *testing.T) {
	tests := []struct {
		name               string
		bases, cache, tags []string
		want               string
	}{
		{name: "the host with every base image", bases: []string{"golang:1", "alpine"}, want: "h1"},
		{name: "the host with the most of them", bases: []string{"golang:1", "busybox", "nosuch"}, want: "h1"},
		{name: "among hosts with the base image, the least busy", bases: []string{"busybox"}, want: "h2"},
		{name: "base images nowhere: the least busy host", bases: []string{"nosuch"}, want: "h3"},
		{name: "an import: the least busy host", want: "h3"},
		{name: "the host with its cache source among those with the base", bases: []string{"busybox"}, cache: []string{"golang:1"}, want: "h1"},
		{name: "a cache source where the base is not weighs less than the base", bases: []string{"redis"}, cache: []string{"golang:1"}, want: "h2"},
		{name: "a rebuild goes where its tag is", bases: []string{"busybox"}, tags: []string{"alpine"}, want: "h1"},
		{name: "a cache source outweighs the tags", bases: []string{"busybox"}, cache: []string{"redis"}, tags: []string{"alpine", "golang:1"}, want: "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := newTestFleet(t,
				fakeengine.Options{Name: "h1", Images: []string{"busybox", "golang:1", "alpine"}},
				fakeengine.Options{Name: "h2", Images: []string{"busybox", "redis"}},
				fakeengine.Options{Name: "h3", Images: []string{"hello-world"}},
			)
			h, err := tf.placer.PlaceBuild(context.Background(), Build{Bases: tt.bases, CacheFrom: tt.cache, Tags: tt.tags})
			if err != nil {
				t.Fatal(err)
			}
			if h.Name != tt.want {
				t.Errorf("placed on %s, want %s", h.Name, tt.want)
			}
		})
	}
	tf := newTestFleet(t, fakeengine.Options{Name: "h1"})
	tf.engines["h1"].Close()
	waitUntil(t, func() bool { return !tf.host("h1").Healthy() })
	var nf *scheduler.NoHostFitsError
	if _, err := tf.placer.PlaceBuild(context.Background(), Build{}); !errors.As(err, &nf) || !nf.NoHealthy {
		t.Errorf("no healthy host: %v", err)
	}
}
