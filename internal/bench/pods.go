package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// PodsConfig is `skiff bench pods`: real pods on a running cluster.
type PodsConfig struct {
	Namespace string
	Pods      int
	// Concurrency is how many pods are created at once; 1 measures one pod
	// at a time (each created when the previous is Running).
	Concurrency int
	Image       string
	Command     []string
	// Keep leaves the pods in place (to measure memory with them running).
	Keep bool
}

// Pods creates cfg.Pods pods and reports the time from each create request
// to the pod's Ready condition as the watch shows it, and the total time
// until all are Ready. It deletes them afterwards unless cfg.Keep.
func Pods(ctx context.Context, client kubernetes.Interface, cfg PodsConfig, out io.Writer) error {
	if cfg.Pods <= 0 || cfg.Concurrency <= 0 {
		return errors.New("--pods and --concurrency must be positive")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	pods := client.CoreV1().Pods(cfg.Namespace)
	sel := fields.OneTermEqualSelector("metadata.namespace", cfg.Namespace).String()
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: sel, LabelSelector: "skiff.io/bench=pods"})
	if err != nil {
		return err
	}
	defer w.Stop()

	ready := map[string]chan time.Time{}
	for i := 0; i < cfg.Pods; i++ {
		ready[fmt.Sprintf("bench-pod-%d", i)] = make(chan time.Time, 1)
	}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || !podReady(p) {
				continue
			}
			if ch := ready[p.Name]; ch != nil {
				select {
				case ch <- time.Now():
				default:
				}
			}
		}
	}()

	begin := time.Now()
	lat := make([]time.Duration, cfg.Pods)
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Pods)
	for i := 0; i < cfg.Pods; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("bench-pod-%d", i)
			start := time.Now()
			if _, err := pods.Create(ctx, benchRealPod(name, cfg), metav1.CreateOptions{}); err != nil {
				errc <- err
				return
			}
			select {
			case at := <-ready[name]:
				lat[i] = at.Sub(start)
			case <-ctx.Done():
				errc <- ctx.Err()
			case <-time.After(5 * time.Minute):
				errc <- fmt.Errorf("pod %s not Ready within 5 minutes", name)
			}
		}(i)
	}
	wg.Wait()
	total := time.Since(begin)
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond) }
	fmt.Fprintf(out, "pods: %d  concurrency: %d  image: %s\n", cfg.Pods, cfg.Concurrency, cfg.Image)
	fmt.Fprintf(out, "create to Ready: p50 %v  p90 %v  p99 %v  max %v\n", q(0.5), q(0.9), q(0.99), lat[len(lat)-1].Round(time.Millisecond))
	fmt.Fprintf(out, "all %d Ready after %v (%.1f pods/s)\n", cfg.Pods, total.Round(time.Millisecond), float64(cfg.Pods)/total.Seconds())
	if cfg.Keep {
		return nil
	}
	start := time.Now()
	err = pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(1))},
		metav1.ListOptions{LabelSelector: "skiff.io/bench=pods"})
	if err != nil {
		return err
	}
	for {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "skiff.io/bench=pods"})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "all deleted after %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func benchRealPod(name string, cfg PodsConfig) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"skiff.io/bench": "pods"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "c", Image: cfg.Image, Command: cfg.Command, ImagePullPolicy: corev1.PullIfNotPresent,
			}},
		},
	}
}
