package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	fakescale "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeMetrics is the resource metrics API of a test: each pod's cpu
// usage, sampled at sampleAt over 30s.
type fakeMetrics struct {
	mu    sync.Mutex
	pods  map[string]map[string]fakePodUsage // by namespace, name
	err   error
	calls int
}

type fakePodUsage struct {
	labels labels.Set
	usage  PodUsage
}

func (f *fakeMetrics) PodUsage(_ context.Context, namespace string, selector labels.Selector) ([]PodUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	var out []PodUsage
	for _, p := range f.pods[namespace] {
		if selector.Matches(p.labels) {
			out = append(out, p.usage)
		}
	}
	return out, nil
}

func (f *fakeMetrics) set(pod *corev1.Pod, milliCPU int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pods[pod.Namespace] == nil {
		f.pods[pod.Namespace] = map[string]fakePodUsage{}
	}
	f.pods[pod.Namespace][pod.Name] = fakePodUsage{
		labels: labels.Set(pod.Labels),
		usage: PodUsage{Name: pod.Name, Timestamp: sampleAt, Window: 30 * time.Second, Containers: []ContainerUsage{
			{Name: "app", Usage: cpu(milliCPU)},
		}},
	}
}

// harness runs one Controller over fakes. The informers are never
// started: the test puts objects in their caches and calls sync itself,
// and after each sync copies what the controller wrote back into the
// HPA cache, as the informer would.
type harness struct {
	t        testing.TB
	ctx      context.Context
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	metrics  *fakeMetrics
	clock    *clocktesting.FakeClock
	recorder *record.FakeRecorder
	c        *Controller

	mu          sync.Mutex
	scales      map[string]*autoscalingv1.Scale // by namespace/name
	scaleWrites int
	failScale   error
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		client:   fake.NewClientset(),
		metrics:  &fakeMetrics{pods: map[string]map[string]fakePodUsage{}},
		clock:    clocktesting.NewFakeClock(t0),
		recorder: record.NewFakeRecorder(1000),
		scales:   map[string]*autoscalingv1.Scale{},
	}
	h.factory = informers.NewSharedInformerFactory(h.client, 0)
	fs := &fakescale.FakeScaleClient{}
	fs.AddReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		g := a.(k8stesting.GetAction)
		s, ok := h.scales[g.GetNamespace()+"/"+g.GetName()]
		if !ok {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, g.GetName())
		}
		return true, s.DeepCopy(), nil
	})
	fs.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.failScale != nil {
			return true, nil, h.failScale
		}
		s := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		h.scales[a.GetNamespace()+"/"+s.Name] = s.DeepCopy()
		h.scaleWrites++
		return true, s.DeepCopy(), nil
	})
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{appsv1.SchemeGroupVersion})
	mapper.Add(appsv1.SchemeGroupVersion.WithKind("Deployment"), meta.RESTScopeNamespace)

	c, err := New(h.client, h.metrics, fs, mapper, h.factory, h.recorder, Options{Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	// Start only to own the queue's lifetime: with the informers never
	// started it waits for their caches until the test ends, and then
	// shuts the queue (and its timers) down.
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

func (h *harness) hpaIndexer() cache.Indexer {
	return h.factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer().GetIndexer()
}

// addTarget adds Deployment ns/name at replicas, whose scale selects
// app=name, and n running pods of it, each using cpu milli-cpus.
func (h *harness) addTarget(name string, replicas int32, n int, milliCPU int64) {
	h.t.Helper()
	h.mu.Lock()
	h.scales["ns/"+name] = &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
		Status:     autoscalingv1.ScaleStatus{Replicas: replicas, Selector: "app=" + name},
	}
	h.mu.Unlock()
	pods := h.factory.Core().V1().Pods().Informer().GetIndexer()
	for i := range n {
		p := newPod(fmt.Sprintf("%s-%d", name, i), func(p *corev1.Pod) { p.Labels = map[string]string{"app": name} })
		if err := pods.Add(p); err != nil {
			h.t.Fatal(err)
		}
		h.metrics.set(p, milliCPU)
	}
}

func (h *harness) setUsage(name string, n int, milliCPU int64) {
	for i := range n {
		p := newPod(fmt.Sprintf("%s-%d", name, i), func(p *corev1.Pod) { p.Labels = map[string]string{"app": name} })
		h.metrics.set(p, milliCPU)
	}
}

func (h *harness) replicas(name string) int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.scales["ns/"+name].Spec.Replicas
}

func (h *harness) addHPA(hpa *autoscalingv2.HorizontalPodAutoscaler) {
	h.t.Helper()
	created, err := h.client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).Create(h.ctx, hpa, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.hpaIndexer().Add(created); err != nil {
		h.t.Fatal(err)
	}
}

// sync syncs key and brings the HPA cache up to date with the client.
func (h *harness) sync(key string) error {
	h.t.Helper()
	err := h.c.sync(h.ctx, key)
	ns, n, _ := cache.SplitMetaNamespaceKey(key)
	cur, gerr := h.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(h.ctx, n, metav1.GetOptions{})
	if gerr == nil {
		if uerr := h.hpaIndexer().Update(cur); uerr != nil {
			h.t.Fatal(uerr)
		}
	}
	return err
}

func (h *harness) mustSync(key string) {
	h.t.Helper()
	if err := h.sync(key); err != nil {
		h.t.Fatalf("sync %s: %v", key, err)
	}
}

func (h *harness) hpa(name string) *autoscalingv2.HorizontalPodAutoscaler {
	h.t.Helper()
	hpa, err := h.client.AutoscalingV2().HorizontalPodAutoscalers("ns").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return hpa
}

// events drains the events recorded so far.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// statusWrites counts the HPA status updates made so far.
func (h *harness) statusWrites() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func cpuMetric(target int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
	}}
}

func externalMetric(name string) autoscalingv2.MetricSpec {
	v := resource.MustParse("10")
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: name},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &v},
	}}
}

// newHPA is HPA ns/name over Deployment ns/name.
func newHPA(name string, minReplicas, maxReplicas int32, metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), Generation: 1},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    &minReplicas,
			MaxReplicas:    maxReplicas,
			Metrics:        metrics,
		},
	}
}

// cond is a condition as a test states it, without its time.
type cond struct {
	Type   autoscalingv2.HorizontalPodAutoscalerConditionType
	Status corev1.ConditionStatus
	Reason string
}

func conds(hpa *autoscalingv2.HorizontalPodAutoscaler) []cond {
	var out []cond
	for _, c := range hpa.Status.Conditions {
		out = append(out, cond{c.Type, c.Status, c.Reason})
	}
	return out
}

func condition(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType) autoscalingv2.HorizontalPodAutoscalerCondition {
	for _, c := range hpa.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return autoscalingv2.HorizontalPodAutoscalerCondition{}
}

const (
	able    = autoscalingv2.AbleToScale
	active  = autoscalingv2.ScalingActive
	limited = autoscalingv2.ScalingLimited
	yes     = corev1.ConditionTrue
	no      = corev1.ConditionFalse
)

func TestScaleUpOnHighCPU(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 3, 3, 900) // 90% of 1 cpu against 50%: 3 × 1.8 → 6
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
	h.mustSync("ns/web")

	if got := h.replicas("web"); got != 6 {
		t.Fatalf("replicas = %d, want 6", got)
	}
	want := []string{"Normal SuccessfulRescale New size: 6; reason: cpu resource utilization (percentage of request) above target"}
	if diff := cmp.Diff(want, h.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	hpa := h.hpa("web")
	util := int32(90)
	wantStatus := autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptrTo[int64](1),
		LastScaleTime:      &metav1.Time{Time: t0},
		CurrentReplicas:    3,
		DesiredReplicas:    6,
		CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &util, AverageValue: resource.NewMilliQuantity(900, resource.DecimalSI)},
		}}},
		Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{
			{Type: able, Status: yes, Reason: "SucceededRescale", Message: "the HPA controller was able to update the target scale to 6", LastTransitionTime: metav1.NewTime(t0)},
			{Type: active, Status: yes, Reason: "ValidMetricFound", Message: "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)", LastTransitionTime: metav1.NewTime(t0)},
			{Type: limited, Status: no, Reason: "DesiredWithinRange", Message: "the desired count is within the acceptable range", LastTransitionTime: metav1.NewTime(t0)},
		},
	}
	if !apiequality.Semantic.DeepEqual(wantStatus, hpa.Status) {
		t.Errorf("status:\n%s", cmp.Diff(wantStatus, hpa.Status))
	}
}

func TestNoChangeWithinTolerance(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 3, 3, 520) // 52% against 50%: within 10%
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
	h.mustSync("ns/web")

	if got := h.replicas("web"); got != 3 || h.scaleWrites != 0 {
		t.Fatalf("replicas = %d after %d scale writes, want 3 and none", got, h.scaleWrites)
	}
	if ev := h.events(); len(ev) != 0 {
		t.Errorf("events = %q, want none", ev)
	}
	hpa := h.hpa("web")
	if hpa.Status.DesiredReplicas != 3 || hpa.Status.CurrentReplicas != 3 || hpa.Status.LastScaleTime != nil {
		t.Errorf("status = %+v, want 3 current and desired, no lastScaleTime", hpa.Status)
	}
	want := []cond{{able, yes, "ReadyForNewScale"}, {active, yes, "ValidMetricFound"}, {limited, no, "DesiredWithinRange"}}
	if diff := cmp.Diff(want, conds(hpa)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
}

func TestScaleDownAfterStabilizationWindow(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 4, 4, 100) // 10% against 50%: 4 × 0.2 → 1
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))

	// The first sync remembers the current 4 (History.Seed), which holds
	// the scale-down for the 5-minute window.
	for _, after := range []time.Duration{0, 2 * time.Minute, 3 * time.Minute} {
		h.clock.SetTime(t0.Add(after))
		h.mustSync("ns/web")
		if got := h.replicas("web"); got != 4 {
			t.Fatalf("at +%v: replicas = %d, want 4 (stabilized)", after, got)
		}
		if c := condition(h.hpa("web"), able); c.Reason != "ScaleDownStabilized" {
			t.Fatalf("at +%v: AbleToScale = %+v, want ScaleDownStabilized", after, c)
		}
	}
	if ev := h.events(); len(ev) != 0 {
		t.Fatalf("events while stabilized = %q", ev)
	}
	// AbleToScale stayed True: its transition time is the first sync's.
	if c := condition(h.hpa("web"), able); !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("AbleToScale lastTransitionTime = %v, want %v", c.LastTransitionTime, t0)
	}

	h.clock.SetTime(t0.Add(5*time.Minute + time.Second))
	h.mustSync("ns/web")
	if got := h.replicas("web"); got != 1 {
		t.Fatalf("after the window: replicas = %d, want 1", got)
	}
	want := []string{"Normal SuccessfulRescale New size: 1; reason: All metrics below target"}
	if diff := cmp.Diff(want, h.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := h.hpa("web").Status.LastScaleTime; got == nil || !got.Time.Equal(t0.Add(5*time.Minute+time.Second)) {
		t.Errorf("lastScaleTime = %v", got)
	}
}

func TestTargetScaledToZero(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 0, 0, 0)
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
	h.mustSync("ns/web")

	if h.replicas("web") != 0 || h.scaleWrites != 0 || h.metrics.calls != 0 {
		t.Fatalf("replicas %d, %d scale writes, %d metrics calls: want 0, 0, 0", h.replicas("web"), h.scaleWrites, h.metrics.calls)
	}
	hpa := h.hpa("web")
	c := condition(hpa, active)
	if c.Status != no || c.Reason != "ScalingDisabled" || c.Message != "scaling is disabled since the replica count of the target is zero" {
		t.Errorf("ScalingActive = %+v", c)
	}
	if hpa.Status.DesiredReplicas != 0 || hpa.Status.CurrentReplicas != 0 {
		t.Errorf("status = %+v", hpa.Status)
	}
}

func TestBelowMinScalesToMinWithoutMetrics(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 1, 1, 10)
	h.addHPA(newHPA("web", 3, 10, cpuMetric(50)))
	h.mustSync("ns/web")

	if got := h.replicas("web"); got != 3 {
		t.Fatalf("replicas = %d, want 3", got)
	}
	if h.metrics.calls != 0 {
		t.Errorf("metrics read %d times, want none", h.metrics.calls)
	}
	want := []string{"Normal SuccessfulRescale New size: 3; reason: Current number of replicas below Spec.MinReplicas"}
	if diff := cmp.Diff(want, h.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	hpa := h.hpa("web")
	if hpa.Status.CurrentReplicas != 1 || hpa.Status.DesiredReplicas != 3 || hpa.Status.LastScaleTime == nil {
		t.Errorf("status = %+v", hpa.Status)
	}
}

func TestMetricsMissing(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		noPods    bool
		wantCause string
	}{
		{
			name:      "api error",
			err:       errors.New("the server could not find the requested resource (get pods.metrics.k8s.io)"),
			wantCause: "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)",
		},
		{
			name:      "no samples",
			noPods:    true,
			wantCause: "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addTarget("web", 3, 3, 900)
			h.metrics.err = tt.err
			if tt.noPods {
				h.metrics.pods = map[string]map[string]fakePodUsage{}
			}
			h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
			h.mustSync("ns/web")

			if h.scaleWrites != 0 {
				t.Fatalf("%d scale writes, want none", h.scaleWrites)
			}
			c := condition(h.hpa("web"), active)
			if c.Status != no || c.Reason != "FailedGetResourceMetric" || c.Message != "the HPA was unable to compute the replica count: "+tt.wantCause {
				t.Errorf("ScalingActive = %+v", c)
			}
			want := []string{
				"Warning FailedGetResourceMetric " + tt.wantCause,
				"Warning FailedComputeMetricsReplicas invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: " + tt.wantCause,
			}
			if diff := cmp.Diff(want, h.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if got := h.hpa("web").Status.CurrentReplicas; got != 3 {
				t.Errorf("currentReplicas = %d, want 3", got)
			}
		})
	}
}

func TestExternalMetricNotServed(t *testing.T) {
	const cause = "unable to get external metric ns/queue/<none>: unable to fetch metrics from external metrics API: no external metrics API (external.metrics.k8s.io) registered"
	for _, tt := range []struct {
		name         string
		metrics      []autoscalingv2.MetricSpec
		cpu          int64
		wantReplicas int32
		wantActive   cond
	}{
		{"external only", []autoscalingv2.MetricSpec{externalMetric("queue")}, 900, 3, cond{active, no, "FailedGetExternalMetric"}},
		// A failed metric blocks a scale-down only.
		{"with cpu above target", []autoscalingv2.MetricSpec{externalMetric("queue"), cpuMetric(50)}, 900, 6, cond{active, yes, "ValidMetricFound"}},
		{"with cpu below target", []autoscalingv2.MetricSpec{externalMetric("queue"), cpuMetric(50)}, 100, 3, cond{active, no, "FailedGetExternalMetric"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addTarget("web", 3, 3, tt.cpu)
			h.addHPA(newHPA("web", 1, 10, tt.metrics...))
			h.mustSync("ns/web")

			if got := h.replicas("web"); got != tt.wantReplicas {
				t.Errorf("replicas = %d, want %d", got, tt.wantReplicas)
			}
			hpa := h.hpa("web")
			c := condition(hpa, active)
			if got := (cond{c.Type, c.Status, c.Reason}); got != tt.wantActive {
				t.Errorf("ScalingActive = %+v, want %+v", c, tt.wantActive)
			}
			if tt.wantActive.Status == no && c.Message != "the HPA was unable to compute the replica count: "+cause {
				t.Errorf("ScalingActive message = %q", c.Message)
			}
			ev := h.events()
			if len(ev) == 0 || ev[0] != "Warning FailedGetExternalMetric "+cause {
				t.Errorf("events = %q, want FailedGetExternalMetric first", ev)
			}
		})
	}
}

func TestFailedGetScale(t *testing.T) {
	h := newHarness(t)
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50))) // no Deployment
	h.mustSync("ns/web")

	c := condition(h.hpa("web"), able)
	if c.Status != no || c.Reason != "FailedGetScale" || !strings.HasPrefix(c.Message, "the HPA controller was unable to get the target's current scale: ") {
		t.Errorf("AbleToScale = %+v", c)
	}
	if ev := h.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning FailedGetScale ") {
		t.Errorf("events = %q", ev)
	}
}

func TestFailedRescaleIsRetried(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 3, 3, 900)
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
	h.failScale = apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("stale"))
	if err := h.sync("ns/web"); err == nil {
		t.Fatal("sync succeeded, want the rescale error")
	}
	c := condition(h.hpa("web"), able)
	if c.Status != no || c.Reason != "FailedUpdateScale" {
		t.Errorf("AbleToScale = %+v", c)
	}
	if ev := h.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning FailedRescale New size: 6; reason: cpu resource utilization (percentage of request) above target; error: ") {
		t.Errorf("events = %q", ev)
	}
}

func TestStatusNotRewrittenWhenUnchanged(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 3, 3, 520)
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
	h.mustSync("ns/web")
	if n := h.statusWrites(); n != 1 {
		t.Fatalf("first sync: %d status writes, want 1", n)
	}
	first := h.hpa("web")
	for i := 1; i <= 3; i++ {
		h.clock.Step(15 * time.Second)
		h.mustSync("ns/web")
	}
	if n := h.statusWrites(); n != 1 {
		t.Errorf("after unchanged syncs: %d status writes, want still 1", n)
	}

	// A new reading is written, and the conditions keep their times.
	h.setUsage("web", 3, 530)
	h.clock.Step(15 * time.Second)
	h.mustSync("ns/web")
	if n := h.statusWrites(); n != 2 {
		t.Errorf("after a new reading: %d status writes, want 2", n)
	}
	if diff := cmp.Diff(first.Status.Conditions, h.hpa("web").Status.Conditions); diff != "" {
		t.Errorf("conditions changed (-before +after):\n%s", diff)
	}
}

func TestHistoryDroppedOnDelete(t *testing.T) {
	h := newHarness(t)
	h.addTarget("web", 3, 3, 520)
	h.addHPA(newHPA("web", 1, 10, cpuMetric(50)))
	h.mustSync("ns/web")
	if !h.c.hasHistory("ns/web") {
		t.Fatal("no History after a sync")
	}
	if err := h.client.AutoscalingV2().HorizontalPodAutoscalers("ns").Delete(h.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.hpaIndexer().Delete(newHPA("web", 1, 10)); err != nil {
		t.Fatal(err)
	}
	h.mustSync("ns/web")
	if h.c.hasHistory("ns/web") {
		t.Error("History kept after the HPA was deleted")
	}
}

func TestNewObjectStartsNewHistory(t *testing.T) {
	h := newHarness(t)
	a := h.c.historyFor("ns/web", "uid-1")
	if h.c.historyFor("ns/web", "uid-1") != a {
		t.Fatal("same object, another History")
	}
	if h.c.historyFor("ns/web", "uid-2") == a {
		t.Fatal("a new object of the same name kept the old History")
	}
}

func TestSamples(t *testing.T) {
	pod := func(name string, containers ...ContainerUsage) PodUsage {
		return PodUsage{Name: name, Timestamp: sampleAt, Window: time.Minute, Containers: containers}
	}
	app := func(rl corev1.ResourceList) ContainerUsage { return ContainerUsage{Name: "app", Usage: rl} }
	side := func(rl corev1.ResourceList) ContainerUsage { return ContainerUsage{Name: "side", Usage: rl} }
	sample := func(v int64) Sample { return Sample{Value: v, Timestamp: sampleAt, Window: time.Minute} }
	usage := []PodUsage{
		pod("both", app(cpu(300)), side(cpu(200))),
		pod("side-lacks-cpu", app(cpu(300)), side(memory("1Mi"))),
		pod("no-containers"),
	}
	for _, tt := range []struct {
		name    string
		metric  ResourceMetric
		usage   []PodUsage
		want    map[string]Sample
		wantErr string
	}{
		{name: "resource sums containers", metric: ResourceMetric{Name: corev1.ResourceCPU}, usage: usage,
			want: map[string]Sample{"both": sample(500)}},
		{name: "container", metric: ResourceMetric{Name: corev1.ResourceCPU, Container: "app"}, usage: usage[:2],
			want: map[string]Sample{"both": sample(300), "side-lacks-cpu": sample(300)}},
		{name: "container without the resource", metric: ResourceMetric{Name: corev1.ResourceCPU, Container: "side"}, usage: usage[:2],
			want: map[string]Sample{"both": sample(200)}},
		{name: "container missing", metric: ResourceMetric{Name: corev1.ResourceCPU, Container: "app"}, usage: usage,
			wantErr: "failed to get container metrics: container app not present in metrics for pod ns/no-containers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := samples(tt.usage, tt.metric, "ns")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIMetricsClient(t *testing.T) {
	pm := func(name, app string) *metricsv1beta1.PodMetrics {
		return &metricsv1beta1.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": app}},
			Timestamp:  metav1.NewTime(sampleAt),
			Window:     metav1.Duration{Duration: 30 * time.Second},
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "app", Usage: cpu(250)}},
		}
	}
	// The fake's guess of the resource from the kind (podmetricses) is
	// not the API's (pods), so the objects go in under the API's.
	mc := metricsfake.NewSimpleClientset()
	gvr := metricsv1beta1.SchemeGroupVersion.WithResource("pods")
	for _, o := range []*metricsv1beta1.PodMetrics{pm("web-0", "web"), pm("db-0", "db")} {
		if err := mc.Tracker().Create(gvr, o, o.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	got, err := NewMetricsClient(mc).PodUsage(context.Background(), "ns", labels.SelectorFromSet(labels.Set{"app": "web"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []PodUsage{{Name: "web-0", Timestamp: sampleAt, Window: 30 * time.Second, Containers: []ContainerUsage{{Name: "app", Usage: cpu(250)}}}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

// BenchmarkSync1000HPAs is one pass over 1,000 HPAs, each over a target
// with 5 pods, in 100 namespaces, against fakes. "steady" is the common
// case, nothing to write; "changing" alternates the usage so that every
// HPA's status is written each pass. The fake clientset's object tracker
// costs milliseconds a write, which would swamp the controller, so the
// HPAs live in the informer cache and a reactor takes the status writes.
func BenchmarkSync1000HPAs(b *testing.B) {
	for _, changing := range []bool{false, true} {
		name := "steady"
		if changing {
			name = "changing"
		}
		b.Run(name, func(b *testing.B) {
			h := newHarness(b)
			written := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
			h.client.PrependReactor("update", "horizontalpodautoscalers", func(a k8stesting.Action) (bool, runtime.Object, error) {
				hpa := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv2.HorizontalPodAutoscaler)
				written[hpa.Namespace+"/"+hpa.Name] = hpa
				return true, hpa, nil
			})
			var keys []string
			pods := h.factory.Core().V1().Pods().Informer().GetIndexer()
			for i := range 1000 {
				ns := fmt.Sprintf("ns-%d", i%100)
				n := fmt.Sprintf("app-%d", i)
				h.scales[ns+"/"+n] = &autoscalingv1.Scale{
					ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns},
					Spec:       autoscalingv1.ScaleSpec{Replicas: 5},
					Status:     autoscalingv1.ScaleStatus{Replicas: 5, Selector: "app=" + n},
				}
				for j := range 5 {
					p := newPod(fmt.Sprintf("%s-%d", n, j), func(p *corev1.Pod) {
						p.Namespace, p.Labels = ns, map[string]string{"app": n}
					})
					if err := pods.Add(p); err != nil {
						b.Fatal(err)
					}
					h.metrics.set(p, 500)
				}
				hpa := newHPA(n, 1, 10, cpuMetric(50))
				hpa.Namespace = ns
				if err := h.hpaIndexer().Add(hpa); err != nil {
					b.Fatal(err)
				}
				keys = append(keys, ns+"/"+n)
			}
			// refresh brings the written statuses back into the cache,
			// as the informer would.
			refresh := func() {
				for _, hpa := range written {
					if err := h.hpaIndexer().Update(hpa); err != nil {
						b.Fatal(err)
					}
				}
				clear(written)
			}
			setUsage := func(milliCPU int64) {
				for _, byName := range h.metrics.pods {
					for _, p := range byName {
						p.usage.Containers[0].Usage = cpu(milliCPU)
					}
				}
			}
			pass := func() {
				for _, k := range keys {
					if err := h.c.sync(h.ctx, k); err != nil {
						b.Fatal(err)
					}
				}
			}
			pass() // the first pass writes every status
			refresh()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if changing {
					// 48% or 52% of 1 cpu against 50%: within the
					// tolerance, a new status each pass.
					b.StopTimer()
					setUsage(int64(480 + 40*(i%2)))
					refresh()
					b.StartTimer()
				}
				pass()
			}
			b.StopTimer()
			if changing && len(written) != len(keys) {
				b.Fatalf("%d statuses written in the last pass, want %d", len(written), len(keys))
			}
			if !changing && len(written) != 0 {
				b.Fatalf("%d statuses written in a steady pass, want none", len(written))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/hpa")
		})
	}
}
