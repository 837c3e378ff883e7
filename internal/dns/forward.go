package dns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// forwarder sends the questions outside the cluster domain to the
// upstream resolvers: over UDP, again over TCP when the answer is
// truncated, trying the next upstream when one fails or times out.
type forwarder struct {
	upstreams []string
	metrics   []*upstreamMetrics // by upstream; nil ones without metrics
	udp, tcp  *dns.Client
}

var errNoUpstream = errors.New("no upstream resolver")

func newForwarder(upstreams []string, timeout time.Duration, m *metrics) *forwarder {
	um := make([]*upstreamMetrics, len(upstreams))
	for i, up := range upstreams {
		um[i] = m.forUpstream(up)
	}
	return &forwarder{
		upstreams: upstreams,
		metrics:   um,
		// UDPSize lets a large answer of an upstream through whatever the
		// client asked for; the handler truncates it to the client's size.
		udp: &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.DefaultMsgSize},
		tcp: &dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// exchange returns the first upstream's answer to m, whatever its rcode;
// an error only when no upstream answered.
func (f *forwarder) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errNoUpstream
	}
	var errs []error
	for i, up := range f.upstreams {
		start := time.Now()
		resp, _, err := f.udp.ExchangeContext(ctx, m, up)
		if err == nil && resp.Truncated {
			resp, _, err = f.tcp.ExchangeContext(ctx, m, up)
		}
		if err == nil {
			f.metrics[i].answered(resp.Rcode, time.Since(start))
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("upstream %s: %w", up, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
