package blueprint

import "time"

// Clock is the time policies see: the wall clock in Clocker, a fake one
// in tests so stabilisation delays and failure windows are exact.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f after d; the result cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
