package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// wireFormats are the two encodings client-go speaks to the API server:
// what it sends (ContentType) and what it asks for (AcceptContentTypes).
var wireFormats = []struct {
	name, contentType, accept string
}{
	{"json", "application/json", "application/json"},
	{"protobuf", "application/vnd.kubernetes.protobuf", "application/vnd.kubernetes.protobuf"},
}

// BenchmarkWireFormat10kPods compares JSON and protobuf through client-go
// on 10,000 stored pods: a LIST of all of them (one request, served from
// the watch cache) and a watch from resourceVersion 0, which delivers the
// 10,000 pods as ADDED events. It reports the response body bytes per
// operation as the client read them (a wrapping http.RoundTripper counts
// them; the server compresses neither lists nor watches, so they are the
// bytes on the wire inside TLS and HTTP framing) and the time.
func BenchmarkWireFormat10kPods(b *testing.B) {
	const pods = 10000
	c := framework.StartInProcess(b, framework.WithControllers())
	mustNS(b, c, "bench")
	createBenchPods(b, c.Client, "bench", pods)

	for _, f := range wireFormats {
		cs, counter := countingClient(b, c.Config, f.contentType, f.accept)
		b.Run("list/"+f.name, func(b *testing.B) {
			ctx := context.Background()
			counter.reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l, err := cs.CoreV1().Pods("bench").List(ctx, metav1.ListOptions{})
				if err != nil || len(l.Items) != pods {
					b.Fatalf("list: %v, %d items", err, len(l.Items))
				}
			}
			b.StopTimer()
			counter.report(b, f.accept)
		})
		b.Run("watch/"+f.name, func(b *testing.B) {
			ctx := context.Background()
			counter.reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w, err := cs.CoreV1().Pods("bench").Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for ev := range w.ResultChan() {
					if ev.Type != watch.Added {
						b.Fatalf("event %d: %s %v", n, ev.Type, ev.Object)
					}
					if _, ok := ev.Object.(*corev1.Pod); !ok {
						b.Fatalf("event %d holds a %T", n, ev.Object)
					}
					if n++; n == pods {
						break
					}
				}
				w.Stop()
				if n != pods {
					b.Fatalf("watch ended after %d events, want %d", n, pods)
				}
			}
			b.StopTimer()
			counter.report(b, f.accept)
		})
	}
}

// createBenchPods creates n pods named p-00000... with 32 concurrent
// writers.
func createBenchPods(b *testing.B, cs kubernetes.Interface, ns string, n int) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(fmt.Sprintf("p-%05d", i)), metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// countingClient returns a clientset that sends contentType, accepts
// accept, and counts the response bytes it reads.
func countingClient(b *testing.B, base *rest.Config, contentType, accept string) (kubernetes.Interface, *byteCounter) {
	b.Helper()
	cfg := rest.CopyConfig(base)
	cfg.ContentType, cfg.AcceptContentTypes = contentType, accept
	counter := &byteCounter{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return &countingTransport{next: rt, counter: counter}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cs, counter
}

// byteCounter adds up the response bodies read through a
// countingTransport and remembers what they were.
type byteCounter struct {
	bytes        atomic.Int64
	mu           sync.Mutex
	contentTypes map[string]bool
	compressed   bool // the transport un-gzipped a body
}

func (c *byteCounter) reset() {
	c.bytes.Store(0)
	c.mu.Lock()
	c.contentTypes, c.compressed = map[string]bool{}, false
	c.mu.Unlock()
}

// report adds bytes/op and fails the benchmark unless every response came
// in the format asked for.
func (c *byteCounter) report(b *testing.B, want string) {
	b.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for ct := range c.contentTypes {
		if ct != want && ct != want+";stream=watch" {
			b.Fatalf("a response came as %q, want %q", ct, want)
		}
	}
	if c.compressed {
		b.Log("responses were gzipped: body bytes are counted after decompression")
	}
	b.ReportMetric(float64(c.bytes.Load())/float64(b.N), "body-B/op")
	b.ReportMetric(float64(c.bytes.Load())/float64(b.N)/(1<<20), "body-MiB/op")
}

// countingTransport counts the bytes of every response body read through
// it.
type countingTransport struct {
	next    http.RoundTripper
	counter *byteCounter
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	t.counter.mu.Lock()
	t.counter.contentTypes[resp.Header.Get("Content-Type")] = true
	t.counter.compressed = t.counter.compressed || resp.Uncompressed
	t.counter.mu.Unlock()
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.counter.bytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
