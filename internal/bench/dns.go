package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/kubernetes"

	skiffdns "github.com/skiff-io/skiff/internal/dns"
)

// DNSConfig is `skiff bench dns`'s configuration.
type DNSConfig struct {
	// Clients query at once, each one query at a time on its own UDP
	// socket.
	Clients int
	// Duration is how long each name is queried.
	Duration time.Duration
}

// DNS starts a server (no controllers, no agent) on a temp dir and the
// cluster DNS against it on 127.0.0.1, with a fake upstream resolver on
// 127.0.0.1 for forwarded names, then measures queries per second and
// latency for a cluster name, a miss of the search path (NXDOMAIN) and a
// forwarded name. Everything runs in this process and shares its CPUs.
func DNS(ctx context.Context, cfg DNSConfig, out io.Writer) error {
	if cfg.Clients <= 0 {
		cfg.Clients = 1
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	dir, err := os.MkdirTemp("", "skiff-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rc, _, stopServer, err := startServer(ctx, dir)
	if err != nil {
		return err
	}
	defer stopServer()
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if err := waitServerReady(ctx, client); err != nil {
		return err
	}

	upstream, stopUpstream, err := startFakeUpstream()
	if err != nil {
		return fmt.Errorf("fake upstream: %w", err)
	}
	defer stopUpstream()

	s, err := skiffdns.New(skiffdns.Config{Addrs: []string{"127.0.0.1:0"}, Upstreams: []string{upstream}, Client: client})
	if err != nil {
		return err
	}
	dnsCtx, stopDNS := context.WithCancel(ctx)
	dnsDone := make(chan error, 1)
	go func() { dnsDone <- s.Start(dnsCtx) }()
	defer func() { stopDNS(); <-dnsDone }()
	select {
	case <-s.Ready():
	case err := <-dnsDone:
		return fmt.Errorf("dns: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	addr := s.Addrs()[0]

	cases := []struct{ what, name string }{
		{"cluster name (A)", "kubernetes.default.svc.cluster.local."},
		{"search-path miss (NXDOMAIN)", "example.org.default.svc.cluster.local."},
		{"forwarded (fake upstream)", "example.org."},
	}
	// The bootstrap objects may lag the server's readiness a little.
	if err := waitAnswer(ctx, addr, cases[0].name); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d clients, %v per name, server on %s\n", cfg.Clients, cfg.Duration, addr)
	fmt.Fprintf(out, "%-30s %9s %9s %9s %9s %7s\n", "query", "queries", "qps", "p50", "p99", "errors")
	for _, c := range cases {
		r, err := hammer(ctx, addr, c.name, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-30s %9d %9.0f %9v %9v %7d\n", c.what, len(r.latencies), float64(len(r.latencies))/r.elapsed.Seconds(),
			percentile(r.latencies, 0.50), percentile(r.latencies, 0.99), r.errors)
	}
	return nil
}

type dnsResult struct {
	latencies []time.Duration
	errors    int
	elapsed   time.Duration
}

// hammer queries name from cfg.Clients goroutines for cfg.Duration.
func hammer(ctx context.Context, addr, name string, cfg DNSConfig) (dnsResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu  sync.Mutex
		res dnsResult
		wg  sync.WaitGroup
	)
	began := time.Now()
	errs := make(chan error, cfg.Clients)
	for range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			conn, err := c.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer func() { conn.Close() }()
			var lat []time.Duration
			failed := 0
			m := new(dns.Msg).SetQuestion(name, dns.TypeA)
			for ctx.Err() == nil {
				m.Id = dns.Id()
				t0 := time.Now()
				resp, _, err := c.ExchangeWithConn(m, conn)
				if err != nil || resp.Rcode == dns.RcodeServerFailure {
					failed++
					if err != nil { // a timed-out socket may hold a late answer: start afresh
						conn.Close()
						if conn, err = c.Dial(addr); err != nil {
							errs <- err
							return
						}
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.errors += failed
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(began)
	select {
	case err := <-errs:
		return res, err
	default:
	}
	slices.Sort(res.latencies)
	return res, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i].Round(time.Microsecond)
}

func waitAnswer(ctx context.Context, addr, name string) error {
	c := &dns.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
		if err == nil && len(resp.Answer) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answered after 30s (last: %v)", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startFakeUpstream serves every A question with 198.51.100.1 (TEST-NET-2)
// on a UDP port of 127.0.0.1: forwarded queries never leave the machine.
func startFakeUpstream() (addr string, stop func(), err error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(198, 51, 100, 1)}}
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-done:
		return "", nil, fmt.Errorf("serving on %s failed", pc.LocalAddr())
	}
	return pc.LocalAddr().String(), func() { _ = srv.Shutdown(); <-done }, nil
}
