package scheduler

import (
	"strings"
	"testing"
)

// replica is a container of compose service project/service.
func replica(name, project, service string, extra ...string) Container {
	l := map[string]string{LabelComposeProject: project, "com.docker.compose.service": service}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return Container{Name: name, Labels: l, Group: project}
}

// replicaReq is a create of a replica, its placement parsed from labels.
func replicaReq(t *testing.T, c Container) Request {
	t.Helper()
	pl, _, err := ParsePlacement(nil, c.Labels)
	if err != nil {
		t.Fatal(err)
	}
	return Request{Name: c.Name, Labels: c.Labels, Group: c.Group, Replicas: pl.Replicas, Chain: pl.Chain}
}

func TestComposeReplicasSpread(t *testing.T) {
	app := func(n string, extra ...string) Container { return replica("p-app-"+n, "p", "app", extra...) }
	tests := []struct {
		name     string
		strategy string
		req      Container
		nodes    []Node
		want     string
		wantErr  string
	}{
		{name: "soft: the host without a replica, busier or not", strategy: "spread", req: app("3"),
			nodes: []Node{up("h1", items(app("1"))), up("h2", items(app("2"))), up("h3", running(4))}, want: "h3"},
		{name: "soft: fewest replicas when every host has one", strategy: "spread", req: app("5"),
			nodes: []Node{up("h1", items(app("1"), app("2"))), up("h2", items(app("3"))), up("h3", items(app("4"), app("6")))}, want: "h2"},
		{name: "soft: before binpack", strategy: "binpack", req: app("2"),
			nodes: []Node{up("h1", items(app("1")), running(6)), up("h2")}, want: "h2"},
		{name: "other services and projects do not count", strategy: "spread", req: app("2"),
			nodes: []Node{up("h1", items(replica("p-db-1", "p", "db"), replica("q-app-1", "q", "app"))), up("h2", items(app("1")))}, want: "h1"},
		{name: "one-off containers are not replicas", strategy: "spread", req: app("2"),
			nodes: []Node{up("h1", items(app("run-1", "com.docker.compose.oneoff", "True"), Container{Name: "x"})), up("h2", items(app("1")))}, want: "h1"},
		{name: "off: the chain alone", strategy: "spread", req: app("2", LabelReplicas, "off"),
			nodes: []Node{up("h1", items(app("1"))), up("h2", running(3))}, want: "h1"},
		{name: "hard: refuses every host with a replica", strategy: "spread", req: app("3", LabelReplicas, "hard"),
			nodes:   []Node{up("h1", items(app("1"))), up("h2", items(app("2")))},
			wantErr: "h1: runs p-app-1, a replica of compose service p/app (io.clocker.replicas=hard); h2: runs p-app-2"},
		{name: "a container's own chain keeps the spread first", strategy: "spread", req: app("2", LabelStrategy, "depth-first"),
			nodes: []Node{up("h1", items(app("1")), running(5)), up("h2", running(1))}, want: "h2"},
		{name: "a pin wins: a named volume's host", strategy: "spread", req: app("2"),
			nodes: []Node{up("h1", items(app("1"))), up("h2")}, want: "h1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			req := replicaReq(t, tt.req)
			if strings.HasPrefix(tt.name, "a pin") {
				req.Pins = []Pin{{Host: "h1", Reason: "volume p_data"}}
			}
			checkPlace(t, s, req, tt.nodes, tt.want, tt.wantErr)
		})
	}
}

// Compose creates a service's replicas concurrently: the ledger's pending
// creates count as replicas, so three creates in a row land on three
// hosts before any engine shows one.
func TestComposeReplicasSpreadOverPendingCreates(t *testing.T) {
	s := NewSpread()
	l := NewLedger()
	busy := func(n *Node) { n.Running, n.Containers = 1, 1 }
	seen := map[string]bool{}
	for i := 1; i <= 3; i++ {
		nodes := []Node{up("h1"), up("h2", busy), up("h3", busy)} // h1 is the least busy
		req := replicaReq(t, replica("p-app-"+string(rune('0'+i)), "p", "app"))
		d, _, err := l.Decide(s, &req, nodes)
		if err != nil {
			t.Fatal(err)
		}
		seen[d.Hosts[0].Host] = true
	}
	if len(seen) != 3 {
		t.Fatalf("three replicas went to %v", seen)
	}
}

func TestComposeReplicasLabelErrors(t *testing.T) {
	_, _, err := ParsePlacement(nil, map[string]string{LabelReplicas: "always"})
	if err == nil || !strings.Contains(err.Error(), `invalid label io.clocker.replicas="always": want spread, hard or off`) {
		t.Fatalf("err = %v", err)
	}
	// Not a compose replica: the label is checked but means nothing.
	pl, _, err := ParsePlacement(nil, map[string]string{LabelReplicas: "hard"})
	if err != nil || pl.Replicas != "" {
		t.Fatalf("pl = %+v, err = %v", pl, err)
	}
}
