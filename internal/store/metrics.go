package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrumented wraps s so that every operation's duration is observed as
// clocker_store_seconds{op, result} on reg (result: ok, conflict,
// unavailable, error; a missing key is ok).
func Instrumented(s Store, reg prometheus.Registerer) Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "clocker", Subsystem: "store", Name: "seconds",
		Help:    "Duration of state store operations (bbolt or etcd), by operation and result.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"op", "result"})
	if reg != nil {
		reg.MustRegister(h)
	}
	return &instrumented{Store: s, h: h}
}

type instrumented struct {
	Store
	h *prometheus.HistogramVec
}

func (m *instrumented) observe(op string, start time.Time, err error) error {
	result := "ok"
	switch {
	case err == nil, isNotFound(err):
	case isConflict(err):
		result = "conflict"
	case IsUnavailable(err):
		result = "unavailable"
	default:
		result = "error"
	}
	m.h.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
	return err
}

func (m *instrumented) Put(b []byte, k string, v any) error {
	start := time.Now()
	return m.observe("put", start, m.Store.Put(b, k, v))
}

func (m *instrumented) Get(b []byte, k string, v any) error {
	start := time.Now()
	return m.observe("get", start, m.Store.Get(b, k, v))
}

func (m *instrumented) Create(b []byte, k string, v any) error {
	start := time.Now()
	return m.observe("create", start, m.Store.Create(b, k, v))
}

func (m *instrumented) Delete(b []byte, k string) error {
	start := time.Now()
	return m.observe("delete", start, m.Store.Delete(b, k))
}

func (m *instrumented) ForEach(b []byte, fn func(string, []byte) error) error {
	start := time.Now()
	return m.observe("foreach", start, m.Store.ForEach(b, fn))
}

// Unwrap is the store under the instruments.
func (m *instrumented) Unwrap() Store { return m.Store }
