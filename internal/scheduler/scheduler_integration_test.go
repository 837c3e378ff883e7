package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/scheduler"
	"github.com/skiff-io/skiff/test/framework"
)

func createNode(t *testing.T, ctx context.Context, client kubernetes.Interface, name, cpu string, labels map[string]string, mods ...func(v1.ResourceList)) {
	t.Helper()
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("16Gi"), v1.ResourcePods: resource.MustParse("110")}
	for _, m := range mods {
		m(res)
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	created.Status = v1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("node %s status: %v", name, err)
	}
}

// withMemory sets a node's memory capacity and allocatable.
func withMemory(q string) func(v1.ResourceList) {
	return func(r v1.ResourceList) { r[v1.ResourceMemory] = resource.MustParse(q) }
}

func createPod(t *testing.T, ctx context.Context, client kubernetes.Interface, name, cpu string, mods ...func(*v1.Pod)) {
	t.Helper()
	zero := int64(0)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []v1.Container{{Name: "c", Image: "busybox",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}},
		},
	}
	for _, m := range mods {
		m(pod)
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

func getPod(ctx context.Context, client kubernetes.Interface, name string) *v1.Pod {
	p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

func podScheduledCondition(p *v1.Pod) *v1.PodCondition {
	if p == nil {
		return nil
	}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestSchedulerAgainstServer(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for i := range 3 {
		createNode(t, ctx, client, fmt.Sprintf("node-%d", i), "4", nil)
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: scheduler.DefaultSchedulerName})
	factory := informers.NewSharedInformerFactory(client, 0)
	reg := prometheus.NewPedanticRegistry()
	s, err := scheduler.New(client, factory, recorder, scheduler.Config{Metrics: scheduler.NewMetrics(reg, "")})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Start did not return after cancel")
		}
	}()

	t.Run("pods spread over nodes", func(t *testing.T) {
		for i := range 9 {
			createPod(t, ctx, client, fmt.Sprintf("web-%d", i), "200m")
		}
		perNode := map[string]int{}
		framework.Eventually(t, 30*time.Second, func() bool {
			clear(perNode)
			for i := range 9 {
				p := getPod(ctx, client, fmt.Sprintf("web-%d", i))
				if p == nil || p.Spec.NodeName == "" {
					return false
				}
				perNode[p.Spec.NodeName]++
			}
			return true
		})
		for i := range 3 {
			if n := perNode[fmt.Sprintf("node-%d", i)]; n != 3 {
				t.Errorf("pods per node %v, want 3 on each", perNode)
				break
			}
		}
		framework.Eventually(t, 30*time.Second, func() bool {
			evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web-0,reason=Scheduled"})
			return err == nil && len(evs.Items) > 0 && evs.Items[0].Message == "Successfully assigned default/web-0 to "+getPod(ctx, client, "web-0").Spec.NodeName
		})
	})

	t.Run("too big, then a bigger node", func(t *testing.T) {
		createPod(t, ctx, client, "big", "8")
		want := "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
		framework.Eventually(t, 30*time.Second, func() bool {
			c := podScheduledCondition(getPod(ctx, client, "big"))
			return c != nil && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable && c.Message == want
		})
		framework.Eventually(t, 30*time.Second, func() bool {
			evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=big,reason=FailedScheduling"})
			return err == nil && len(evs.Items) > 0 && evs.Items[0].Type == v1.EventTypeWarning && evs.Items[0].Message == want
		})
		createNode(t, ctx, client, "node-big", "16", map[string]string{"pool": "big"})
		framework.Eventually(t, 30*time.Second, func() bool {
			p := getPod(ctx, client, "big")
			return p != nil && p.Spec.NodeName == "node-big"
		})
	})

	t.Run("preemption", func(t *testing.T) {
		for name, value := range map[string]int32{"low": 10, "high": 1000} {
			pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
			if _, err := client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
				t.Fatalf("priority class %s: %v", name, err)
			}
		}
		pool := func(class string) func(*v1.Pod) {
			return func(p *v1.Pod) {
				p.Spec.NodeSelector = map[string]string{"pool": "big"}
				p.Spec.PriorityClassName = class
			}
		}
		// node-big: 16 cpu, "big" (priority 0) uses 8; "mid" (priority 10)
		// takes the rest. The preemptor needs 4: deleting either is enough,
		// and the lower-priority "big" is the one to go.
		// A finalizer keeps the victim visible while it terminates, as
		// upstream's test holds it, to read its conditions.
		if _, err := client.CoreV1().Pods("default").Patch(ctx, "big", types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":["skiff.test/hold"]}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		createPod(t, ctx, client, "mid", "8", pool("low"))
		framework.Eventually(t, 30*time.Second, func() bool {
			p := getPod(ctx, client, "mid")
			return p != nil && p.Spec.NodeName == "node-big"
		})
		createPod(t, ctx, client, "preemptor", "4", pool("high"))
		var victim *v1.Pod
		framework.Eventually(t, 30*time.Second, func() bool {
			victim = getPod(ctx, client, "big")
			return victim != nil && victim.DeletionTimestamp != nil
		})
		// Held by its finalizer, the victim says why it goes.
		var found bool
		for _, c := range victim.Status.Conditions {
			if c.Type == v1.DisruptionTarget {
				found = c.Status == v1.ConditionTrue && c.Reason == v1.PodReasonPreemptionByScheduler &&
					c.Message == "default-scheduler: preempting to accommodate a higher priority pod"
			}
		}
		if !found {
			t.Errorf("victim conditions %+v, want DisruptionTarget (PreemptionByScheduler)", victim.Status.Conditions)
		}
		if _, err := client.CoreV1().Pods("default").Patch(ctx, "big", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		// Only once it is gone does the preemptor take its place.
		framework.Eventually(t, 30*time.Second, func() bool {
			p := getPod(ctx, client, "preemptor")
			return p != nil && p.Spec.NodeName == "node-big"
		})
		if p := getPod(ctx, client, "mid"); p == nil || p.DeletionTimestamp != nil {
			t.Errorf("the priority-10 pod was preempted although deleting the priority-0 one was enough")
		}
		framework.Eventually(t, 30*time.Second, func() bool {
			evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=big,reason=Preempted"})
			return err == nil && len(evs.Items) > 0
		})
		if p := getPod(ctx, client, "preemptor"); p.Status.NominatedNodeName != "node-big" {
			t.Errorf("nominatedNodeName = %q, want node-big", p.Status.NominatedNodeName)
		}
	})

	// Twelve pods were bound (web-0…8, big, mid, preemptor); big and the
	// preemptor each failed at least once, and each failure tried a
	// preemption, the preemptor's with one victim.
	t.Run("metrics", func(t *testing.T) {
		families, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				key := f.GetName()
				for _, l := range m.GetLabel() {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				switch {
				case m.GetCounter() != nil:
					got[key] = m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					got[key] = m.GetGauge().GetValue()
				case m.GetHistogram() != nil:
					got[key+",count"] = float64(m.GetHistogram().GetSampleCount())
					got[key+",sum"] = m.GetHistogram().GetSampleSum()
				}
			}
		}
		exact := map[string]float64{
			"scheduler_schedule_attempts_total,profile=default-scheduler,result=scheduled":                   12,
			"scheduler_scheduling_attempt_duration_seconds,profile=default-scheduler,result=scheduled,count": 12,
			"scheduler_pod_scheduling_attempts,count":                                                        12,
			"scheduler_pending_pods,queue=active":                                                            0,
			"scheduler_pending_pods,queue=backoff":                                                           0,
			"scheduler_pending_pods,queue=unschedulable":                                                     0,
		}
		for k, want := range exact {
			if v, ok := got[k]; !ok || v != want {
				t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
			}
		}
		atLeast := map[string]float64{
			"scheduler_schedule_attempts_total,profile=default-scheduler,result=unschedulable": 2,
			"scheduler_scheduling_algorithm_duration_seconds,count":                            14,
			"scheduler_pod_scheduling_sli_duration_seconds,attempts=1,count":                   10,
			"scheduler_preemption_attempts_total":                                              2,
			"scheduler_preemption_victims,count":                                               1,
			"scheduler_preemption_victims,sum":                                                 1,
		}
		for k, want := range atLeast {
			if v := got[k]; v < want {
				t.Errorf("%s = %v, want at least %v", k, v, want)
			}
		}
		problems, err := testutil.GatherAndLint(reg)
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", err, problems)
		}
	})
}
