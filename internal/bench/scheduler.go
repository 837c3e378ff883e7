// Package bench holds `skiff bench`: measurements of a whole skiff control
// plane run in this process on a temp dir, driven through the API as real
// clients drive it. Results are printed, never asserted.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/scheduler"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/internal/sim"
)

// SchedulerConfig is `skiff bench scheduler`'s configuration.
type SchedulerConfig struct {
	Nodes   int
	Pods    int
	Writers int
	// Backlog creates every pod before the scheduler starts, to measure the
	// scheduler draining a queue alone; otherwise pods are created while it
	// runs and create-to-bound latency includes the API server's writes.
	Backlog bool
	// DataDir is where the server keeps its state; empty means a temp dir
	// removed afterwards.
	DataDir string
}

// Scheduler starts a server (no controllers) on a temp dir, registers
// cfg.Nodes simulated nodes, runs the scheduler as the server runs it,
// creates cfg.Pods pods and prints how fast they are bound.
func Scheduler(ctx context.Context, cfg SchedulerConfig, out io.Writer) error {
	if cfg.Writers <= 0 {
		cfg.Writers = 32
	}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "skiff-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	began := time.Now()
	rc, loopback, stopServer, err := startServer(ctx, dir)
	if err != nil {
		return err
	}
	defer stopServer()
	// The scheduler is the server's own component: it runs on the
	// loopback configuration as in `skiff server`; the simulated nodes and
	// the load generator are outside clients over HTTPS.
	schedClient, err := server.SchedulerClient(loopback)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = -1, 0
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if err := waitServerReady(ctx, client); err != nil {
		return err
	}
	fmt.Fprintf(out, "server ready in %v\n", time.Since(began).Round(time.Millisecond))

	simCfg := sim.Defaults()
	simCfg.KubeletPort = -1 // nothing scrapes them (startServer)
	simCfg.Nodes = cfg.Nodes
	simCfg.RunPods = false
	s := sim.New(client, simCfg)
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	began = time.Now()
	go func() { simDone <- s.Start(simCtx) }()
	defer func() { stopSim(); <-simDone }()
	if err := s.WaitReady(ctx); err != nil {
		return fmt.Errorf("simulated nodes: %w", err)
	}
	fmt.Fprintf(out, "%d simulated nodes Ready in %v\n", cfg.Nodes, time.Since(began).Round(time.Millisecond))

	ns := "bench"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	// The account the serviceaccount controller (not run here) would
	// create: pods are admitted against it as in a running cluster.
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	res, err := runPods(ctx, client, schedClient, ns, cfg)
	if err != nil {
		return err
	}
	res.print(out, cfg)
	return nil
}

func waitServerReady(ctx context.Context, client kubernetes.Interface) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready: %v %s", err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type podResult struct {
	createElapsed time.Duration
	elapsed       time.Duration // first create to last bind
	drain         time.Duration // backlog: switch-over to last bind
	latencies     []time.Duration
	rssKiB        int64
	hwmKiB        int64
}

// runPods creates the pods, watching for their bindings.
func runPods(ctx context.Context, client, schedClient kubernetes.Interface, ns string, cfg SchedulerConfig) (*podResult, error) {
	created := make([]atomic.Int64, cfg.Pods) // unix nanos at create
	bound := make([]atomic.Int64, cfg.Pods)
	var nbound atomic.Int64
	allBound := make(chan struct{})
	// The scheduler runs in this process: its OnBound hook times each
	// binding when the API server has accepted it.
	onBound := func(_, name, _ string) {
		i, err := strconv.Atoi(strings.TrimPrefix(name, "p-"))
		if err != nil || i < 0 || i >= cfg.Pods {
			return
		}
		if bound[i].CompareAndSwap(0, time.Now().UnixNano()) && nbound.Add(1) == int64(cfg.Pods) {
			close(allBound)
		}
	}

	var stopScheduler func()
	var err error
	if !cfg.Backlog {
		if stopScheduler, err = startScheduler(ctx, schedClient, onBound); err != nil {
			return nil, err
		}
		defer stopScheduler()
	}
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Writers)
	for range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Pods || ctx.Err() != nil {
					return
				}
				created[i].Store(time.Now().UnixNano())
				if _, err := client.CoreV1().Pods(ns).Create(ctx, benchPod(i), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	res := &podResult{createElapsed: time.Since(start)}
	select {
	case err := <-errs:
		return nil, fmt.Errorf("creating pods: %w", err)
	default:
	}
	switchedAt := time.Time{}
	if cfg.Backlog {
		switchedAt = time.Now()
		if stopScheduler, err = startScheduler(ctx, schedClient, onBound); err != nil {
			return nil, err
		}
		defer stopScheduler()
	}
	select {
	case <-allBound:
	case <-time.After(10 * time.Minute):
		return nil, fmt.Errorf("only %d of %d pods bound after 10 minutes", nbound.Load(), cfg.Pods)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var last int64
	for i := range cfg.Pods {
		b, c := bound[i].Load(), created[i].Load()
		if !switchedAt.IsZero() {
			c = max(c, switchedAt.UnixNano()) // time in the backlog is not the scheduler's
		}
		res.latencies = append(res.latencies, time.Duration(b-c))
		last = max(last, b)
	}
	res.elapsed = time.Unix(0, last).Sub(start)
	if !switchedAt.IsZero() {
		res.drain = time.Unix(0, last).Sub(switchedAt)
	}
	slices.Sort(res.latencies)
	res.rssKiB, res.hwmKiB = selfMemory()
	return res, nil
}

func benchPod(i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p-" + strconv.Itoa(i), Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "skiff.io/test/server:v1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			}}},
		},
	}
}

func (r *podResult) print(out io.Writer, cfg SchedulerConfig) {
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
	}
	fmt.Fprintf(out, "created %d pods in %v (%.0f pods/s, %d writers)\n", cfg.Pods, r.createElapsed.Round(time.Millisecond),
		float64(cfg.Pods)/r.createElapsed.Seconds(), cfg.Writers)
	fmt.Fprintf(out, "scheduled %d pods on %d nodes in %v: %.0f pods/s\n", cfg.Pods, cfg.Nodes, r.elapsed.Round(time.Millisecond),
		float64(cfg.Pods)/r.elapsed.Seconds())
	if r.drain > 0 {
		fmt.Fprintf(out, "backlog drained in %v: %.0f pods/s\n", r.drain.Round(time.Millisecond), float64(cfg.Pods)/r.drain.Seconds())
	}
	fmt.Fprintf(out, "create-to-bound p50 %v p99 %v max %v\n", pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	fmt.Fprintf(out, "process RSS %d MiB (peak %d MiB; server, simulated nodes and load generator in one process)\n", r.rssKiB/1024, r.hwmKiB/1024)
}

// selfMemory reads this process's resident set size and its peak.
func selfMemory() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// startScheduler runs the scheduler as `skiff server` does (without the
// Lease, which only adds a wait) on client until the returned stop is
// called.
func startScheduler(ctx context.Context, client kubernetes.Interface, onBound func(namespace, name, node string)) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = server.RunScheduler(ctx, client, scheduler.Config{OnBound: onBound})
	}()
	return func() { cancel(); <-done }, nil
}
