//go:build !unix

package prober

import "net"

// probeDialer returns a plain dialer where SO_LINGER is not available.
func probeDialer() *net.Dialer { return &net.Dialer{} }
