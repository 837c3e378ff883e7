//go:build unix

package prober

import (
	"net"
	"syscall"
)

// probeDialer returns a dialer whose sockets linger at most 1s on close, so
// frequent probes do not fill the node with TIME_WAIT sockets (as upstream).
func probeDialer() *net.Dialer {
	return &net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			var sockErr error
			err := c.Control(func(fd uintptr) {
				sockErr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
			if err != nil {
				return err
			}
			return sockErr
		},
	}
}
