package blueprint

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Two managers over one store take turns leading (as on etcd): each
// Resume as it starts to lead catches up with what the other did — a
// resize read again, an application deleted dropped — and leaves alone
// what nobody changed. No container is made twice, and the manager that
// drops an application makes none of its containers again.
func TestResumeFollowsAnotherManager(t *testing.T) {
	st, eng := tempStore(t), newFake()
	a := newEnv(t, st, eng)
	app := a.deploy(webApp)
	a.settle(app)
	made := eng.creates
	a.m.SetActing(false) // a loses the lead

	b := newEnv(t, st, eng)
	if err := b.m.Resume(); err != nil {
		t.Fatal(err)
	}
	b.settle(app)
	if eng.creates != made {
		t.Fatalf("%d creates after b resumed, want %d (adopted)", eng.creates, made)
	}
	code, body := b.do("POST", "/v1/applications/"+app+"/entities/web/effectors/resize", "application/x-www-form-urlencoded", "desiredSize=3")
	if code != http.StatusOK {
		t.Fatalf("resize through b: %d %s", code, body)
	}
	b.settle(app)
	b.m.SetActing(false)

	// a leads again: the cluster b grew, not the one a had.
	before, _ := a.m.App(app)
	if err := a.m.Resume(); err != nil {
		t.Fatal(err)
	}
	a.m.SetActing(true)
	a.settle(app)
	if after, _ := a.m.App(app); after == before {
		t.Fatal("a kept its own copy of the application b changed")
	}
	if got := a.sensor(app, "web", "group.members.count"); got != "3" {
		t.Errorf("a sees web with %s members, want b's 3", got)
	}
	if eng.creates != made+1 {
		t.Errorf("%d creates, want %d (b's one new member)", eng.creates, made+1)
	}
	// Nothing changed since: Resume keeps what a has.
	same, _ := a.m.App(app)
	if err := a.m.Resume(); err != nil {
		t.Fatal(err)
	}
	if now, _ := a.m.App(app); now != same {
		t.Error("an unchanged application was read again")
	}
	a.m.SetActing(false)

	// b leads and deletes it; a, leading again, drops its copy and
	// touches no container.
	if err := b.m.Resume(); err != nil {
		t.Fatal(err)
	}
	b.m.SetActing(true)
	code, body = b.do("DELETE", "/v1/applications/"+app, "", "")
	if code != http.StatusAccepted {
		t.Fatalf("delete through b: %d %s", code, body)
	}
	var task struct{ ID string }
	_ = json.Unmarshal([]byte(body), &task)
	b.waitTask(task.ID)
	made = eng.creates
	if err := a.m.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.App(app); err == nil {
		t.Error("a still has the application b deleted")
	}
	if c, _, _ := eng.snapshot(); c != 0 || eng.creates != made {
		t.Errorf("after a dropped the deleted application: %d containers, %d creates (want 0, %d)", c, eng.creates, made)
	}
}
