package resourcemetrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const (
	defaultInterval    = 15 * time.Second
	defaultParallelism = 64
	maxTimeout         = 10 * time.Second
	// minStartWindow is the shortest time between a container's start and
	// its reading for the start to stand in as an earlier reading (see
	// startWindow). metrics-server uses 10s; see doc.go.
	minStartWindow = 5 * time.Second
)

// Scraper fills a Store by scraping every node's kubelet every Interval.
//
// Set the exported fields before the first call to Run or ScrapeOnce and
// do not change them afterwards.
type Scraper struct {
	Store *Store
	// Nodes returns the nodes to scrape now (the caller passes only Ready
	// nodes it knows the address of). Nodes absent from its answer are
	// dropped from the Store. When it fails, the pass scrapes nothing and
	// nodes leave the Store as their data goes stale.
	Nodes func(ctx context.Context) ([]*corev1.Node, error)
	// Fetch GETs /metrics/resource from node's kubelet; the caller supplies
	// TLS and addresses. The body must stop blocking when ctx ends (an
	// http.Response body does), and is closed by the Scraper. An error
	// status must be an error, not a body.
	Fetch func(ctx context.Context, node *corev1.Node) (io.ReadCloser, error)
	// Interval between passes, default 15s. A node's readings are dropped
	// after two intervals without a successful scrape.
	Interval time.Duration
	// Timeout for one node's scrape, fetch and read, default
	// min(10s, Interval*9/10).
	Timeout time.Duration
	// Parallelism is how many nodes are scraped at once, default 64.
	Parallelism int
	// Log receives a warning when a node starts failing and a notice when
	// it recovers; default slog.Default().
	Log *slog.Logger
	// Now returns the time, default time.Now. Tests set it. It stamps
	// samples that carry no timestamp and measures staleness.
	Now func() time.Time

	mu           sync.Mutex // held for a whole pass; guards the fields below
	nodes        map[string]*nodeState
	nodesFailing bool
}

// parsers are shared by the passes' workers; a parser holds a 64 KiB line
// buffer, which the pool lets go between passes when memory is short.
var parsers = sync.Pool{New: func() any { return newParser() }}

var errNotConfigured = errors.New("resourcemetrics: Scraper needs Store, Nodes and Fetch")

// Run scrapes at once and then every Interval until ctx ends; it returns
// after its goroutines exited. It returns nil when ctx ends, and an error
// only when the Scraper lacks Store, Nodes or Fetch.
func (s *Scraper) Run(ctx context.Context) error {
	if s.Store == nil || s.Nodes == nil || s.Fetch == nil {
		return errNotConfigured
	}
	s.ScrapeOnce(ctx)
	t := time.NewTicker(s.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.ScrapeOnce(ctx)
		}
	}
}

// ScrapeOnce scrapes every node once (tests, benchmarks), then publishes
// the result to the Store. It returns when every scrape has finished;
// concurrent calls run one after the other. When ctx ends during the
// pass, the Store is left as it was.
func (s *Scraper) ScrapeOnce(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.log()
	if s.Store == nil || s.Nodes == nil || s.Fetch == nil {
		log.Error("resource metrics scraper not configured", "err", errNotConfigured)
		return
	}
	interval := s.interval()
	staleAfter := 2 * interval

	list, err := s.Nodes(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if !s.nodesFailing {
			log.Warn("list nodes for resource metrics failed", "err", err)
			s.nodesFailing = true
		}
		now := s.now()
		kept := make([]*nodeState, 0, len(s.nodes))
		for _, n := range s.nodes {
			if now.Sub(n.lastSuccess) > staleAfter {
				n.pub = published{}
				n.forget()
			}
			kept = append(kept, n)
		}
		s.Store.replace(kept)
		return
	}
	if s.nodesFailing {
		log.Info("list nodes for resource metrics recovered")
		s.nodesFailing = false
	}

	type job struct {
		node  *corev1.Node
		state *nodeState
	}
	jobs := make([]job, 0, len(list))
	states := make([]*nodeState, 0, len(list))
	next := make(map[string]*nodeState, len(list))
	for _, node := range list {
		if node == nil || node.Name == "" {
			continue
		}
		if _, dup := next[node.Name]; dup {
			continue
		}
		n := s.nodes[node.Name]
		if n == nil {
			n = &nodeState{name: node.Name}
		}
		next[node.Name] = n
		jobs = append(jobs, job{node, n})
		states = append(states, n)
	}
	s.nodes = next // nodes no longer listed are forgotten

	cfg := scrapeConfig{
		timeout:    s.timeout(interval),
		staleAfter: staleAfter,
		window:     startWindow{min: min(minStartWindow, interval/2), max: 2 * interval},
		log:        log,
	}
	var (
		wg     sync.WaitGroup
		cursor atomic.Int64
	)
	for range min(s.parallelism(), len(jobs)) {
		wg.Go(func() {
			p := parsers.Get().(*parser)
			defer parsers.Put(p)
			for {
				i := int(cursor.Add(1) - 1)
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				s.scrapeNode(ctx, p, jobs[i].node, jobs[i].state, cfg)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	s.Store.replace(states)
}

type scrapeConfig struct {
	timeout    time.Duration
	staleAfter time.Duration
	window     startWindow
	log        *slog.Logger
}

// scrapeNode scrapes one node and updates its state. A failure is logged
// when the node starts failing and when it recovers, not at every pass.
func (s *Scraper) scrapeNode(ctx context.Context, p *parser, node *corev1.Node, n *nodeState, cfg scrapeConfig) {
	err := s.read(ctx, p, node, n, cfg.timeout)
	if ctx.Err() != nil {
		return // shutting down: this is no news about the node
	}
	now := s.now()
	if err != nil {
		n.pub = published{}
		if !n.failing {
			cfg.log.Warn("scrape kubelet resource metrics failed", "node", n.name, "err", err)
			n.failing = true
		} else {
			cfg.log.Debug("scrape kubelet resource metrics failed", "node", n.name, "err", err)
		}
		if now.Sub(n.lastSuccess) > cfg.staleAfter {
			n.forget()
		}
		return
	}
	if n.failing {
		cfg.log.Info("scrape kubelet resource metrics recovered", "node", n.name)
		n.failing = false
	}
	n.lastSuccess = now
	p.scratch = n.apply(&p.out, cfg.window, p.scratch)
}

// read fetches and parses one node's metrics into p.out.
func (s *Scraper) read(ctx context.Context, p *parser, node *corev1.Node, n *nodeState, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := s.Fetch(ctx, node)
	if err != nil {
		return err
	}
	defer body.Close()
	p.known = n.containers
	err = p.parse(body, s.now())
	p.known = nil
	return err
}

func (s *Scraper) interval() time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	return defaultInterval
}

func (s *Scraper) timeout(interval time.Duration) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return min(maxTimeout, interval*9/10)
}

func (s *Scraper) parallelism() int {
	if s.Parallelism > 0 {
		return s.Parallelism
	}
	return defaultParallelism
}

func (s *Scraper) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Scraper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
