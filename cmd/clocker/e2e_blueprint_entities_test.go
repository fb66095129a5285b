//go:build e2e

package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fetchFresh GETs url on a new connection each time (a TCP balancer
// picks its upstream per connection).
func fetchFresh(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), err
}

// engineOf is the index of the engine holding container id.
func engineOf(t *testing.T, id string) int {
	t.Helper()
	for i := range fleet.Engines {
		if strings.TrimSpace(engineDocker(t, i, "ps", "-aq", "--no-trunc", "--filter", "id="+id)) != "" {
			return i
		}
	}
	t.Fatalf("container %s on no engine", id)
	return -1
}

// TestE2EBlueprintSoftwareProcess: a VanillaSoftwareProcess's install,
// customize and launch commands run in a busybox container with its
// shell.env; it serves through its main.uri; checkRunning is polled, so
// killing the server inside puts it on fire.
func TestE2EBlueprintSoftwareProcess(t *testing.T) {
	app := brDeploy(t, `name: proc
services:
- type: org.apache.brooklyn.entity.software.base.VanillaSoftwareProcess
  id: web
  install.command: mkdir -p /www
  customize.command: echo "$GREETING" > /www/index.html
  launch.command: httpd -p 8080 -h /www
  checkRunning.command: wget -q -O /dev/null http://127.0.0.1:8080/
  stop.command: killall httpd
  shell.env:
    GREETING: hello-from-process
  openPorts: [ 8080 ]
`)
	if got := brSensor(t, app, "web", "service.isUp"); got != true {
		t.Fatalf("isUp %v", got)
	}
	uri, _ := brSensor(t, app, "web", "main.uri").(string)
	var got string
	brEventually(t, "the process serves its page at "+uri, func() bool {
		got, _ = fetchFresh(uri)
		return got == "hello-from-process"
	})
	id := fmt.Sprint(brSensor(t, app, "web", "docker.container.id"))
	engineDocker(t, engineOf(t, id), "exec", id, "killall", "httpd")
	brEventually(t, "checkRunning fails: on fire", func() bool {
		return brSensor(t, app, "web", "service.state") == "on-fire" && brSensor(t, app, "web", "service.isUp") == false
	})
}

// TestE2EBlueprintWebCluster: a ControlledDynamicWebAppCluster's
// controller balances over its members on other hosts (each answers its
// own name); resizing the web cluster to 3 adds the new member to the
// rotation without the controller's address changing.
func TestE2EBlueprintWebCluster(t *testing.T) {
	app := brDeploy(t, `name: shop
services:
- type: org.apache.brooklyn.entity.webapp.ControlledDynamicWebAppCluster
  id: web
  initialSize: 2
  memberSpec:
    $brooklyn:entitySpec:
      type: docker:busybox
      openPorts: [ 8080 ]
      commands: "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"
`)
	uri, _ := brSensor(t, app, "web", "main.uri").(string)
	if uri == "" || brSensor(t, app, "web", "webapp.url") != uri {
		t.Fatalf("main.uri %q, webapp.url %v", uri, brSensor(t, app, "web", "webapp.url"))
	}
	seen := func(want int) {
		t.Helper()
		names := map[string]bool{}
		brEventually(t, fmt.Sprintf("%d members answer through %s", want, uri), func() bool {
			for range 2 * want {
				if s, err := fetchFresh(uri); err == nil && s != "" {
					names[s] = true
				}
			}
			return len(names) == want
		})
	}
	seen(2)
	code, body := apiCallHeader(t, "POST", "/v1/applications/"+app+"/entities/web/effectors/resize", brForm(), strings.NewReader("desiredSize=3"))
	if code != 200 || strings.TrimSpace(body) != "3" {
		t.Fatalf("resize: %d %s", code, body)
	}
	if got := brSensor(t, app, "web", "group.members.count"); got != float64(3) {
		t.Errorf("group.members.count %v", got)
	}
	if got := brSensor(t, app, "web", "main.uri"); got != uri {
		t.Errorf("main.uri moved to %v", got)
	}
	seen(3)
}

// TestE2EBlueprintVirtualNetwork: a VirtualNetwork with a subnet is made
// across the fleet; two containers on different hosts join it beside
// their application's network and reach each other on it; DELETE removes
// it from every engine.
func TestE2EBlueprintVirtualNetwork(t *testing.T) {
	net := fmt.Sprintf("bpnet%d", time.Now().UnixNano()%1e6)
	app := brDeploy(t, fmt.Sprintf(`name: nets
services:
- type: brooklyn.networking.VirtualNetwork
  id: data
  networkId: %s
  cidr: 10.241.9.0/24
- type: docker:busybox
  id: a
  network.list: [ %s ]
  env: { "constraint:node": "=%s" }
  commands: "mkdir -p /www && echo net-ok > /www/index.html && exec httpd -f -p 8000 -h /www"
- type: docker:busybox
  id: b
  network.list: [ %s ]
  env: { "constraint:node": "=%s" }
  commands: sleep 3600
`, net, net, fnHost(0), net, fnHost(1)))
	if got := brSensor(t, app, "data", "network.cidr"); got != "10.241.9.0/24" {
		t.Errorf("network.cidr %v", got)
	}
	aID := fmt.Sprint(brSensor(t, app, "a", "docker.container.id"))
	bID := fmt.Sprint(brSensor(t, app, "b", "docker.container.id"))
	ip := strings.TrimSpace(engineDocker(t, 0, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+net+"\").IPAddress}}", aID))
	if !strings.HasPrefix(ip, "10.241.9.") {
		t.Fatalf("a's address on %s: %q", net, ip)
	}
	if nets := engineDocker(t, 0, "inspect", "-f", "{{len .NetworkSettings.Networks}}", aID); strings.TrimSpace(nets) != "2" {
		t.Errorf("a is on %s networks, want its application's and %s", nets, net)
	}
	var got string
	brEventually(t, "b reaches a on "+net, func() bool {
		got = engineDocker(t, 1, "exec", bID, "sh", "-c", "timeout 5 wget -q -O- http://"+ip+":8000/ || true")
		return strings.TrimSpace(got) == "net-ok"
	})
	code, body := brDo(t, "DELETE", "/v1/applications/"+app, "")
	if code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	brEventually(t, "the network gone from every engine", func() bool {
		for i := range fleet.Engines {
			if strings.TrimSpace(engineDocker(t, i, "network", "ls", "-q", "--filter", "name=^"+net+"$")) != "" {
				return false
			}
		}
		return true
	})
}

// TestE2EBlueprintAutoScaler: members burning CPU (a busy loop while
// /tmp/load exists, then asleep) grow the cluster through AutoScalerPolicy up to
// maxPoolSize, never beyond; with the load off it shrinks back to
// minPoolSize. The bounds are low (percent of one core): on a shared
// 2-core machine a busy loop may get a small share, a sleeping member
// none.
func TestE2EBlueprintAutoScaler(t *testing.T) {
	app := brDeploy(t, `name: scaled
services:
- type: org.apache.brooklyn.entity.group.DynamicCluster
  id: workers
  initialSize: 1
  memberSpec:
    $brooklyn:entitySpec:
      type: docker:busybox
      commands: "touch /tmp/load; while [ -e /tmp/load ]; do :; done; exec sleep 3600"
  brooklyn.policies:
  - type: org.apache.brooklyn.policy.autoscaling.AutoScalerPolicy
    brooklyn.config:
      metric: docker.cpu.percent
      metricUpperBound: 3
      metricLowerBound: 0.5
      minPoolSize: 1
      maxPoolSize: 3
      resizeUpStabilizationDelay: 2s
      resizeDownStabilizationDelay: 3s
`)
	most := 0
	count := func() int {
		n := int(brSensor(t, app, "workers", "group.members.count").(float64))
		most = max(most, n)
		return n
	}
	t.Cleanup(func() {
		if t.Failed() {
			members, _ := brSensor(t, app, "workers", "group.members").([]any)
			for _, m := range members {
				_, body := brDo(t, "GET", "/v1/applications/"+app+"/entities/"+fmt.Sprint(m)+"/sensors/current-state", "")
				t.Logf("member %v: %s", m, body)
			}
			_, body := brDo(t, "GET", "/v1/applications/"+app+"/entities/workers/sensors/current-state", "")
			t.Logf("cluster: %s", body)
		}
	})
	brEventually(t, "the cluster grows to maxPoolSize 3 under load", func() bool { return count() == 3 })
	// Hold a few stats rounds at the top: it must not pass the bound.
	for range 5 {
		count()
		time.Sleep(time.Second)
	}
	if most > 3 {
		t.Fatalf("grew to %d, above maxPoolSize 3", most)
	}
	members, _ := brSensor(t, app, "workers", "group.members").([]any)
	for _, m := range members {
		id := fmt.Sprint(brSensor(t, app, fmt.Sprint(m), "docker.container.id"))
		engineDocker(t, engineOf(t, id), "exec", id, "rm", "-f", "/tmp/load")
	}
	brEventually(t, "the cluster shrinks back to minPoolSize 1", func() bool { return count() == 1 })
	if most > 3 {
		t.Errorf("reached %d members, above maxPoolSize 3", most)
	}
	if got := brSensor(t, app, "workers", "service.isUp"); got != true {
		t.Errorf("cluster isUp %v", got)
	}
}
