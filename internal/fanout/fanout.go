// Package fanout runs one call per item at once and gathers the results
// in the items' order: the shape of every "ask each host" in Clocker
// (image lists, df, volumes and networks, event streams, image presence).
package fanout

import "sync"

// Result is one item's answer.
type Result[R any] struct {
	Value R
	Err   error
}

// Each calls fn for every item at once and returns the answers in the
// items' order, once all have returned.
func Each[T, R any](items []T, fn func(T) (R, error)) []Result[R] {
	return Limit(items, 0, fn)
}

// Limit is Each with at most width calls at a time (0: no limit).
func Limit[T, R any](items []T, width int, fn func(T) (R, error)) []Result[R] {
	out := make([]Result[R], len(items))
	if len(items) == 1 {
		out[0].Value, out[0].Err = fn(items[0])
		return out
	}
	var sem chan struct{}
	if width > 0 && width < len(items) {
		sem = make(chan struct{}, width)
	}
	var wg sync.WaitGroup
	for i, it := range items {
		if sem != nil {
			sem <- struct{}{}
		}
		wg.Go(func() {
			out[i].Value, out[i].Err = fn(it)
			if sem != nil {
				<-sem
			}
		})
	}
	wg.Wait()
	return out
}

// FirstError is the first item's error in the items' order, or nil.
func FirstError[R any](rs []Result[R]) error {
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// FirstThenRest runs fn on the first item alone and, once it succeeded,
// on the others at once: a request every engine checks the same way is
// refused by the first and changes nothing anywhere. The error is the
// first in the items' order.
func FirstThenRest[T any](items []T, fn func(i int, it T) error) error {
	if len(items) == 0 {
		return nil
	}
	if err := fn(0, items[0]); err != nil {
		return err
	}
	rest := make([]int, len(items)-1)
	for i := range rest {
		rest[i] = i + 1
	}
	return FirstError(Each(rest, func(i int) (struct{}, error) { return struct{}{}, fn(i, items[i]) }))
}
