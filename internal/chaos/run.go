package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Server is the server a run kills and restarts. Run calls its methods
// from the goroutine that called Run, never concurrently.
type Server interface {
	// Kill9 kills the server with SIGKILL and returns once the process
	// has exited.
	Kill9() error
	// Restart starts the server again on the same data dir, address and
	// credentials, and returns once it is ready.
	Restart() error
}

// Config is one run's shape.
type Config struct {
	// Cycles is how many times the server is killed and restarted.
	Cycles int
	// MinUp and MaxUp bound how long the server runs under load before
	// each kill (uniformly at random between them), and after the last
	// restart.
	MinUp, MaxUp time.Duration
	// Writers write KeysPerWriter keys each (and create new objects).
	Writers, KeysPerWriter int
	// Watchers follow the writers; every other one lags.
	Watchers int
	// LinClients race on LinKeys keys for the linearizability check.
	LinClients, LinKeys int
	// LinTimeout bounds porcupine's check.
	LinTimeout time.Duration
	// Seed seeds the writers', clients' and kills' choices (the kills'
	// moments still race with the load); 0 picks one.
	Seed uint64
	// ArtifactDir receives porcupine's drawing of a history that is not
	// linearizable; "" draws none.
	ArtifactDir string
	// Logf reports progress; nil reports none.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.MinUp <= 0 {
		c.MinUp = time.Second
	}
	if c.MaxUp < c.MinUp {
		c.MaxUp = c.MinUp
	}
	if c.Writers <= 0 {
		c.Writers = 7
	}
	if c.KeysPerWriter <= 0 {
		c.KeysPerWriter = 8
	}
	if c.Watchers <= 0 {
		c.Watchers = 2
	}
	if c.LinClients <= 0 {
		c.LinClients = 6
	}
	if c.LinKeys <= 0 {
		c.LinKeys = 3
	}
	if c.LinTimeout <= 0 {
		c.LinTimeout = 5 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Namespaces of the two workloads.
const (
	writesNS = "chaos-writes"
	linNS    = "chaos-lin"
	fenceKey = "fence"
)

// owned tells the writers' keys from others in their namespace.
func owned(key string) bool { return strings.HasPrefix(key, "w") }

// Report is what a run did and what the checks found.
type Report struct {
	Seed     uint64
	Cycles   int
	Duration time.Duration
	// Ready is, per restart, the time from the kill to ready.
	Ready  []time.Duration
	Writes WriteStats
	// Objects is how many of the writers' objects the store holds at the
	// end.
	Objects int
	// Lost counts keys whose last applied write the store does not hold,
	// and writes refused because an acknowledged state was gone.
	Lost     int
	Watchers []WatchStats
	Lin      LinStats
	// Violations lists what the checks found wrong; none passes.
	Violations []string
}

// WriteTo prints the report.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d kill -9 cycles in %v\n", r.Seed, r.Cycles, r.Duration.Round(time.Second))
	if len(r.Ready) > 0 {
		rd := slices.Clone(r.Ready)
		slices.Sort(rd)
		fmt.Fprintf(&b, "kill to ready: min %v, median %v, max %v\n", rd[0].Round(time.Millisecond), rd[len(rd)/2].Round(time.Millisecond), rd[len(rd)-1].Round(time.Millisecond))
	}
	ws := r.Writes
	fmt.Fprintf(&b, "acknowledged writes: %d (%d creates, %d updates, %d deletes); answer lost: %d (%d had taken effect, %d with no kill to explain it); refused while down: %d\n",
		ws.Acked(), ws.AckedCreates, ws.AckedUpdates, ws.AckedDeletes, ws.Indeterminate, ws.IndeterminateApplied, ws.NoKill, ws.Refused)
	fmt.Fprintf(&b, "objects at the end: %d; lost: %d\n", r.Objects, r.Lost)
	for i, w := range r.Watchers {
		fmt.Fprintf(&b, "watcher %d: %d events, %d bookmarks, %d watches, %d relists after 410\n", i, w.Events, w.Bookmarks, w.Watches, w.Relists)
	}
	l := r.Lin
	fmt.Fprintf(&b, "linearizability: %d operations (%d gets, %d writes, %d with the answer lost): %s in %v\n",
		l.Ops, l.Gets, l.Writes, l.Indeterminate, l.Result, l.CheckTime.Round(time.Millisecond))
	if l.Visualization != "" {
		fmt.Fprintf(&b, "linearizability: history drawn in %s\n", l.Visualization)
	}
	if len(r.Violations) == 0 {
		b.WriteString("violations: none\n")
	} else {
		fmt.Fprintf(&b, "violations (%d):\n", len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Run creates the workloads' namespaces on the server rc reaches, runs
// the writers, watchers and linearizability clients while it kills and
// restarts srv cfg.Cycles times, stops them, and checks what they saw. An
// error means the run could not be carried out; what the checks found is
// in the report's Violations.
func Run(ctx context.Context, rc *rest.Config, srv Server, cfg Config) (*Report, error) {
	cfg.defaults()
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = -1, 0
	rc.Timeout = 0
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	client := cs.CoreV1().RESTClient()
	rep := &Report{Seed: cfg.Seed}
	var (
		mu         sync.Mutex
		violations []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(violations) < maxFindings {
			violations = append(violations, fmt.Sprintf(format, args...))
		}
	}
	for _, ns := range []string{writesNS, linNS} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("namespace %s: %w", ns, err)
		}
	}

	tl := newTimeline()
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	watchers := make([]*watcher, cfg.Watchers)
	for i := range watchers {
		watchers[i] = newWatcher(i, cs, writesNS, i%2 == 1, cfg.Seed, report)
		if err := watchers[i].start(runCtx); err != nil {
			return nil, err
		}
	}
	writers := make([]*writer, cfg.Writers)
	for i := range writers {
		writers[i] = newWriter(i, client, writesNS, cfg.KeysPerWriter, tl, cfg.Seed, report)
	}
	var linKeys []string
	for i := range cfg.LinKeys {
		linKeys = append(linKeys, fmt.Sprintf("k%d", i))
	}
	clients := make([]*linClient, cfg.LinClients)
	for i := range clients {
		clients[i] = newLinClient(i, client, linNS, linKeys, tl, cfg.Seed, report)
	}

	// Every goroutine started here has ended when Run returns, however
	// it returns (Server's methods may end the goroutine, as a test's
	// t.Fatal does).
	var wwg, lwg sync.WaitGroup
	watchStop, writeStop := make(chan struct{}), make(chan struct{})
	stopWriters := sync.OnceFunc(func() { close(writeStop); lwg.Wait() })
	stopWatchers := sync.OnceFunc(func() { close(watchStop); wwg.Wait() })
	defer func() {
		cancel()
		stopWriters()
		stopWatchers()
	}()
	for _, w := range watchers {
		wwg.Go(func() { w.run(runCtx, watchStop) })
	}
	for _, w := range writers {
		lwg.Go(func() { w.run(runCtx, writeStop) })
	}
	for _, c := range clients {
		lwg.Go(func() { c.run(runCtx, writeStop) })
	}

	began := time.Now()
	up := func() time.Duration {
		return cfg.MinUp + time.Duration(rnd.Int64N(int64(cfg.MaxUp-cfg.MinUp)+1))
	}
	for c := range cfg.Cycles {
		d := up()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		tl.killing()
		if err := srv.Kill9(); err != nil {
			return nil, fmt.Errorf("cycle %d: kill: %w", c+1, err)
		}
		tl.killed()
		if err := srv.Restart(); err != nil {
			return nil, fmt.Errorf("cycle %d: restart: %w", c+1, err)
		}
		tl.ready()
		rep.Cycles++
		rt := tl.readyTimes()
		cfg.Logf("cycle %d/%d: killed after %v under load, ready %v later", c+1, cfg.Cycles, d.Round(time.Millisecond), rt[len(rt)-1].Round(time.Millisecond))
	}
	select {
	case <-ctx.Done():
	case <-time.After(cfg.MinUp):
	}
	stopWriters()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// The fence: a write after every other; a watcher that has seen it
	// (or listed past it) has had every chance to see them all.
	fence, err := createObj(runCtx, client, writesNS, fenceKey, "fence")
	if err != nil {
		return nil, fmt.Errorf("fence: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, w := range watchers {
		for w.lastRV.Load() < fence.rv && time.Now().Before(deadline) {
			pause(ctx, 20*time.Millisecond)
		}
		if last := w.lastRV.Load(); last < fence.rv {
			report("%s: at rv %d a minute after the fence was written at rv %d", w.name(), last, fence.rv)
		}
	}
	stopWatchers()
	rep.Duration = time.Since(began)
	rep.Ready = tl.readyTimes()

	// Checks.
	hist := History{}
	for _, w := range writers {
		rep.Writes.add(w.stats)
		rep.Lost += w.lost
		for k, ws := range w.hist {
			hist[k] = ws
		}
	}
	final, err := listFinal(ctx, cs)
	if err != nil {
		return nil, err
	}
	for k := range final {
		if owned(k) {
			rep.Objects++
		}
	}
	v, lost := checkFinal(hist, final, owned)
	rep.Lost += lost
	violations = append(violations, v...)
	for _, w := range watchers {
		rep.Watchers = append(rep.Watchers, w.stats)
		violations = append(violations, checkWatch(w.name(), hist, w.items, owned)...)
	}
	var recs []linRecord
	for _, c := range clients {
		recs = append(recs, c.ops...)
	}
	ops := history(recs, tl)
	rep.Lin, err = checkLinearizable(ops, cfg.LinTimeout, cfg.ArtifactDir)
	if err != nil {
		return nil, err
	}
	switch porcupine.CheckResult(rep.Lin.Result) {
	case porcupine.Illegal:
		violations = append(violations, "linearizability: the history of gets, creates, updates and deletes is not linearizable")
	case porcupine.Unknown:
		violations = append(violations, fmt.Sprintf("linearizability: the check did not finish within %v", cfg.LinTimeout))
	}
	rep.Violations = violations
	return rep, nil
}

// listFinal reads the writers' namespace from etcd.
func listFinal(ctx context.Context, cs kubernetes.Interface) (map[string]observed, error) {
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := cs.CoreV1().ConfigMaps(writesNS).List(lctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("final list: %w", err)
	}
	out := make(map[string]observed, len(list.Items))
	for i := range list.Items {
		o, err := observe(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out[list.Items[i].Name] = o
	}
	return out, nil
}
