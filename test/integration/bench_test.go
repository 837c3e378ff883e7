package integration

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}
}

// BenchmarkCreatePods16 measures pod creates per second with 16 concurrent
// client-go writers (protobuf, client-go's default).
func BenchmarkCreatePods16(b *testing.B) {
	c := framework.StartInProcess(b, framework.WithControllers())
	mustNS(b, c, "bench")
	ctx := context.Background()
	client := kubernetes.NewForConfigOrDie(unthrottled(c.Config))
	createConcurrently(b, 16, func(i int64) error {
		_, err := client.CoreV1().Pods("bench").Create(ctx, benchPod(fmt.Sprintf("p-%d", i)), metav1.CreateOptions{})
		return err
	})
}

// unthrottled is cfg without client-go's rate limiter (the framework's
// 1,000 QPS with a burst of 2,000 would cap a benchmark's rate).
func unthrottled(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	return cfg
}

// createConcurrently runs create(1..b.N) from writers goroutines and
// reports the rate as creates/s.
func createConcurrently(b *testing.B, writers int, create func(i int64) error) {
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := create(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

// BenchmarkList10kPods measures a LIST of 10,000 pods through client-go.
func BenchmarkList10kPods(b *testing.B) {
	c := framework.StartInProcess(b, framework.WithControllers())
	mustNS(b, c, "bench")
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < 10000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.Client.CoreV1().Pods("bench").Create(ctx, benchPod(fmt.Sprintf("p-%05d", i)), metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		}(i)
	}
	wg.Wait()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := c.Client.CoreV1().Pods("bench").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 10000 {
			b.Fatalf("list: %v, %d items", err, len(l.Items))
		}
	}
}

func mustNS(b *testing.B, c *framework.Cluster, name string) {
	if _, err := c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWatchFanout1000 opens 1,000 watches of configmaps over HTTP
// (client-go, one client) and measures, for each write, how long until
// each watcher has the event: the write is timed from just before the
// create call, so latency includes the API write and etcd.
func BenchmarkWatchFanout1000(b *testing.B) {
	const watchers = 1000
	c := framework.StartInProcess(b, framework.WithControllers())
	mustNS(b, c, "fan")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cms := c.Client.CoreV1().ConfigMaps("fan")
	start, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		sentAt    sync.Map // name → time.Time
		got       = make([]chan struct{}, watchers)
	)
	for i := 0; i < watchers; i++ {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: start.ResourceVersion})
		if err != nil {
			b.Fatalf("watch %d: %v", i, err)
		}
		got[i] = make(chan struct{}, 1)
		go func(ch chan struct{}) {
			defer w.Stop()
			for ev := range w.ResultChan() {
				now := time.Now()
				cm, ok := ev.Object.(*corev1.ConfigMap)
				if !ok {
					continue
				}
				if t, ok := sentAt.Load(cm.Name); ok {
					mu.Lock()
					latencies = append(latencies, now.Sub(t.(time.Time)))
					mu.Unlock()
					ch <- struct{}{}
				}
			}
		}(got[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("ev-%d", i)
		sentAt.Store(name, time.Now())
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for w := 0; w < watchers; w++ {
			select {
			case <-got[w]:
			case <-time.After(30 * time.Second):
				b.Fatalf("watcher %d did not get event %d", w, i)
			}
		}
	}
	b.StopTimer()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if len(latencies) == 0 {
		b.Fatal("no events delivered")
	}
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
