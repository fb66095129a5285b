package proxy_test

import (
	"strings"
	"testing"
)

// A repeated `docker ps` is answered from the last answer while no cache
// changed; any change (a container made, stopped, removed behind Clocker's
// back) shows at once, and other queries are not confused with it.
func TestListMemoFollowsChanges(t *testing.T) {
	e := newEnv(t, fakeOpts{name: "h1", images: []string{"busybox"}}, fakeOpts{name: "h2", images: []string{"busybox"}})
	e.fakes["h1"].addContainer("", "one", "busybox", "running", nil)
	waitFor(t, "one listed", func() bool { return strings.Contains(string(e.do("GET", "/containers/json", nil).body), `"/one"`) })
	first := e.do("GET", "/v1.41/containers/json?all=1", nil)
	if again := e.do("GET", "/v1.41/containers/json?all=1", nil); string(again.body) != string(first.body) {
		t.Fatalf("the same query twice:\n%s\n%s", first.body, again.body)
	}
	id := e.fakes["h2"].addContainer("", "two", "busybox", "created", nil)
	waitFor(t, "two listed after its create", func() bool {
		return strings.Contains(string(e.do("GET", "/v1.41/containers/json?all=1", nil).body), `"/two"`)
	})
	// Running only: "two" is created, not running.
	if got := string(e.do("GET", "/v1.41/containers/json", nil).body); strings.Contains(got, `"/two"`) || !strings.Contains(got, `"/one"`) {
		t.Fatalf("another query answered from the memo: %s", got)
	}
	if err := e.fakes["h2"].Start(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two running", func() bool {
		return strings.Contains(string(e.do("GET", "/v1.41/containers/json", nil).body), `"/two"`)
	})
	if err := e.fakes["h2"].Remove(id, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two gone", func() bool {
		return !strings.Contains(string(e.do("GET", "/v1.41/containers/json?all=1", nil).body), `"/two"`)
	})
}
