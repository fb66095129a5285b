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
	var running, most atomic.Int32
	rs := Each(items, func(n int) (string, error) {
		now := running.Add(1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
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
	if most.Load() != int32(len(items)) {
		t.Errorf("at most %d ran at once, want all %d", most.Load(), len(items))
	}
	if err := FirstError(rs); err == nil || err.Error() != "four" {
		t.Errorf("FirstError = %v", err)
	}
}

func TestLimitBoundsConcurrency(t *testing.T) {
	var running, most atomic.Int32
	Limit(make([]int, 20), 3, func(int) (struct{}, error) {
		now := running.Add(1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return struct{}{}, nil
	})
	if m := most.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d at once, want 3", m)
	}
}
