package prober

import (
	"context"
	"net"
	"strconv"
	"time"
)

// tcp runs a tcpSocket probe: success when a connection opens within
// timeout, otherwise a failure carrying the dial error
// ("dial tcp 10.42.0.5:81: connect: connection refused").
func (p *prober) tcp(ctx context.Context, host string, port int, timeout time.Duration) (outcome, string, error) {
	d := probeDialer()
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	_ = conn.Close() // the probe succeeded; a close error changes nothing
	return outcomeSuccess, "", nil
}
