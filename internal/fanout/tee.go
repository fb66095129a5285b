package fanout

import (
	"io"
	"sync"
	"sync/atomic"
)

// teeChunk and teeQueue size the copy to each writer: a writer may fall
// this many chunks behind the fastest before the copy waits for it.
const (
	teeChunk = 256 << 10
	teeQueue = 16
)

// Tee copies src to every writer (one per host of a docker load), each fed
// by its own goroutine from a bounded queue, so that a host that is slow
// for a moment does not hold the others back. A writer whose reader
// stopped is dropped and the others go on, until none is left. The
// writers are closed at the end (with src's error, if any).
func Tee(src io.Reader, dsts []*io.PipeWriter) {
	queues := make([]chan []byte, len(dsts))
	dead := make([]atomic.Bool, len(dsts))
	var wg sync.WaitGroup
	for i, pw := range dsts {
		queues[i] = make(chan []byte, teeQueue)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range queues[i] {
				if dead[i].Load() {
					continue // drain
				}
				if _, err := pw.Write(chunk); err != nil {
					dead[i].Store(true)
				}
			}
		}()
	}
	var rerr error
	for {
		buf := make([]byte, teeChunk)
		n, err := src.Read(buf)
		if n > 0 {
			live := 0
			for i, q := range queues {
				if !dead[i].Load() {
					q <- buf[:n]
					live++
				}
			}
			if live == 0 {
				break
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	for _, pw := range dsts {
		_ = pw.CloseWithError(rerr)
	}
}
