package proxy

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/clocker/clocker/engineapi"
)

// nameAtHost describes merged objects as NAME@HOST (their Node) or, for
// objects of no one host, NAME#ID.
func nameAtHost(t *testing.T, objs []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, o := range objs {
		var head engineapi.ObjectHead
		if err := json.Unmarshal(o, &head); err != nil {
			t.Fatalf("bad object %s: %v", o, err)
		}
		var node struct{ Node *struct{ Name string } }
		_ = json.Unmarshal(o, &node)
		if node.Node != nil {
			out = append(out, head.Name+"@"+node.Node.Name)
		} else {
			out = append(out, head.Name+"#"+head.ID)
		}
	}
	return out
}

// checkHostLabel fails unless the objects of a list show the label
// io.clocker.host exactly when the list was filtered on it (query), and
// then with the host of their Node.
func checkHostLabel(t *testing.T, query string, objs []json.RawMessage) {
	t.Helper()
	filtered := strings.Contains(query, url.QueryEscape(HostLabel))
	for _, o := range objs {
		var obj struct {
			Name   string
			Labels map[string]string
			Node   *struct{ Name string }
		}
		if err := json.Unmarshal(o, &obj); err != nil {
			t.Fatalf("bad object %s: %v", o, err)
		}
		if obj.Node == nil {
			continue // a built-in network: no one host's
		}
		if h, ok := obj.Labels[HostLabel]; ok != filtered || ok && h != obj.Node.Name {
			t.Errorf("%s (Node %s) shows labels %v; filtered on %s: %v", obj.Name, obj.Node.Name, obj.Labels, HostLabel, filtered)
		}
	}
}
