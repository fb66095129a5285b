package statusrec_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clocker/clocker/internal/statusrec"
)

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    int
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, 200},
		{"body only", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) }, 200},
		{"first header wins", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404); w.WriteHeader(500) }, 404},
		{"hijacked", func(w http.ResponseWriter, _ *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 101 UPGRADED\r\n\r\n"))
			c.Close()
		}, 101},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan int, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := statusrec.New(w)
				tt.handler(rec, r)
				got <- rec.Status()
			}))
			defer srv.Close()
			if resp, err := http.Get(srv.URL); err == nil {
				resp.Body.Close()
			}
			if s := <-got; s != tt.want {
				t.Errorf("status %d, want %d", s, tt.want)
			}
		})
	}
}
