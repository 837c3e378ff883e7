package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilexec "k8s.io/utils/exec"
)

// testSecond is the probe "second" in these tests.
const testSecond = 5 * time.Millisecond

// fakeRuntime answers exec probes: the probe command is one word naming
// the probe ("liveness", "readiness", "startup"), and the answer is whatever
// the test set for (container ID, word). Unset means failing.
type fakeRuntime struct {
	mu      sync.Mutex
	healthy map[string]bool
	calls   map[string][]time.Time
	block   bool // ExecSync blocks until its context ends
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{healthy: map[string]bool{}, calls: map[string][]time.Time{}}
}

func (f *fakeRuntime) set(id, probe string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthy[id+"/"+probe] = ok
}

func (f *fakeRuntime) count(id, probe string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[id+"/"+probe])
}

func (f *fakeRuntime) firstCall(id, probe string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id+"/"+probe][0]
}

func (f *fakeRuntime) ExecSync(ctx context.Context, id string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	key := id + "/" + cmd[0]
	f.mu.Lock()
	f.calls[key] = append(f.calls[key], time.Now())
	ok, block := f.healthy[key], f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, nil, ctx.Err()
	}
	if ok {
		return []byte(cmd[0] + " ok"), nil, nil
	}
	return []byte(cmd[0] + " not ok"), nil, utilexec.CodeExitError{Err: errors.New("exit 1"), Code: 1}
}

// fakeRecorder keeps events as "type reason message" lines.
type fakeRecorder struct {
	mu     sync.Mutex
	events []string
	refs   []*v1.ObjectReference
}

func (r *fakeRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventtype+" "+reason+" "+message)
	ref, _ := obj.(*v1.ObjectReference)
	r.refs = append(r.refs, ref)
}

func (r *fakeRecorder) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	r.Event(obj, eventtype, reason, fmt.Sprintf(format, args...))
}

func (r *fakeRecorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, eventtype, reason, format string, args ...any) {
	r.Eventf(obj, eventtype, reason, format, args...)
}

func (r *fakeRecorder) snapshot() ([]string, []*v1.ObjectReference) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events), slices.Clone(r.refs)
}

type harness struct {
	m   *Manager
	rt  *fakeRuntime
	rec *fakeRecorder
}

// start runs a Manager until the test ends, and checks that Start returns
// (all workers exited) once its context is cancelled.
func start(t *testing.T) *harness {
	t.Helper()
	h := newHarness()
	h.run(t)
	return h
}

func newHarness() *harness {
	rt := newFakeRuntime()
	rec := &fakeRecorder{}
	m := New(rt, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.second = testSecond
	return &harness{m: m, rt: rt, rec: rec}
}

func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Start did not return after its context was cancelled: workers leaked")
		}
	})
}

func execProbe(name string, mod func(*v1.Probe)) *v1.Probe {
	p := &v1.Probe{
		ProbeHandler:     v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{name}}},
		PeriodSeconds:    1,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
		FailureThreshold: 1,
	}
	if mod != nil {
		mod(p)
	}
	return p
}

func testPod(uid string, containers ...v1.Container) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: types.UID(uid), ResourceVersion: "7"},
		Spec:       v1.PodSpec{Containers: containers},
	}
}

func running(id string) map[string]ContainerInfo {
	return map[string]ContainerInfo{"app": {ID: id, StartedAt: time.Now(), PodIP: "127.0.0.1"}}
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func nextUpdate(t *testing.T, m *Manager) Update {
	t.Helper()
	select {
	case u := <-m.Updates():
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for an update")
		return Update{}
	}
}

// noUpdate asserts that no update arrives while the fake runtime sees n more
// calls of probe on container id: probes run, results do not change.
func noUpdate(t *testing.T, h *harness, id, probe string, n int) {
	t.Helper()
	target := h.rt.count(id, probe) + n
	waitFor(t, fmt.Sprintf("%d more %s probes", n, probe), func() bool { return h.rt.count(id, probe) >= target })
	select {
	case u := <-h.m.Updates():
		t.Fatalf("unexpected update %+v", u)
	default:
	}
}

func TestNoProbes(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{Name: "app"})
	if h.m.Ready("u1", "app") || h.m.Started("u1", "app") {
		t.Error("unknown container is ready or started")
	}
	h.m.Sync(pod, running("c1"))
	if !h.m.Ready("u1", "app") || !h.m.Started("u1", "app") {
		t.Error("running container without probes: want ready and started")
	}
	h.m.Sync(pod, nil)
	if h.m.Ready("u1", "app") || h.m.Started("u1", "app") {
		t.Error("container no longer running: want not ready, not started")
	}
}

func TestReadinessThresholds(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{Name: "app", ReadinessProbe: execProbe("readiness", func(p *v1.Probe) {
		p.SuccessThreshold, p.FailureThreshold = 2, 3
	})})
	h.rt.set("c1", "readiness", true)
	h.m.Sync(pod, running("c1"))
	if h.m.Ready("u1", "app") {
		t.Fatal("ready before the first probe")
	}

	u := nextUpdate(t, h.m)
	want := Update{PodUID: "u1", Container: "app", ContainerID: "c1", Kind: Readiness, Success: true, Message: "readiness ok"}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Fatalf("update (-want +got):\n%s", diff)
	}
	if n := h.rt.count("c1", "readiness"); n < 2 {
		t.Errorf("ready after %d probes, want successThreshold 2", n)
	}
	if !h.m.Ready("u1", "app") {
		t.Error("Ready() = false after the update")
	}
	noUpdate(t, h, "c1", "readiness", 5)

	h.rt.set("c1", "readiness", false)
	before := h.rt.count("c1", "readiness")
	u = nextUpdate(t, h.m)
	if u.Kind != Readiness || u.Success || u.Message != "readiness not ok" {
		t.Fatalf("update = %+v, want readiness failure", u)
	}
	if n := h.rt.count("c1", "readiness") - before; n < 3 {
		t.Errorf("unready after %d failed probes, want failureThreshold 3", n)
	}
	if h.m.Ready("u1", "app") {
		t.Error("Ready() = true after the failure update")
	}
	noUpdate(t, h, "c1", "readiness", 5)
	// Readiness keeps probing while failing.
	h.rt.set("c1", "readiness", true)
	if u := nextUpdate(t, h.m); !u.Success {
		t.Fatalf("update = %+v, want readiness success again", u)
	}
}

func TestLivenessFailureHoldsUntilRestart(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{Name: "app", LivenessProbe: execProbe("liveness", func(p *v1.Probe) { p.FailureThreshold = 3 })})
	h.rt.set("c1", "liveness", true)
	h.m.Sync(pod, running("c1"))
	// Healthy: liveness starts out successful, so nothing changes.
	noUpdate(t, h, "c1", "liveness", 5)

	h.rt.set("c1", "liveness", false)
	before := h.rt.count("c1", "liveness")
	u := nextUpdate(t, h.m)
	want := Update{PodUID: "u1", Container: "app", ContainerID: "c1", Kind: Liveness, Success: false, Message: "liveness not ok"}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Fatalf("update (-want +got):\n%s", diff)
	}
	if n := h.rt.count("c1", "liveness") - before; n != 3 {
		t.Errorf("liveness failed after %d failed probes, want exactly failureThreshold 3", n)
	}

	// On hold: no more probes of this container.
	held := h.rt.count("c1", "liveness")
	time.Sleep(20 * testSecond) // asserting an absence: there is nothing to poll for
	if n := h.rt.count("c1", "liveness"); n != held {
		t.Errorf("liveness probed %d more times after failing", n-held)
	}

	// Restarted container: fresh worker, fresh result, probing again.
	h.rt.set("c2", "liveness", false)
	h.m.Sync(pod, running("c2"))
	u = nextUpdate(t, h.m)
	if u.ContainerID != "c2" || u.Kind != Liveness || u.Success {
		t.Fatalf("update = %+v, want liveness failure of c2", u)
	}

	events, refs := h.rec.snapshot()
	if len(events) < 6 {
		t.Fatalf("got %d events, want one per failed probe (>= 6): %q", len(events), events)
	}
	if events[0] != "Warning Unhealthy Liveness probe failed: liveness not ok" {
		t.Errorf("event = %q", events[0])
	}
	wantRef := &v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "default", Name: "web", UID: "u1", ResourceVersion: "7", FieldPath: "spec.containers{app}"}
	if diff := cmp.Diff(wantRef, refs[0]); diff != "" {
		t.Errorf("event object (-want +got):\n%s", diff)
	}
}

func TestInitialDelay(t *testing.T) {
	h := start(t)
	const delay = 40
	pod := testPod("u1", v1.Container{Name: "app", ReadinessProbe: execProbe("readiness", func(p *v1.Probe) { p.InitialDelaySeconds = delay })})
	h.rt.set("c1", "readiness", true)
	started := time.Now()
	h.m.Sync(pod, map[string]ContainerInfo{"app": {ID: "c1", StartedAt: started}})
	if u := nextUpdate(t, h.m); !u.Success {
		t.Fatalf("update = %+v", u)
	}
	if first := h.rt.firstCall("c1", "readiness"); first.Sub(started) < delay*testSecond {
		t.Errorf("first probe %v after start, want >= %v", first.Sub(started), delay*testSecond)
	}

	// A container that started long ago is probed at once.
	h.rt.set("c2", "readiness", true)
	h.m.Sync(pod, map[string]ContainerInfo{"app": {ID: "c2", StartedAt: time.Now().Add(-time.Hour)}})
	if u := nextUpdate(t, h.m); u.ContainerID != "c2" || !u.Success {
		t.Fatalf("update = %+v", u)
	}
}

func TestStartupGatesOtherProbes(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{
		Name:           "app",
		StartupProbe:   execProbe("startup", func(p *v1.Probe) { p.FailureThreshold = 1000 }),
		LivenessProbe:  execProbe("liveness", nil),
		ReadinessProbe: execProbe("readiness", nil),
	})
	h.rt.set("c1", "liveness", true)
	h.rt.set("c1", "readiness", true)
	h.m.Sync(pod, running("c1"))

	waitFor(t, "startup probes", func() bool { return h.rt.count("c1", "startup") >= 5 })
	if n := h.rt.count("c1", "liveness") + h.rt.count("c1", "readiness"); n != 0 {
		t.Fatalf("liveness/readiness probed %d times before startup succeeded", n)
	}
	if h.m.Started("u1", "app") || h.m.Ready("u1", "app") {
		t.Fatal("started or ready before the startup probe succeeded")
	}

	h.rt.set("c1", "startup", true)
	got := map[Kind]bool{}
	for range 2 {
		u := nextUpdate(t, h.m)
		got[u.Kind] = u.Success
	}
	if diff := cmp.Diff(map[Kind]bool{Startup: true, Readiness: true}, got); diff != "" {
		t.Fatalf("updates (-want +got):\n%s", diff)
	}
	if !h.m.Started("u1", "app") || !h.m.Ready("u1", "app") {
		t.Error("want started and ready")
	}
	// Startup stops once it succeeded; liveness runs now.
	n := h.rt.count("c1", "startup")
	waitFor(t, "liveness probes", func() bool { return h.rt.count("c1", "liveness") >= 3 })
	if m := h.rt.count("c1", "startup"); m != n {
		t.Errorf("startup probed %d more times after succeeding", m-n)
	}
}

func TestStartupFailure(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{
		Name:          "app",
		StartupProbe:  execProbe("startup", func(p *v1.Probe) { p.FailureThreshold = 4 }),
		LivenessProbe: execProbe("liveness", nil),
	})
	h.m.Sync(pod, running("c1"))
	u := nextUpdate(t, h.m)
	if u.Kind != Startup || u.Success {
		t.Fatalf("update = %+v, want startup failure", u)
	}
	if n := h.rt.count("c1", "startup"); n != 4 {
		t.Errorf("startup failed after %d probes, want 4", n)
	}
	if h.m.Started("u1", "app") || h.rt.count("c1", "liveness") != 0 {
		t.Error("failed startup must not start the container's other probes")
	}
}

func TestResetOnNewContainer(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{Name: "app", ReadinessProbe: execProbe("readiness", nil)})
	h.rt.set("c1", "readiness", true)
	h.m.Sync(pod, running("c1"))
	if u := nextUpdate(t, h.m); !u.Success {
		t.Fatalf("update = %+v", u)
	}

	h.m.Sync(pod, running("c2")) // c2 fails its readiness probe
	if h.m.Ready("u1", "app") {
		t.Error("new container is ready before its first probe")
	}
	old := h.rt.count("c1", "readiness")
	// The reset itself is not an update, and c2's failures change nothing.
	noUpdate(t, h, "c2", "readiness", 5)
	if n := h.rt.count("c1", "readiness"); n > old+1 { // one probe may have been in flight
		t.Errorf("old container probed %d more times", n-old)
	}

	h.rt.set("c2", "readiness", true)
	if u := nextUpdate(t, h.m); u.ContainerID != "c2" || !u.Success {
		t.Fatalf("update = %+v, want c2 ready", u)
	}
}

func TestRemovePodStopsWorkers(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{Name: "app", LivenessProbe: execProbe("liveness", nil), ReadinessProbe: execProbe("readiness", nil)})
	h.rt.set("c1", "liveness", true)
	h.m.Sync(pod, running("c1"))
	waitFor(t, "probes", func() bool { return h.rt.count("c1", "liveness") >= 3 })

	h.m.RemovePod("u1")
	if h.m.Ready("u1", "app") || h.m.Started("u1", "app") {
		t.Error("removed pod's container is ready or started")
	}
	n := h.rt.count("c1", "liveness")
	time.Sleep(20 * testSecond) // asserting an absence
	if m := h.rt.count("c1", "liveness"); m > n+1 {
		t.Errorf("liveness probed %d more times after RemovePod", m-n)
	}
}

func TestStartStopsBlockedWorkers(t *testing.T) {
	h := newHarness()
	h.rt.block = true
	pod := testPod("u1", v1.Container{Name: "app", LivenessProbe: execProbe("liveness", nil), ReadinessProbe: execProbe("readiness", nil)})
	// Synced before Start: workers begin when Start runs.
	h.m.Sync(pod, running("c1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Start(ctx) }()
	waitFor(t, "probes in flight", func() bool {
		return h.rt.count("c1", "liveness") > 0 && h.rt.count("c1", "readiness") > 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return while probes were in flight")
	}
	if err := h.m.Start(context.Background()); err == nil {
		t.Error("second Start: want error")
	}
	events, _ := h.rec.snapshot()
	if len(events) != 0 {
		t.Errorf("probes interrupted by shutdown recorded events: %q", events)
	}
	// A Sync after Start returned launches nothing (and must not panic).
	h.m.Sync(pod, running("c2"))
}

func TestDeletingPodStopsLiveness(t *testing.T) {
	h := start(t)
	pod := testPod("u1", v1.Container{Name: "app", LivenessProbe: execProbe("liveness", func(p *v1.Probe) { p.FailureThreshold = 1000 })})
	h.m.Sync(pod, running("c1"))
	waitFor(t, "probes", func() bool { return h.rt.count("c1", "liveness") >= 2 })

	deleting := pod.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	h.m.Sync(deleting, running("c1"))
	n := h.rt.count("c1", "liveness")
	time.Sleep(20 * testSecond) // asserting an absence
	if m := h.rt.count("c1", "liveness"); m > n+1 {
		t.Errorf("liveness probed %d more times while the pod is deleting", m-n)
	}
	select {
	case u := <-h.m.Updates():
		t.Errorf("unexpected update %+v", u)
	default:
	}
}

func TestProbeErrorsAreReportedNotCounted(t *testing.T) {
	h := start(t)
	// httpGet on a named port the container does not declare: the probe
	// cannot run, which must never make the container unready or kill it.
	bad := &v1.Probe{
		ProbeHandler:     v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstrName("nope")}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}
	pod := testPod("u1", v1.Container{Name: "app", LivenessProbe: bad})
	h.m.Sync(pod, running("c1"))
	waitFor(t, "an event", func() bool { e, _ := h.rec.snapshot(); return len(e) >= 2 })
	events, _ := h.rec.snapshot()
	if want := "Warning Unhealthy Liveness probe errored and resulted in unknown state: port nope not found"; events[0] != want {
		t.Errorf("event = %q, want %q", events[0], want)
	}
	select {
	case u := <-h.m.Updates():
		t.Errorf("unexpected update %+v", u)
	default:
	}
}

func TestSidecarProbe(t *testing.T) {
	h := start(t)
	always := v1.ContainerRestartPolicyAlways
	pod := testPod("u1", v1.Container{Name: "main"})
	pod.Spec.InitContainers = []v1.Container{{Name: "app", RestartPolicy: &always, ReadinessProbe: execProbe("readiness", nil)}}
	h.rt.set("c1", "readiness", true)
	h.m.Sync(pod, running("c1"))
	if u := nextUpdate(t, h.m); !u.Success || u.Container != "app" {
		t.Fatalf("update = %+v", u)
	}
	h.rt.set("c1", "readiness", false)
	nextUpdate(t, h.m)
	_, refs := h.rec.snapshot()
	if refs[0].FieldPath != "spec.initContainers{app}" {
		t.Errorf("field path = %q", refs[0].FieldPath)
	}
}

func TestRedirectWarningCountsAsSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:1/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	h := start(t)
	probe := &v1.Probe{
		ProbeHandler:  v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromInt(serverPort(t, srv))}},
		PeriodSeconds: 1,
	}
	h.m.Sync(testPod("u1", v1.Container{Name: "app", ReadinessProbe: probe}), running("c1"))
	if u := nextUpdate(t, h.m); u.Kind != Readiness || !u.Success {
		t.Fatalf("update = %+v, want readiness success", u)
	}
	events, _ := h.rec.snapshot()
	if len(events) == 0 || !strings.HasPrefix(events[0], "Warning ProbeWarning Readiness probe warning: Probe terminated redirects, Response body: ") {
		t.Errorf("events = %q", events)
	}
}

func intstrName(name string) intstr.IntOrString { return intstr.FromString(name) }
