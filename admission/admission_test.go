package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
)

// recorder is a step that logs each phase it runs and fails where told.
type recorder struct {
	name   string
	log    *[]string
	failAt string // phase to fail in
	phases []string
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) run(phase string) error {
	*r.log = append(*r.log, r.name+":"+phase)
	if r.failAt == phase {
		return fmt.Errorf("%s failed in %s", r.name, phase)
	}
	return nil
}

func (r *recorder) binding() Binding {
	return Binding{
		Undo: func() { *r.log = append(*r.log, r.name+":undo") },
		Done: func() { *r.log = append(*r.log, r.name+":done") },
	}
}

type placer struct{ *recorder }

func (p placer) Place(_ context.Context, c *Create) (Binding, error) {
	if err := p.run("place"); err != nil {
		return Binding{}, err
	}
	c.Host = &hosts.Host{}
	return p.binding(), nil
}

type binder struct{ *recorder }

func (b binder) Bind(context.Context, *Create) (Binding, error) {
	if err := b.run("bind"); err != nil {
		return Binding{}, err
	}
	return b.binding(), nil
}

// validatingPreparer and validatingBinder take part in two phases.
type validatingPreparer struct{ *recorder }

func (v validatingPreparer) Validate(*Create) error                 { return v.run("validate") }
func (v validatingPreparer) Prepare(context.Context, *Create) error { return v.run("prepare") }

type validatingBinder struct{ *recorder }

func (v validatingBinder) Validate(*Create) error { return v.run("validate") }
func (v validatingBinder) Bind(context.Context, *Create) (Binding, error) {
	if err := v.run("bind"); err != nil {
		return Binding{}, err
	}
	return v.binding(), nil
}

func newCreate(t *testing.T) *Create {
	t.Helper()
	c, err := NewCreate("web", nil, []byte(`{"Image":"busybox","Future":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChainRunsPhasesInOrder(t *testing.T) {
	tests := []struct {
		name    string
		failAt  string // "step:phase", "" for none, "engine" for a refused forward
		wantLog []string
	}{
		{name: "success", wantLog: []string{
			"request:validate", "ports:validate", "request:prepare", "place:place", "name:bind", "ports:bind",
			"forward", "ports:done", "name:done", "place:done"}},
		{name: "validate fails: nothing taken", failAt: "ports:validate", wantLog: []string{
			"request:validate", "ports:validate"}},
		{name: "prepare fails: nothing taken", failAt: "request:prepare", wantLog: []string{
			"request:validate", "ports:validate", "request:prepare"}},
		{name: "place fails", failAt: "place:place", wantLog: []string{
			"request:validate", "ports:validate", "request:prepare", "place:place"}},
		{name: "bind fails: earlier bindings undone in reverse", failAt: "ports:bind", wantLog: []string{
			"request:validate", "ports:validate", "request:prepare", "place:place", "name:bind", "ports:bind",
			"name:undo", "place:undo"}},
		{name: "engine refuses: every binding undone in reverse", failAt: "engine", wantLog: []string{
			"request:validate", "ports:validate", "request:prepare", "place:place", "name:bind", "ports:bind",
			"forward", "ports:undo", "name:undo", "place:undo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			rec := func(name string) *recorder {
				r := &recorder{name: name, log: &log}
				if step, phase, ok := strings.Cut(tt.failAt, ":"); ok && step == name {
					r.failAt = phase
				}
				return r
			}
			ch, err := NewChain(prometheus.NewRegistry(),
				validatingPreparer{rec("request")},
				placer{rec("place")},
				binder{rec("name")},
				validatingBinder{rec("ports")},
			)
			if err != nil {
				t.Fatal(err)
			}
			err = ch.Run(context.Background(), newCreate(t), func(context.Context, *Create, []byte) (bool, error) {
				log = append(log, "forward")
				return tt.failAt != "engine", nil
			})
			if (err != nil) != (tt.failAt != "") {
				t.Fatalf("Run: %v", err)
			}
			if tt.failAt == "engine" && !NotCreated(err) {
				t.Errorf("a refused forward: NotCreated(%v) = false", err)
			}
			if !slices.Equal(log, tt.wantLog) {
				t.Errorf("phases:\n got %v\nwant %v", log, tt.wantLog)
			}
		})
	}
}

func TestNewChainWantsOnePlacer(t *testing.T) {
	var log []string
	if _, err := NewChain(nil, binder{&recorder{name: "b", log: &log}}); err == nil {
		t.Error("a chain without a placer was accepted")
	}
	p := placer{&recorder{name: "p", log: &log}}
	if _, err := NewChain(nil, p, p); err == nil {
		t.Error("a chain with two placers was accepted")
	}
}

// TestBodyKeepsWhatNoStepChanged: fields Clocker does not know or did not
// touch reach the engine as the client sent them.
func TestBodyKeepsWhatNoStepChanged(t *testing.T) {
	in := `{"Image":"busybox","Env":["A=1","constraint:node==h1"],"Future":{"y":[1,2]},` +
		`"HostConfig":{"Memory":5,"NewKnob":"on","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`
	c, err := NewCreate("", nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	c.SetEnv([]string{"A=1"})
	c.SetLabel("io.clocker.host", "h1")
	for _, bs := range c.Spec.HostConfig.PortBindings {
		bs[0].HostPort = "20001"
	}
	c.Changed("HostConfig", "PortBindings")
	body, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Env        []string
		Labels     map[string]string
		Future     json.RawMessage
		HostConfig map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Env, []string{"A=1"}) || out.Labels["io.clocker.host"] != "h1" {
		t.Errorf("changed fields not encoded: %s", body)
	}
	if string(out.Future) != `{"y":[1,2]}` || string(out.HostConfig["NewKnob"]) != `"on"` || string(out.HostConfig["Memory"]) != "5" {
		t.Errorf("untouched fields changed: %s", body)
	}
	if !strings.Contains(string(out.HostConfig["PortBindings"]), `"HostPort":"20001"`) {
		t.Errorf("port bindings not rewritten: %s", out.HostConfig["PortBindings"])
	}
	if len(out.HostConfig) != 3 {
		t.Errorf("HostConfig gained fields the client did not send: %s", body)
	}
}

func TestNewCreateRefusesEmptyAndMalformed(t *testing.T) {
	for _, body := range []string{"", "  ", "{", `{"Image":"x"}x`, "null"} {
		if _, err := NewCreate("", nil, []byte(body)); err == nil {
			t.Errorf("NewCreate(%q) accepted", body)
		} else if !errors.Is(err, errInvalidForTest) {
			t.Errorf("NewCreate(%q): %v, want an invalid-argument error", body, err)
		}
	}
}
