//go:build !linux

package ingress

import (
	"errors"
	"log/slog"
	"net"
)

// KernelOptions configure NewKernel.
type KernelOptions struct {
	Instance string
	Fallback *Forwarder
	Log      *slog.Logger
}

// NewKernel fails: kernel forwarding needs Linux and iptables.
func NewKernel(net.IP, KernelOptions) (Forwards, error) {
	return nil, errors.New("kernel forwarding needs Linux")
}
