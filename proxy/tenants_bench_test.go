package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/tenant"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/scheduler"
)

// BenchmarkTenantsList is `docker ps -a` with 1,000 running containers of
// 10 tenants on two fake engines, through the whole handler:
//
//	off        tenants off: the caller lists all 1,000
//	off-owner  tenants off, filtered on one tenant's owner label (the
//	           same 100 containers a tenant lists)
//	on         tenants on: one tenant lists its own 100 (names mapped)
//	on-admin   tenants on, an admin: all 1,000
//
// each uncached (a distinct query per call: the list memo misses) and
// memo (the same query: the answer kept while nothing changes).
//
//	go test -run '^$' -bench TenantsList -benchtime 2s ./proxy/
func BenchmarkTenantsList(b *testing.B) {
	const engines, perEngine, tenants = 2, 500, 10
	log := testLogger()
	fleet := hosts.NewFleet(nil, log, hosts.NewMetrics(prometheus.NewRegistry()))
	defer fleet.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	for i := range engines {
		e := fakeengine.New(fakeengine.Options{Name: fmt.Sprintf("h%d", i), Images: []string{"busybox"}})
		for range perEngine {
			who := tenant.New("t" + strconv.Itoa(n%tenants))
			if _, err := e.Create(fakeengine.Spec{Name: who.EngineName("c" + strconv.Itoa(n)), Image: "busybox",
				Labels: map[string]string{labels.Owner: who.Name, "app": "x"}, Running: true}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		s, err := fakeengine.Listen(e, "tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := fleet.Add(ctx, hosts.Record{Name: fmt.Sprintf("h%d", i), URL: s.URL}, false); err != nil {
			b.Fatal(err)
		}
	}
	if err := fleet.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	strategy, _ := scheduler.New("spread")
	h := proxy.NewServer(fleet, strategy, log, 1<<20, nil).Handler()
	owner := filtersQuery(map[string][]string{"label": {labels.Owner + "=t3"}})
	for _, c := range []struct {
		name, query string
		who         string
		want        int
	}{
		{"off", "", "", 1000},
		{"off-owner", "&filters=" + owner, "", 100},
		{"on", "", "t3", 100},
		{"on-admin", "", "", 1000},
	} {
		for _, memo := range []bool{false, true} {
			name := c.name + "/uncached"
			if memo {
				name = c.name + "/memo"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				if c.who != "" {
					ctx = tenant.NewContext(ctx, tenant.New(c.who))
				}
				i := 0
				list := func() *httptest.ResponseRecorder {
					q := "/v1.41/containers/json?all=1" + c.query
					if !memo {
						i++
						q += "&n=" + strconv.Itoa(i)
					}
					req := httptest.NewRequest(http.MethodGet, q, nil).WithContext(ctx)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					return w
				}
				if w := list(); w.Code != 200 || countEntries(w.Body.Bytes()) != c.want {
					b.Fatalf("%d: %d entries, want %d", w.Code, countEntries(w.Body.Bytes()), c.want)
				}
				b.ResetTimer()
				for range b.N {
					list()
				}
			})
		}
	}
}

func countEntries(body []byte) int {
	var out []struct{ Id string }
	if err := json.Unmarshal(body, &out); err != nil {
		return -1
	}
	return len(out)
}
