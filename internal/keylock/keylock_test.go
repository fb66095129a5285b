package keylock

import (
	"testing"
	"time"
)

func TestMap(t *testing.T) {
	var k Map
	unlockA := k.Lock("a")
	unlockB := k.Lock("b") // another key does not wait
	done := make(chan struct{})
	go func() {
		k.Lock("a")()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a second lock of a key did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	<-done
	unlockB()
	if n := k.Len(); n != 0 {
		t.Errorf("%d keys left", n)
	}
}
