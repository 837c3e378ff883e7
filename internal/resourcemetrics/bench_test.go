package resourcemetrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	benchNodes       = 1000
	benchPodsPerNode = 10
)

// benchCluster is benchNodes kubelets serving pre-rendered bodies from
// memory: benchPodsPerNode pods each, with one or two containers.
type benchCluster struct {
	nodes   []*corev1.Node
	bodies  [2][][]byte // two sets, rendered alternately
	set     int         // the set Fetch serves
	readers []bodyReader
}

type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

func newBenchCluster() *benchCluster {
	c := &benchCluster{readers: make([]bodyReader, benchNodes)}
	for i := range benchNodes {
		c.nodes = append(c.nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("node-%04d", i),
			// The index of the node, for Fetch.
			Annotations: map[string]string{"i": strconv.Itoa(i)},
		}})
	}
	c.bodies[0] = make([][]byte, benchNodes)
	c.bodies[1] = make([][]byte, benchNodes)
	return c
}

func (c *benchCluster) list(context.Context) ([]*corev1.Node, error) { return c.nodes, nil }

func (c *benchCluster) fetch(_ context.Context, node *corev1.Node) (io.ReadCloser, error) {
	i, _ := strconv.Atoi(node.Annotations["i"])
	r := &c.readers[i]
	r.Reset(c.bodies[c.set][i])
	return r, nil
}

// render writes every node's body for pass k into set k%2, as our kubelet
// writes them (HELP and TYPE lines, pod series, resource_scrape_error),
// with counters and timestamps that advance from pass to pass.
func (c *benchCluster) render(k int) {
	set := k % 2
	ts := strconv.AppendInt(nil, t0.Add(time.Duration(k)*interval).UnixMilli(), 10)
	start := strconv.AppendFloat(nil, float64(t0.Add(-time.Hour).Unix()), 'g', -1, 64)
	for i := range benchNodes {
		b := c.bodies[set][i][:0]
		containers := func(family string, value func(p, ctr int) float64) {
			b = append(b, "# HELP "...)
			b = append(b, family...)
			b = append(b, " [STABLE] some help text\n# TYPE "...)
			b = append(b, family...)
			b = append(b, " gauge\n"...)
			for p := range benchPodsPerNode {
				for ctr := range 1 + p%2 {
					b = append(b, family...)
					b = append(b, `{container="`...)
					b = append(b, [...]string{"app", "sidecar"}[ctr]...)
					b = append(b, `",namespace="ns-`...)
					b = strconv.AppendInt(b, int64(i%50), 10)
					b = append(b, `",pod="pod-`...)
					b = strconv.AppendInt(b, int64(i), 10)
					b = append(b, '-')
					b = strconv.AppendInt(b, int64(p), 10)
					b = append(b, `"} `...)
					b = strconv.AppendFloat(b, value(p, ctr), 'g', -1, 64)
					b = append(b, ' ')
					b = append(b, ts...)
					b = append(b, '\n')
				}
			}
		}
		cpu := func(p, ctr int) float64 { return float64(k*(1+p+ctr)) + 0.123456789 }
		containers("container_cpu_usage_seconds_total", cpu)
		containers("container_memory_working_set_bytes", func(p, ctr int) float64 { return float64((p + 1) << 20) })
		containers("container_start_time_seconds", func(int, int) float64 {
			v, _ := strconv.ParseFloat(string(start), 64)
			return v
		})
		b = append(b, "node_cpu_usage_seconds_total "...)
		b = strconv.AppendFloat(b, float64(k*4)+1, 'g', -1, 64)
		b = append(b, ' ')
		b = append(b, ts...)
		b = append(b, "\nnode_memory_working_set_bytes 4.294967296e+09 "...)
		b = append(b, ts...)
		b = append(b, '\n')
		for p := range benchPodsPerNode {
			b = append(b, `pod_cpu_usage_seconds_total{namespace="ns",pod="pod-`...)
			b = strconv.AppendInt(b, int64(p), 10)
			b = append(b, `"} 1 `...)
			b = append(b, ts...)
			b = append(b, '\n')
		}
		b = append(b, "resource_scrape_error 0\n"...)
		c.bodies[set][i] = b
	}
	c.set = set
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC() // a second GC empties sync.Pools, whose parsers are per pass
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkScrape1000Nodes measures one full pass over 1,000 nodes of 10
// pods (15 containers) each, from bodies held in memory: so it measures
// the parsing, rate and publishing work, not the network.
func BenchmarkScrape1000Nodes(b *testing.B) {
	c := newBenchCluster()
	c.render(0)
	c.render(1)
	s := &Scraper{
		Store:    NewStore(),
		Nodes:    c.list,
		Fetch:    c.fetch,
		Interval: interval,
		Log:      slog.New(slog.DiscardHandler),
		Now:      func() time.Time { return t0 },
	}
	ctx := context.Background()

	before := heapInUse()
	c.set = 0
	s.ScrapeOnce(ctx)
	c.set = 1
	s.ScrapeOnce(ctx)
	after := heapInUse()
	if n, p := s.Store.Len(); n != benchNodes || p != benchNodes*benchPodsPerNode {
		b.Fatalf("store holds %d nodes and %d pods, want %d and %d", n, p, benchNodes, benchNodes*benchPodsPerNode)
	}
	var bodyBytes int
	for _, body := range c.bodies[0] {
		bodyBytes += len(body)
	}

	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		c.render(i + 2)
		b.StartTimer()
		s.ScrapeOnce(ctx)
	}
	b.StopTimer()
	if n, p := s.Store.Len(); n != benchNodes || p != benchNodes*benchPodsPerNode {
		b.Fatalf("store holds %d nodes and %d pods, want %d and %d", n, p, benchNodes, benchNodes*benchPodsPerNode)
	}
	b.ReportMetric(float64(int64(after)-int64(before))/benchNodes, "heap-B/node")
	b.ReportMetric(float64(bodyBytes)/benchNodes, "body-B/node")
}

// BenchmarkStorePod measures one read, as a LIST of pods makes per pod.
func BenchmarkStorePod(b *testing.B) {
	c := newBenchCluster()
	c.render(0)
	c.render(1)
	s := &Scraper{Store: NewStore(), Nodes: c.list, Fetch: c.fetch, Interval: interval,
		Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
	c.set = 0
	s.ScrapeOnce(context.Background())
	c.set = 1
	s.ScrapeOnce(context.Background())
	type ref struct{ ns, name string }
	var refs []ref
	for i := range 1024 {
		node := i * 7 % benchNodes
		refs = append(refs, ref{fmt.Sprintf("ns-%d", node%50), fmt.Sprintf("pod-%d-%d", node, i%benchPodsPerNode)})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := refs[i%len(refs)]
		if _, ok := s.Store.Pod(r.ns, r.name); !ok {
			b.Fatalf("no metrics for pod %s/%s", r.ns, r.name)
		}
	}
}
