package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// RestartConfig is `skiff bench restart`'s configuration.
type RestartConfig struct {
	// Objects is how many ConfigMaps the data dir holds before the
	// restarts; those missing are created first (a kept data dir grows
	// from one run to the next).
	Objects int
	// Size is the bytes of data in each ConfigMap.
	Size int
	// Clients create the ConfigMaps concurrently.
	Clients int
	// Restarts are the clean restarts (SIGTERM, wait, start) measured;
	// Kills the kill -9 restarts, each after a burst of KillWrites updates
	// so that the member dies with writes it has not snapshotted.
	Restarts   int
	Kills      int
	KillWrites int
	// Binary is the skiff binary the server runs; "" is this one.
	Binary string
	// DataDir is where the server keeps its state; empty means a temp dir
	// removed afterwards.
	DataDir string
}

// restartNamespace holds the bench's ConfigMaps.
const restartNamespace = "restart-bench"

// Restart measures how long `skiff server --disable-agent` takes to become
// ready (GET /readyz answers 200) on a data dir holding cfg.Objects
// ConfigMaps. It runs the server as a child process, fills the data dir
// through the API, then stops and starts it cfg.Restarts times and kills
// it with SIGKILL and starts it cfg.Kills times. For each start it
// reports the time to ready, when each /readyz check first passed, when
// the server logged etcd ready and listening, and how many warnings and
// errors it logged.
func Restart(ctx context.Context, cfg RestartConfig, out io.Writer) error {
	bin := cfg.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		bin = exe
	}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "skiff-restart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// A kept data dir holds the last run's kubeconfig, naming that run's
	// port: the new one must be read.
	if err := os.Remove(filepath.Join(dir, "admin.kubeconfig")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	srv, err := startChild(ctx, bin, dir)
	if err != nil {
		if srv != nil && srv.cmd != nil {
			srv.stop()
		}
		return fmt.Errorf("%w (server log: %s)", err, filepath.Join(dir, "server.log"))
	}
	defer srv.stop()
	rc := rest.CopyConfig(srv.rc)
	rc.QPS, rc.Burst = -1, 0
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	began := time.Now()
	created, err := fillConfigMaps(ctx, client, cfg)
	if err != nil {
		return err
	}
	if created > 0 {
		el := time.Since(began)
		fmt.Fprintf(out, "filled: %d ConfigMaps of %d B created in %s (%.0f/s, %d clients)\n",
			created, cfg.Size, el.Round(time.Millisecond), float64(created)/el.Seconds(), cfg.Clients)
	}
	fmt.Fprintf(out, "data dir: %s, etcd %s\n", dir, du(filepath.Join(dir, "etcd")))

	var clean, killed []startReport
	for i := range cfg.Restarts {
		srv.stop()
		r, err := timeStart(ctx, srv, cfg.Objects >= 10000)
		if err != nil {
			return fmt.Errorf("clean restart %d: %w (server log: %s)", i+1, err, srv.logPath())
		}
		clean = append(clean, r)
	}
	for i := range cfg.Kills {
		if err := updateBurst(ctx, client, cfg, i); err != nil {
			return err
		}
		if err := srv.Kill9(); err != nil {
			return err
		}
		r, err := timeStart(ctx, srv, cfg.Objects >= 10000)
		if err != nil {
			return fmt.Errorf("kill -9 restart %d: %w (server log: %s)", i+1, err, srv.logPath())
		}
		killed = append(killed, r)
	}
	fmt.Fprintf(out, "objects: %d ConfigMaps\n", cfg.Objects)
	printStarts(out, "clean restart (SIGTERM, start)", clean)
	printStarts(out, fmt.Sprintf("kill -9 after %d updates, start", cfg.KillWrites), killed)
	return nil
}

// fillConfigMaps creates the ConfigMaps missing from the bench namespace,
// named cm-0000000 on, with cfg.Clients concurrent clients.
func fillConfigMaps(ctx context.Context, client kubernetes.Interface, cfg RestartConfig) (int, error) {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: restartNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, err
	}
	have, err := countConfigMaps(ctx, client)
	if err != nil {
		return 0, err
	}
	data := strings.Repeat("x", cfg.Size)
	var (
		next     atomic.Int64
		created  atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	// The namespace may also hold kube-root-ca.crt: start one early (an
	// object that exists is skipped).
	next.Store(int64(max(have-1, 0)) - 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(cfg.Clients, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if i >= int64(cfg.Objects) {
					return
				}
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: configMapName(int(i)), Labels: map[string]string{"bench": "restart"}},
					Data:       map[string]string{"data": data},
				}
				_, err := client.CoreV1().ConfigMaps(restartNamespace).Create(ctx, cm, metav1.CreateOptions{})
				switch {
				case apierrors.IsAlreadyExists(err):
				case err != nil:
					errOnce.Do(func() { firstErr = fmt.Errorf("create %s: %w", cm.Name, err); cancel() })
					return
				default:
					created.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(created.Load()), firstErr
}

func configMapName(i int) string { return fmt.Sprintf("cm-%07d", i) }

// countConfigMaps counts the bench's ConfigMaps from one list of one item
// and its remaining item count.
func countConfigMaps(ctx context.Context, client kubernetes.Interface) (int, error) {
	l, err := client.CoreV1().ConfigMaps(restartNamespace).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, err
	}
	n := len(l.Items)
	if l.RemainingItemCount != nil {
		n += int(*l.RemainingItemCount)
	}
	return n, nil
}

// updateBurst updates cfg.KillWrites ConfigMaps (a different range each
// round), cfg.Clients at a time.
func updateBurst(ctx context.Context, client kubernetes.Interface, cfg RestartConfig, round int) error {
	if cfg.KillWrites <= 0 || cfg.Objects == 0 {
		return nil
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, cfg.Clients+1)
	)
	for range max(cfg.Clients, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.KillWrites) || ctx.Err() != nil {
					return
				}
				name := configMapName(int((int64(round*cfg.KillWrites) + i) % int64(cfg.Objects)))
				patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench-round":"%d"}}}`, round)
				if _, err := client.CoreV1().ConfigMaps(restartNamespace).Patch(ctx, name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
					errs <- fmt.Errorf("update %s: %w", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// startReport is what one start of the server took.
type startReport struct {
	ready time.Duration // to the first /readyz 200
	// checks is when each /readyz check was first seen passing.
	checks map[string]time.Duration
	// etcdReady and listening are the server's own "after" of its
	// "etcd ready" and "skiff server listening" log lines.
	etcdReady, listening time.Duration
	// filled is when the last watch cache of more than one page logged
	// that it was filled (0: none was that large); fillTook how long its
	// fill took.
	filled, fillTook time.Duration
	// warnings counts the WARN and ERROR lines the start logged; publish
	// those of etcd's "failed to publish local member".
	warnings, publish int
}

// readyPoll is how often a start polls /readyz: the resolution of the
// times reported.
const readyPoll = 5 * time.Millisecond

// timeStart starts the server process (stopped or killed before) and
// polls /readyz until it answers 200, noting when each check first passed;
// with largeFill it then waits for the large watch cache to be filled.
func timeStart(ctx context.Context, c *child, largeFill bool) (startReport, error) {
	rep := startReport{checks: map[string]time.Duration{}}
	logStart := int64(0)
	if fi, err := os.Stat(c.logPath()); err == nil {
		logStart = fi.Size()
	}
	tr, err := rest.TransportFor(c.rc)
	if err != nil {
		return rep, err
	}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	url := strings.TrimSuffix(c.rc.Host, "/") + "/readyz"

	logf, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return rep, err
	}
	cmd := exec.Command(c.bin, "server", "--disable-agent", "--data-dir", c.dir, "--https-port", strconv.Itoa(c.port))
	cmd.Stdout, cmd.Stderr = logf, logf
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return rep, fmt.Errorf("starting %s: %w", c.bin, err)
	}
	c.cmd, c.exited = cmd, make(chan error, 1)
	go func() { c.exited <- cmd.Wait(); logf.Close() }()

	deadline := began.Add(5 * time.Minute)
	for {
		select {
		case err := <-c.exited:
			c.exited <- err
			return rep, fmt.Errorf("server exited before it was ready: %v", err)
		case <-ctx.Done():
			return rep, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return rep, errors.New("server not ready within 5 minutes")
		}
		code, body := getReadyz(ctx, hc, url)
		at := time.Since(began)
		for _, line := range strings.Split(body, "\n") {
			if name, ok := strings.CutPrefix(line, "[+]"); ok {
				name = strings.TrimSuffix(name, " ok")
				if _, seen := rep.checks[name]; !seen {
					rep.checks[name] = at
				}
			}
		}
		if code == http.StatusOK {
			rep.ready = at
			break
		}
		time.Sleep(readyPoll)
	}
	// The ConfigMaps' watch cache may still be filling: when they take
	// more than one page (10,000), wait for the line the server logs once
	// it is filled.
	for wait := time.Now().Add(30 * time.Second); largeFill && time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(c.logPath()); err == nil && int64(len(b)) > logStart && bytes.Contains(b[logStart:], []byte(`msg="watch cache filled"`)) {
			break
		}
	}
	readStartLog(c.logPath(), logStart, began, &rep)
	return rep, nil
}

// getReadyz asks for /readyz?verbose; a failure of the request is code 0.
func getReadyz(ctx context.Context, hc *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?verbose", nil)
	if err != nil {
		return 0, ""
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	afterAttr = regexp.MustCompile(`after=([0-9.]+[a-zµ]+)`)
	tookAttr  = regexp.MustCompile(`took=([0-9.]+[a-zµ]+)`)
	timeAttr  = regexp.MustCompile(`^time=(\S+)`)
)

// readStartLog reads the server's log from offset on (one start) into rep.
func readStartLog(path string, offset int64, began time.Time, rep *startReport) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			rep.warnings++
		}
		if strings.Contains(line, "failed to publish local member") {
			rep.publish++
		}
		after := func() time.Duration {
			m := afterAttr.FindStringSubmatch(line)
			if m == nil {
				return 0
			}
			d, _ := time.ParseDuration(m[1])
			return d
		}
		switch {
		case strings.Contains(line, `msg="etcd ready"`):
			rep.etcdReady = after()
		case strings.Contains(line, `msg="skiff server listening"`):
			rep.listening = after()
		case strings.Contains(line, `msg="watch cache filled"`):
			if m := timeAttr.FindStringSubmatch(line); m != nil {
				if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && t.Sub(began) > rep.filled {
					rep.filled = t.Sub(began)
					if m := tookAttr.FindStringSubmatch(line); m != nil {
						rep.fillTook, _ = time.ParseDuration(m[1])
					}
				}
			}
		}
	}
}

func printStarts(out io.Writer, title string, reps []startReport) {
	if len(reps) == 0 {
		return
	}
	fmt.Fprintf(out, "%s, %d times:\n", title, len(reps))
	med := func(f func(startReport) time.Duration) time.Duration {
		ds := make([]time.Duration, len(reps))
		for i, r := range reps {
			ds[i] = f(r)
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	var all []string
	for _, r := range reps {
		all = append(all, r.ready.Round(time.Millisecond).String())
	}
	fmt.Fprintf(out, "  ready (/readyz 200): median %s (each: %s)\n", med(func(r startReport) time.Duration { return r.ready }).Round(time.Millisecond), strings.Join(all, " "))
	fmt.Fprintf(out, "  server log: etcd ready after %s, listening after %s (medians)\n",
		med(func(r startReport) time.Duration { return r.etcdReady }).Round(time.Millisecond),
		med(func(r startReport) time.Duration { return r.listening }).Round(time.Millisecond))
	if med(func(r startReport) time.Duration { return r.filled }) > 0 {
		fmt.Fprintf(out, "  large watch caches (served from etcd until filled): last filled at %s, its fill took %s (medians)\n",
			med(func(r startReport) time.Duration { return r.filled }).Round(time.Millisecond),
			med(func(r startReport) time.Duration { return r.fillTook }).Round(time.Millisecond))
	}
	names := map[string]bool{}
	for _, r := range reps {
		for n := range r.checks {
			names[n] = true
		}
	}
	var sorted []string
	for n := range names {
		if n != "ping" && n != "shutdown" {
			sorted = append(sorted, n)
		}
	}
	slices.SortFunc(sorted, func(a, b string) int {
		return int(med(func(r startReport) time.Duration { return r.checks[a] }) - med(func(r startReport) time.Duration { return r.checks[b] }))
	})
	for _, n := range sorted {
		fmt.Fprintf(out, "  /readyz check %-36s first passed at %s (median)\n", n, med(func(r startReport) time.Duration { return r.checks[n] }).Round(time.Millisecond))
	}
	warn, pub := 0, 0
	for _, r := range reps {
		warn += r.warnings
		pub += r.publish
	}
	fmt.Fprintf(out, "  log: %d warning/error lines over %d starts, %d of them etcd's \"failed to publish local member\"\n", warn, len(reps), pub)
}

// du is the size of the files under dir, for the report.
func du(dir string) string {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
