package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/internal/sim"
)

// FlowControlConfig is `skiff bench flowcontrol`'s configuration.
type FlowControlConfig struct {
	// APF runs the server with API Priority and Fairness; false runs it
	// with the max-in-flight bounds alone (--enable-priority-and-fairness).
	APF bool
	// Nodes are simulated nodes; Pods the pods stored and bound to them,
	// which the flood lists.
	Nodes int
	Pods  int
	// Flooders are the flooding user's concurrent clients, each listing
	// every stored pod again and again on its own connection.
	Flooders int
	// Duration is the length of each phase (without, then with the
	// flood); the first Warmup of each is not counted.
	Duration time.Duration
	Warmup   time.Duration
	// CreateRate is the pods per second created (by the admin) for the
	// scheduler to bind during each phase.
	CreateRate int
	// GetPause is the other user's pause between two GETs.
	GetPause time.Duration
	// DataDir is where the server keeps its state; empty means a temp
	// dir removed afterwards.
	DataDir string
}

// The bench's two users, from a static token file.
const (
	floodToken = "flood-token" // alice, who floods
	getToken   = "get-token"   // bob, who GETs one pod at a time
)

// FlowControl measures what a flood of LISTs from one user does to
// another user and to the scheduler: it starts a server (no controllers)
// with cfg.Pods pods bound to cfg.Nodes simulated nodes and the scheduler
// running on the loopback as in `skiff server`, then runs two phases of
// cfg.Duration. In both, bob GETs one pod after another (client-go,
// protobuf) and the admin creates pods at cfg.CreateRate for the scheduler
// to bind; in the second, alice's cfg.Flooders clients LIST every pod of
// the flood namespace in a loop (protobuf, each on its own connection,
// the body read and dropped, a 429 answered by waiting its Retry-After as
// client-go does). It prints bob's GET latency, alice's LISTs and the
// scheduler's binding rate for each phase.
func FlowControl(ctx context.Context, cfg FlowControlConfig, out io.Writer) error {
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "skiff-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(floodToken+",alice,alice,\"\"\n"+getToken+",bob,bob,\"\"\n"), 0o600); err != nil {
		return err
	}
	rc, loopback, stopServer, err := startServer(ctx, dir, func(c *server.Config) {
		c.TokenAuthFile = tokens
		c.EnablePriorityAndFairness = cfg.APF
	})
	if err != nil {
		return err
	}
	defer stopServer()
	rc.QPS, rc.Burst = -1, 0
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if err := waitServerReady(ctx, admin); err != nil {
		return err
	}
	// The server enforces RBAC: alice and bob may read everything.
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"},
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "bob"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	bobCfg := rest.AnonymousClientConfig(rc)
	bobCfg.BearerToken = getToken
	var bob429 atomic.Int64 // client-go retries a 429 by itself: count them under it
	bobCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &counting429{next: rt, n: &bob429} })
	bob, err := kubernetes.NewForConfig(bobCfg)
	if err != nil {
		return err
	}
	if cfg.APF {
		if err := waitClassified(ctx, admin, bobCfg); err != nil {
			return err
		}
	}

	simCfg := sim.Defaults()
	simCfg.KubeletPort = -1 // nothing scrapes them (startServer)
	simCfg.Nodes = cfg.Nodes
	simCfg.RunPods = false
	s := sim.New(admin, simCfg)
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- s.Start(simCtx) }()
	defer func() { stopSim(); <-simDone }()
	if err := s.WaitReady(ctx); err != nil {
		return fmt.Errorf("simulated nodes: %w", err)
	}
	for _, ns := range []string{"flood", "sched"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	began := time.Now()
	if err := createBoundPods(ctx, admin, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "APF %v: %d pods stored on %d simulated nodes in %v\n", cfg.APF, cfg.Pods, cfg.Nodes, time.Since(began).Round(time.Millisecond))

	schedClient, err := server.SchedulerClient(loopback)
	if err != nil {
		return err
	}
	var phase atomic.Pointer[phaseStats]
	var created sync.Map // pod name -> creation time
	stopScheduler, err := startScheduler(ctx, schedClient, func(_, name, _ string) {
		if v, ok := created.Load(name); ok {
			if p := phase.Load(); p != nil {
				p.bound(time.Since(v.(time.Time)))
			}
		}
	})
	if err != nil {
		return err
	}
	defer stopScheduler()

	floodCfg := rest.AnonymousClientConfig(rc)
	floodCfg.BearerToken = floodToken
	next := 0
	for _, flood := range []bool{false, true} {
		p := &phaseStats{warmupEnd: time.Now().Add(cfg.Warmup)}
		phase.Store(p)
		before := bob429.Load()
		runPhase(ctx, cfg, p, flood, admin, bob, floodCfg, &created, &next)
		p.get429 = bob429.Load() - before
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.print(out, cfg, flood)
	}
	return nil
}

// waitClassified waits until API Priority and Fairness classifies bob's
// requests by the stored configuration (global-default).
func waitClassified(ctx context.Context, admin kubernetes.Interface, bobCfg *rest.Config) error {
	hc, err := rest.HTTPClientFor(bobCfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fs, err := admin.FlowcontrolV1().FlowSchemas().Get(ctx, "global-default", metav1.GetOptions{})
		if err == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, bobCfg.Host+"/api/v1/namespaces/default/configmaps", nil)
			if resp, err := hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID) == string(fs.UID) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return errors.New("API Priority and Fairness never classified bob as global-default")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createBoundPods creates cfg.Pods pods in the flood namespace, bound to
// the simulated nodes in turn (the scheduler has nothing to do with them).
func createBoundPods(ctx context.Context, client kubernetes.Interface, cfg FlowControlConfig) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Pods || ctx.Err() != nil {
					return
				}
				p := benchPod(i)
				p.Spec.NodeName = simCfgNodeName(i % cfg.Nodes)
				if _, err := client.CoreV1().Pods("flood").Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("creating pods: %w", err)
	default:
		return nil
	}
}

func simCfgNodeName(i int) string { return sim.DefaultNamePrefix + strconv.Itoa(i) }

// phaseStats collects one phase's measurements (those after warmupEnd).
type phaseStats struct {
	warmupEnd time.Time

	mu           sync.Mutex
	gets         []time.Duration
	getErrors    int
	get429       int64 // 429s client-go retried (the whole phase)
	lists        []time.Duration
	listRejected int
	listErrors   int
	binds        []time.Duration
	creates      int
	measured     time.Duration // counted: the phase after its warmup
	cpu, wall    time.Duration // the process's CPU over the whole phase
}

func (p *phaseStats) counting() bool { return time.Now().After(p.warmupEnd) }

func (p *phaseStats) bound(d time.Duration) {
	if !p.counting() {
		return
	}
	p.mu.Lock()
	p.binds = append(p.binds, d)
	p.mu.Unlock()
}

// runPhase runs one phase until cfg.Duration has passed.
func runPhase(ctx context.Context, cfg FlowControlConfig, p *phaseStats, flood bool, admin, bob kubernetes.Interface,
	floodCfg *rest.Config, created *sync.Map, next *int) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup

	// The admin creates pods for the scheduler at a steady rate.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(cfg.CreateRate))
		defer tick.Stop()
		sem := make(chan struct{}, 16)
		var creators sync.WaitGroup
		defer creators.Wait()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // the server is behind: skip a beat
			}
			name := "s-" + strconv.Itoa(*next)
			*next++
			counted := p.counting()
			creators.Add(1)
			go func() {
				defer creators.Done()
				defer func() { <-sem }()
				pod := benchPod(0)
				pod.Name = name
				created.Store(name, time.Now())
				if _, err := admin.CoreV1().Pods("sched").Create(context.Background(), pod, metav1.CreateOptions{}); err == nil && counted {
					p.mu.Lock()
					p.creates++
					p.mu.Unlock()
				}
			}()
		}
	}()

	// Bob GETs one pod at a time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			_, err := bob.CoreV1().Pods("flood").Get(ctx, "p-"+strconv.Itoa(i%cfg.Pods), metav1.GetOptions{})
			took := time.Since(start)
			if ctx.Err() != nil {
				return
			}
			if p.counting() {
				p.mu.Lock()
				if err != nil {
					p.getErrors++
				} else {
					p.gets = append(p.gets, took)
				}
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(cfg.GetPause):
			}
		}
	}()

	if flood {
		for range cfg.Flooders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				floodLists(ctx, floodCfg, p)
			}()
		}
	}

	cpu0, began := processCPU(), time.Now()
	<-ctx.Done()
	p.measured = time.Since(p.warmupEnd)
	p.cpu, p.wall = processCPU()-cpu0, time.Since(began)
	wg.Wait()
}

// floodLists lists every pod of the flood namespace in a loop on its own
// connection, as one of alice's clients.
func floodLists(ctx context.Context, cfg *rest.Config, p *phaseStats) {
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return
	}
	transport := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	url := cfg.Host + "/api/v1/namespaces/flood/pods"
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+cfg.BearerToken)
		req.Header.Set("Accept", "application/vnd.kubernetes.protobuf")
		start := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		took := time.Since(start)
		if ctx.Err() != nil {
			return
		}
		counting := p.counting()
		switch {
		case err != nil:
			if counting {
				p.mu.Lock()
				p.listErrors++
				p.mu.Unlock()
			}
		case resp.StatusCode == http.StatusTooManyRequests:
			if counting {
				p.mu.Lock()
				p.listRejected++
				p.mu.Unlock()
			}
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
			}
		case resp.StatusCode == http.StatusOK:
			if counting {
				p.mu.Lock()
				p.lists = append(p.lists, took)
				p.mu.Unlock()
			}
		default:
			if counting {
				p.mu.Lock()
				p.listErrors++
				p.mu.Unlock()
			}
		}
	}
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (p *phaseStats) print(out io.Writer, cfg FlowControlConfig, flood bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.Sort(p.gets)
	slices.Sort(p.lists)
	slices.Sort(p.binds)
	secs := p.measured.Seconds()
	what := "without flood"
	if flood {
		what = fmt.Sprintf("flood: %d clients of alice listing %d pods", cfg.Flooders, cfg.Pods)
	}
	fmt.Fprintf(out, "%s (%.0f s counted, process CPU %.2f cores)\n", what, secs, p.cpu.Seconds()/p.wall.Seconds())
	fmt.Fprintf(out, "  bob GET:     %d ok, %d failed, %d answers 429 retried; p50 %v p99 %v max %v\n", len(p.gets), p.getErrors, p.get429,
		percentile(p.gets, 0.50), percentile(p.gets, 0.99), percentile(p.gets, 1))
	if flood {
		fmt.Fprintf(out, "  alice LIST:  %d ok (%.1f/s), %d got 429, %d failed; p50 %v p99 %v\n", len(p.lists), float64(len(p.lists))/secs,
			p.listRejected, p.listErrors, percentile(p.lists, 0.50).Round(time.Millisecond), percentile(p.lists, 0.99).Round(time.Millisecond))
	}
	fmt.Fprintf(out, "  scheduler:   %d pods created, %d bound (%.0f pods/s); create-to-bound p50 %v p99 %v\n", p.creates, len(p.binds),
		float64(len(p.binds))/secs, percentile(p.binds, 0.50).Round(time.Millisecond), percentile(p.binds, 0.99).Round(time.Millisecond))
}

// counting429 counts the 429 answers that pass through it.
type counting429 struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c *counting429) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		c.n.Add(1)
	}
	return resp, err
}
