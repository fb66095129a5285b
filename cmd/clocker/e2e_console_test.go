//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The web console in a real headless browser (Debian's chromium) against
// clocker serve on real engines: the fleet view, the board following a
// docker run and rm, the dry run ranking as the API does, a host killed
// turning red. Screenshots go to $CLOCKER_E2E_SCREENSHOTS (default a
// directory under the system's temporary one); they are not committed.

// page is a headless chromium tab and what its console said.
type page struct {
	context.Context
	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

// browser opens a headless chromium tab; an uncaught exception fails the
// test at its end, and noErrors checks that nothing was logged as an
// error so far.
func browser(t *testing.T) *page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium (apt-get install chromium; .ci/setup installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	p := &page{Context: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.messages = append(p.messages, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.messages {
			if m.IsException() {
				t.Errorf("browser: %s", m)
			}
		}
	})
	return p
}

// noErrors fails the test when the page logged an error or threw.
func (p *page) noErrors(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.messages {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			t.Errorf("browser console: %s", m)
		}
	}
}

// waitPage polls a JavaScript predicate in the page until it holds, and
// returns how long that took.
func waitPage(t *testing.T, ctx *page, limit time.Duration, what, predicate string) time.Duration {
	t.Helper()
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
		t.Fatalf("the page never showed %s within %v: %v", what, limit, err)
	}
	return time.Since(start)
}

func screenshot(t *testing.T, ctx *page, name string) {
	t.Helper()
	dir := os.Getenv("CLOCKER_E2E_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "clocker-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

func navigate(t *testing.T, ctx *page, hash string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(httpURL("/ui/#"+hash))); err != nil {
		t.Fatalf("navigate #%s: %v", hash, err)
	}
}

func TestE2EConsole(t *testing.T) {
	ctx := browser(t)

	// Fleet: every host as a healthy card.
	navigate(t, ctx, "fleet")
	for _, e := range fleet.Engines {
		waitPage(t, ctx, 10*time.Second, "the card of "+e.Name, fmt.Sprintf(`document.querySelector('.card[data-host=%q][data-state="healthy"]')`, e.Name))
	}
	screenshot(t, ctx, "fleet")

	// Containers: a docker run shows on its host's column without a
	// reload, a removal takes it away.
	navigate(t, ctx, "containers")
	waitPage(t, ctx, 10*time.Second, "the board", `document.querySelectorAll('.column').length === 3 && document.getElementById('live').textContent === 'live'`)
	cleanup(t, "wc-board")
	target := fleet.Engines[1].Name
	id := mustDocker(t, "run", "-d", "--name", "wc-board", "-e", "constraint:node=="+target, "busybox", "sleep", "300")
	chip := fmt.Sprintf(`document.querySelector('.column[data-host=%q] a.chip[data-id=%q][data-state="running"]')`, target, id)
	took := waitPage(t, ctx, 2*time.Second, "wc-board running on "+target, chip)
	t.Logf("docker run shown on the board in %v", took.Round(time.Millisecond))
	screenshot(t, ctx, "containers")

	// Its page: the decision that placed it, and its logs.
	navigate(t, ctx, "container/"+id)
	waitPage(t, ctx, 5*time.Second, "the placement decision", fmt.Sprintf(`document.querySelector('#c-placement .rank tr[data-host=%q]') && document.querySelectorAll('#c-placement .rejected tr[data-host]').length === 2`, target))
	screenshot(t, ctx, "container")

	navigate(t, ctx, "containers")
	waitPage(t, ctx, 5*time.Second, "wc-board on the board again", chip)
	mustDocker(t, "rm", "-f", "wc-board")
	took = waitPage(t, ctx, 2*time.Second, "wc-board gone", fmt.Sprintf(`!document.querySelector('a.chip[data-id=%q]')`, id))
	t.Logf("docker rm -f shown on the board in %v", took.Round(time.Millisecond))

	// The dry run ranks as POST /v1/fleet/placement does.
	avoid := fleet.Engines[0].Name
	line := "docker run -m 32m -e constraint:node!=" + avoid + " busybox"
	navigate(t, ctx, "dryrun")
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("dryrun-input"), line), chromedp.Click(chromedp.CSS(`#dryrun-form button`))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, 5*time.Second, "the ranking", `document.getElementById('dryrun-host')`)
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#dryrun-result .rank tbody tr, #dryrun-result .rejected tbody tr')].map(r => r.dataset.host)`))
	if err != nil {
		t.Fatal(err)
	}
	code, body := apiCall(t, "POST", "/v1/fleet/placement", "application/json", strings.NewReader(`{"Image":"busybox","Env":["constraint:node!=`+avoid+`"],"HostConfig":{"Memory":33554432}}`))
	var d struct {
		Hosts    []struct{ Host string }
		Rejected []struct{ Host string }
	}
	if err := json.Unmarshal([]byte(body), &d); code != 200 || err != nil {
		t.Fatalf("POST /v1/fleet/placement: %d %s", code, body)
	}
	var want []string
	for _, h := range d.Hosts {
		want = append(want, h.Host)
	}
	for _, h := range d.Rejected {
		want = append(want, h.Host)
	}
	if strings.Join(shown, ",") != strings.Join(want, ",") || len(d.Rejected) != 1 || d.Rejected[0].Host != avoid {
		t.Fatalf("the page ranks %v, the API %v (rejected %v)", shown, want, d.Rejected)
	}
	screenshot(t, ctx, "dryrun")
	// Every view so far loaded and acted with no console error (the bad
	// line's 400 below is logged by the browser as one).
	ctx.noErrors(t)

	// A bad line: a readable error, nothing made.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("dryrun-input"), "docker run --frobnicate busybox"), chromedp.Click(chromedp.CSS(`#dryrun-form button`))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, 5*time.Second, "the error", `document.getElementById('dryrun-error').textContent.includes('unknown or unsupported option --frobnicate')`)

	// The networks view lists a per-host network with its host and the
	// container that joined it there.
	t.Cleanup(func() { docker(t, nil, "network", "rm", "wc-local") })
	cleanup(t, "wc-net")
	mustDocker(t, "network", "create", "-o", "clocker.scope=local", "wc-local")
	netHost := mustDocker(t, "network", "inspect", "-f", "{{.Node.Name}}", "wc-local")
	mustDocker(t, "run", "-d", "--name", "wc-net", "--network", "wc-local", "busybox", "sleep", "300")
	// And a fleet network as a graph: its two member hosts (a container
	// on each) linked, each with its slice.
	t.Cleanup(func() { docker(t, nil, "network", "rm", "wc-fleet") })
	cleanup(t, "wc-fleet-a", "wc-fleet-b")
	mustDocker(t, "network", "create", "wc-fleet")
	for i, name := range []string{"wc-fleet-a", "wc-fleet-b"} {
		mustDocker(t, "run", "-d", "--name", name, "--network", "wc-fleet", "-e", "constraint:node=="+fleet.Engines[i].Name, "busybox", "sleep", "300")
	}
	navigate(t, ctx, "networks")
	waitPage(t, ctx, 5*time.Second, "wc-local on "+netHost+" with wc-net",
		fmt.Sprintf(`[...document.querySelectorAll('#networks tr[data-local-network="wc-local"][data-host=%q] td')].some(td => td.textContent === 'wc-net')`, netHost))
	waitPage(t, ctx, 5*time.Second, "wc-fleet's graph: two member hosts, one link",
		fmt.Sprintf(`(g => g && g.querySelector('circle[data-host=%q]') && g.querySelector('circle[data-host=%q]') && g.querySelectorAll('line').length === 1)(document.querySelector('.net[data-network="wc-fleet"] svg'))`,
			fleet.Engines[0].Name, fleet.Engines[1].Name))
	screenshot(t, ctx, "networks")

	// Trends render.
	navigate(t, ctx, "trends")
	waitPage(t, ctx, 15*time.Second, "the trends", `document.querySelector('.trend[data-series="healthy hosts"]')`)
	screenshot(t, ctx, "trends")

	// A host whose engine is killed turns red without a reload.
	navigate(t, ctx, "fleet")
	last := len(fleet.Engines) - 1
	victim := fleet.Engines[last].Name
	waitPage(t, ctx, 10*time.Second, victim+" healthy", fmt.Sprintf(`document.querySelector('.card[data-host=%q][data-state="healthy"]')`, victim))
	kctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleet.KillEngine(kctx, victim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fleet.StartEngine(context.Background(), victim)
		waitFor(t, 30*time.Second, "host healthy again", func() bool {
			return strings.Count(docker(t, nil, "info").Stdout, "Status: Healthy") == len(fleet.Engines)
		})
	})
	took = waitPage(t, ctx, 20*time.Second, victim+" unhealthy", fmt.Sprintf(`document.querySelector('.card[data-host=%q][data-state="unhealthy"]')`, victim))
	t.Logf("a killed engine's card turned red in %v", took.Round(time.Millisecond))
	screenshot(t, ctx, "fleet-host-down")
}

// An effector invoked from the applications view acts: the entity's
// restart shows in its activity, ended without error.
func TestE2EConsoleEffector(t *testing.T) {
	plan := "name: wc-console-app\nlocation: clocker\nservices:\n- type: docker:busybox\n  id: wcweb\n  name: wcweb\n  commands: \"exec sleep 3600\"\n"
	app, startTask := brSubmit(t, plan)
	if tk := brWaitTask(t, startTask); tk["isError"] != false {
		t.Fatalf("deploy failed: %v", tk)
	}
	restarts := func() int {
		_, body := brDo(t, "GET", "/v1/applications/"+app+"/entities/wcweb/activities", "")
		var tasks []struct {
			DisplayName string
			EndTimeUtc  int64
			IsError     bool
		}
		_ = json.Unmarshal([]byte(body), &tasks)
		n := 0
		for _, tk := range tasks {
			if strings.Contains(strings.ToLower(tk.DisplayName), "restart") && tk.EndTimeUtc > 0 && !tk.IsError {
				n++
			}
		}
		return n
	}
	before := restarts()

	ctx := browser(t)
	navigate(t, ctx, "apps")
	// The tree shows entities by name (their IDs are Clocker's).
	entity := `[...document.querySelectorAll('.tree a[data-entity]')].find(a => a.textContent.trim() === 'wcweb')`
	waitPage(t, ctx, 10*time.Second, "the entity wcweb", entity)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](entity+".click()")); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, 10*time.Second, "the restart effector", `document.querySelector('form[data-effector="restart"]')`)
	screenshot(t, ctx, "apps")
	ctx.noErrors(t)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[data-effector="restart"] button`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the restart from the page ended", func() bool { return restarts() > before })
	ctx.noErrors(t)
}
