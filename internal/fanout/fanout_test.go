package fanout

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachKeepsOrderAndRunsAtOnce(t *testing.T) {
	items := []int{5, 1, 4, 2, 3}
	// Every call waits until all have started: that ends only if all run
	// at once (no timing involved).
	all := newBarrier(len(items))
	rs := Each(items, func(n int) (string, error) {
		if !all.arrive() {
			return "", errors.New("not all calls ran at once")
		}
		if n == 4 {
			return "", errors.New("four")
		}
		return fmt.Sprint(n * 10), nil
	})
	for i, n := range items {
		if n == 4 {
			if rs[i].Err == nil {
				t.Errorf("item %d: no error", i)
			}
			continue
		}
		if rs[i].Value != fmt.Sprint(n*10) || rs[i].Err != nil {
			t.Errorf("item %d: %+v", i, rs[i])
		}
	}
	if err := FirstError(rs); err == nil || err.Error() != "four" {
		t.Errorf("FirstError = %v", err)
	}
}

func TestLimitBoundsConcurrency(t *testing.T) {
	var running, most, started atomic.Int32
	// The first three wait for each other: three do run at once.
	first := newBarrier(3)
	rs := Limit(make([]int, 20), 3, func(int) (struct{}, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		if started.Add(1) <= 3 && !first.arrive() {
			return struct{}{}, errors.New("the first three did not run at once")
		}
		return struct{}{}, nil
	})
	if err := FirstError(rs); err != nil {
		t.Error(err)
	}
	if m := most.Load(); m != 3 {
		t.Errorf("at most %d at once, want 3", m)
	}
}

func TestFirstThenRest(t *testing.T) {
	hs := []string{"h1", "h2", "h3"}
	tests := []struct {
		name      string
		failOn    map[string]error
		wantCalls int32
		wantErr   string
	}{
		{name: "all succeed", wantCalls: 3},
		{name: "first refuses: nobody else is asked", failOn: map[string]error{"h1": errors.New("bad input")}, wantCalls: 1, wantErr: "bad input"},
		{name: "later failures: the first in host order", failOn: map[string]error{"h2": errors.New("two"), "h3": errors.New("three")}, wantCalls: 3, wantErr: "two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			err := FirstThenRest(hs, func(i int, h string) error {
				calls.Add(1)
				return tt.failOn[h]
			})
			if calls.Load() != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.wantCalls)
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("error %q, want %q", got, tt.wantErr)
			}
		})
	}
}

// barrier lets n callers through once all n have arrived.
type barrier struct {
	n       atomic.Int32
	arrived chan struct{}
}

func newBarrier(n int) *barrier {
	b := &barrier{arrived: make(chan struct{})}
	b.n.Store(int32(n))
	return b
}

// arrive waits for the others; false when they did not come within a
// time no scheduler takes (the function under test held them back).
func (b *barrier) arrive() bool {
	if b.n.Add(-1) == 0 {
		close(b.arrived)
	}
	select {
	case <-b.arrived:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}
