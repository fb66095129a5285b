package proxy

import (
	"net"
	"syscall"
)

// setReadLowWater asks the kernel to wake readers of a TCP connection only
// once n bytes are queued (or the peer closed): SO_RCVLOWAT.
func setReadLowWater(c net.Conn, n int) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
}
