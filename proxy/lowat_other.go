//go:build !linux

package proxy

import "net"

// setReadLowWater is a no-op where SO_RCVLOWAT is not known.
func setReadLowWater(net.Conn, int) {}
