package blueprint

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
)

// fakeCompose recognises files whose services is a map by a marker and
// records what it was asked.
type fakeCompose struct {
	query url.Values
	ran   chan struct{}
	err   error
}

func (f *fakeCompose) IsCompose(body []byte) bool { return strings.Contains(string(body), "# compose") }

func (f *fakeCompose) Prepare(_ context.Context, _ string, _ []byte, q url.Values) (string, func(context.Context) (any, error), error) {
	f.query = q
	if f.err != nil {
		return "", nil, f.err
	}
	return "shop", func(context.Context) (any, error) { close(f.ran); return "made", nil }, nil
}

// A compose body goes to the ComposeDeployer and is answered as a
// deploy: 201, Location, the start task of the project; its refusal is
// an ApiError with its status; a blueprint still deploys as before.
func TestDeployCompose(t *testing.T) {
	fc := &fakeCompose{ran: make(chan struct{})}
	m := New(Options{Engine: newFake(), Version: "test", PollInterval: -1, Compose: fc})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(func() { srv.Close(); m.Close() })

	resp, err := http.Post(srv.URL+"/v1/applications?name=shop&workdir=/srv", "application/x-yaml", strings.NewReader("# compose\nservices: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var task struct{ ID, EntityID, DisplayName string }
	_ = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()
	if resp.StatusCode != 201 || task.EntityID != "shop" || task.DisplayName != "start" || !strings.HasSuffix(resp.Header.Get("Location"), "/v1/applications/shop") {
		t.Fatalf("%d %+v Location %q", resp.StatusCode, task, resp.Header.Get("Location"))
	}
	if fc.query.Get("workdir") != "/srv" {
		t.Errorf("query handed on: %v", fc.query)
	}
	select {
	case <-fc.ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the prepared run never ran")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := http.Get(srv.URL + "/v1/activities/" + task.ID)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: %d", task.ID, r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}

	fc.err = errdefs.New(errdefs.ErrConflict, "no host fits: h1: constraint disk==nvme not met")
	resp, err = http.Post(srv.URL+"/v1/applications", "application/x-yaml", strings.NewReader("# compose\n"))
	if err != nil {
		t.Fatal(err)
	}
	var apiErr apiError
	_ = json.NewDecoder(resp.Body).Decode(&apiErr)
	resp.Body.Close()
	if resp.StatusCode != 409 || apiErr.Error != 409 || apiErr.Message != fc.err.Error() {
		t.Errorf("refused: %d %+v", resp.StatusCode, apiErr)
	}
}
