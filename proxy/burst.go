package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// Output streams (attach, exec, logs --follow) are mostly quiet or mostly
// a torrent. Woken for every piece the engine writes, the relay spent
// most of its CPU on scheduling (about 1 s per 200 MB), CPU the engine
// needed on a small host. burstCopy reads quiet streams piece by piece
// and, once a stream runs hot, lets the kernel gather burstLowWater bytes
// per wake-up (SO_RCVLOWAT), with a read deadline so that what trickles in
// below the mark waits at most burstWait.
const (
	burstThreshold = 32 << 10  // a read this big means the stream runs hot
	burstLowWater  = 256 << 10 // bytes per wake-up while hot
	burstWait      = 2 * time.Millisecond
)

// copyOutput relays an engine's output to the client: what the reader
// already holds, then the connection itself.
func copyOutput(dst io.Writer, buffered *bufio.Reader, src net.Conn) (int64, error) {
	var early int64
	if n := buffered.Buffered(); n > 0 {
		b, _ := buffered.Peek(n)
		m, err := dst.Write(b)
		early = int64(m)
		if err != nil {
			return early, err
		}
		_, _ = buffered.Discard(n)
	}
	n, err := burstCopy(dst, src)
	return early + n, err
}

// burstCopy copies src to dst until src ends, batching wake-ups while
// the stream runs hot (see above). Non-TCP sources are copied as they are.
func burstCopy(dst io.Writer, src net.Conn) (int64, error) {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return io.Copy(dst, src)
	}
	buf := make([]byte, 2*burstLowWater)
	hot := false
	cool := func() {
		hot = false
		setReadLowWater(tc, 1)
		_ = tc.SetReadDeadline(time.Time{})
	}
	defer cool()
	var written int64
	for {
		if hot {
			_ = tc.SetReadDeadline(time.Now().Add(burstWait))
		}
		n, err := tc.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		switch {
		case err == nil:
			if !hot && n >= burstThreshold {
				hot = true
				setReadLowWater(tc, burstLowWater)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Nothing reached the mark in burstWait: quiet again. The next
			// read takes what is queued below the mark at once.
			cool()
		case err == io.EOF:
			return written, nil
		default:
			return written, err
		}
	}
}
