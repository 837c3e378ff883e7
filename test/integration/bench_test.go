package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/test/framework"
)

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}
}

// BenchmarkCreatePods16 measures pod creates per second with 16 concurrent
// client-go writers (protobuf, client-go's default).
func BenchmarkCreatePods16(b *testing.B) {
	c := framework.StartInProcess(b)
	mustNS(b, c, "bench")
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := c.Client.CoreV1().Pods("bench").Create(ctx, benchPod(fmt.Sprintf("p-%d", i)), metav1.CreateOptions{}); err != nil {
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
	c := framework.StartInProcess(b)
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
