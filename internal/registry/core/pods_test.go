package core

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
)

func TestPodsDescriptor(t *testing.T) {
	r := Pods()
	if r.Name != "pods" || r.Singular != "pod" || r.Kind != "Pod" || !r.Namespaced || !r.Status {
		t.Errorf("descriptor = %+v", r)
	}
	if diff := cmp.Diff([]string{"po"}, r.ShortNames); diff != "" {
		t.Errorf("shortNames: %s", diff)
	}
	if diff := cmp.Diff([]string{"all"}, r.Categories); diff != "" {
		t.Errorf("categories: %s", diff)
	}
	if _, ok := r.New().(*corev1.Pod); !ok {
		t.Errorf("New() is %T", r.New())
	}
	if _, ok := r.NewList().(*corev1.PodList); !ok {
		t.Errorf("NewList() is %T", r.NewList())
	}
	// Wrong types must not panic.
	r.Strategy.Default(&corev1.Node{})
	r.Strategy.PrepareForCreate(context.Background(), &corev1.Node{})
	if errs := r.Strategy.Validate(&corev1.Node{}); errs != nil {
		t.Errorf("Validate(node) = %v", errs)
	}
}

func TestPodCreate(t *testing.T) {
	r := Pods()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			SchedulingGates: []corev1.PodSchedulingGate{{Name: "example.com/wait"}},
			Containers: []corev1.Container{{Name: "app", Image: "nginx", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	ctx := context.Background()
	r.Strategy.PrepareForCreate(ctx, pod)
	r.Strategy.Default(pod)
	AdmitPod(pod)
	if errs := r.Strategy.Validate(pod); len(errs) != 0 {
		t.Fatalf("Validate: %v", errs)
	}
	wantStatus := corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: corev1.PodQOSGuaranteed,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "SchedulingGated", Message: "Scheduling is blocked due to non-empty scheduling gates"}},
	}
	if diff := cmp.Diff(wantStatus, pod.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if pod.Generation != 1 {
		t.Errorf("generation = %d, want 1", pod.Generation)
	}

	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debug", Image: "busybox", ImagePullPolicy: corev1.PullAlways, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}}
	pod.Spec.NodeName = "node-1"
	pod.Spec.Containers[0].Image = " nginx"
	assertErrKeys(t, r.Strategy.Validate(pod),
		"FieldValueForbidden spec.ephemeralContainers",
		"FieldValueForbidden spec.nodeName",
		"FieldValueInvalid spec.containers[0].image")
}

func TestPodQOSClass(t *testing.T) {
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	for _, tc := range []struct {
		name string
		res  []corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"nothing", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"limits only", []corev1.ResourceRequirements{{Limits: rl("1", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"equal", []corev1.ResourceRequirements{{Limits: rl("1", "1Gi"), Requests: rl("1", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"lower request", []corev1.ResourceRequirements{{Limits: rl("1", "1Gi"), Requests: rl("500m", "")}}, corev1.PodQOSBurstable},
		{"cpu only", []corev1.ResourceRequirements{{Limits: rl("1", "")}}, corev1.PodQOSBurstable},
		{"one container without", []corev1.ResourceRequirements{{Limits: rl("1", "1Gi")}, {}}, corev1.PodQOSBurstable},
		{"requests only", []corev1.ResourceRequirements{{Requests: rl("1", "")}}, corev1.PodQOSBurstable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &corev1.PodSpec{}
			for _, r := range tc.res {
				spec.Containers = append(spec.Containers, corev1.Container{Resources: r})
			}
			if got := podQOSClass(spec); got != tc.want {
				t.Errorf("podQOSClass = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestAdmitPod(t *testing.T) {
	pod := validPod()
	AdmitPod(pod)
	want := []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
	}
	if diff := cmp.Diff(want, pod.Spec.Tolerations); diff != "" {
		t.Errorf("tolerations (-want +got):\n%s", diff)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("service account = %q/%q", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount)
	}
	if pod.Spec.Priority == nil || *pod.Spec.Priority != 0 {
		t.Errorf("priority = %v, want 0", pod.Spec.Priority)
	}
	if pod.Spec.PreemptionPolicy == nil || *pod.Spec.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Errorf("preemptionPolicy = %v", pod.Spec.PreemptionPolicy)
	}
	AdmitPod(pod) // idempotent
	if len(pod.Spec.Tolerations) != 2 {
		t.Errorf("second AdmitPod added tolerations: %v", pod.Spec.Tolerations)
	}

	// A pod tolerating everything gets none; a critical pod its priority.
	pod = validPod()
	pod.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	pod.Spec.PriorityClassName = "system-node-critical"
	pod.Spec.ServiceAccountName = "builder"
	AdmitPod(pod)
	if len(pod.Spec.Tolerations) != 1 {
		t.Errorf("tolerations = %v, want only the wildcard", pod.Spec.Tolerations)
	}
	if pod.Spec.Priority == nil || *pod.Spec.Priority != 2000001000 {
		t.Errorf("priority = %v, want 2000001000", pod.Spec.Priority)
	}
	if pod.Spec.ServiceAccountName != "builder" {
		t.Errorf("serviceAccountName = %q", pod.Spec.ServiceAccountName)
	}
	AdmitPod(nil)
}

func TestPodUpdate(t *testing.T) {
	r := Pods()
	base := func() *corev1.Pod {
		p := validPod()
		AdmitPod(p)
		p.Generation = 1
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort}
		p.Spec.ActiveDeadlineSeconds = ptr.To[int64](100)
		return p
	}
	for _, tc := range []struct {
		name    string
		mutate  func(p *corev1.Pod)
		want    []string
		wantGen int64
		msg     string
	}{
		{name: "no change", mutate: func(p *corev1.Pod) {}, wantGen: 1},
		{name: "image", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, wantGen: 2},
		{name: "labels only", mutate: func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }, wantGen: 1},
		{name: "add toleration", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, wantGen: 2},
		{name: "change tolerationSeconds", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations[0].TolerationSeconds = ptr.To[int64](10)
		}, wantGen: 2},
		{name: "remove toleration", mutate: func(p *corev1.Pod) { p.Spec.Tolerations = p.Spec.Tolerations[:1] },
			want: []string{"FieldValueForbidden spec.tolerations"}},
		{name: "lower deadline", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](50) }, wantGen: 2},
		{name: "raise deadline", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](500) },
			want: []string{"FieldValueInvalid spec.activeDeadlineSeconds"}},
		{name: "change port", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
		}, want: []string{"FieldValueForbidden spec"},
			msg: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"},
		{name: "add container", mutate: func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Name = "second"
			p.Spec.Containers = append(p.Spec.Containers, c)
		}, want: []string{"FieldValueForbidden spec.containers"}},
		{name: "empty image", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want: []string{"FieldValueRequired spec.containers[0].image", "FieldValueRequired spec.containers[0].image"}},
		{name: "status ignored", mutate: func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, wantGen: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := base()
			pod := old.DeepCopy()
			tc.mutate(pod)
			r.Strategy.PrepareForUpdate(context.Background(), pod, old)
			r.Strategy.Default(pod)
			errs := r.Strategy.ValidateUpdate(pod, old)
			assertErrKeys(t, errs, tc.want...)
			if tc.msg != "" && (len(errs) == 0 || !strings.HasPrefix(errs[0].Error(), "spec: "+tc.msg)) {
				t.Errorf("message = %q, want prefix %q", errs.ToAggregate(), tc.msg)
			}
			if tc.want == nil {
				if pod.Generation != tc.wantGen {
					t.Errorf("generation = %d, want %d", pod.Generation, tc.wantGen)
				}
				if pod.Status.Phase != corev1.PodRunning {
					t.Errorf("status not kept: %v", pod.Status.Phase)
				}
			}
		})
	}
}

func TestPodUpdateGracePeriodNegativeToOne(t *testing.T) {
	old := validPod()
	old.Spec.TerminationGracePeriodSeconds = ptr.To[int64](-1)
	pod := old.DeepCopy()
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	assertErrKeys(t, validatePodObjectUpdate(pod, old))
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	assertErrKeys(t, validatePodObjectUpdate(pod, old), "FieldValueForbidden spec")
}

func TestPodUpdateSchedulingGates(t *testing.T) {
	old := validPod()
	old.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "a"}, {Name: "b"}}
	pod := old.DeepCopy()
	pod.Spec.SchedulingGates = pod.Spec.SchedulingGates[1:]
	pod.Spec.NodeSelector = map[string]string{"zone": "a"}
	assertErrKeys(t, validatePodObjectUpdate(pod, old))
	pod.Spec.SchedulingGates = append(pod.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: "c"})
	assertErrKeys(t, validatePodObjectUpdate(pod, old), "FieldValueForbidden spec.schedulingGates[1].name")
}

func TestPodStatusUpdate(t *testing.T) {
	r := Pods()
	old := validPod()
	old.Spec.NodeName = "node-1"
	old.Spec.RestartPolicy = corev1.RestartPolicyNever
	old.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}}
	pod := old.DeepCopy()
	pod.Spec.NodeName = "elsewhere"
	pod.Spec.Containers[0].Image = "changed"
	pod.Labels = map[string]string{"kept": "yes"}
	pod.Status.Phase = corev1.PodSucceeded
	pod.Status.QOSClass = ""
	pod.Status.PodIP = "10.1.0.5"
	r.Strategy.PrepareForStatusUpdate(context.Background(), pod, old)
	if diff := cmp.Diff(old.Spec, pod.Spec); diff != "" {
		t.Errorf("spec changed by status write:\n%s", diff)
	}
	if pod.Labels["kept"] != "yes" {
		t.Errorf("labels = %v", pod.Labels)
	}
	if diff := cmp.Diff([]corev1.PodIP{{IP: "10.1.0.5"}}, pod.Status.PodIPs); diff != "" {
		t.Errorf("podIPs: %s", diff)
	}
	if pod.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("qosClass = %q, want kept", pod.Status.QOSClass)
	}
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(pod, old))

	pod.Status.QOSClass = corev1.PodQOSGuaranteed
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "10.1.0.6"}}
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(pod, old),
		"FieldValueInvalid status.qosClass",
		"FieldValueForbidden status.containerStatuses[0].state",
		"FieldValueInvalid status.podIPs")
}

func TestPodFields(t *testing.T) {
	pod := validPod()
	pod.Spec.NodeName = "node-1"
	pod.Spec.ServiceAccountName = "default"
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}}, NominatedNodeName: "n2"}
	want := fields.Set{
		"metadata.name": "web", "metadata.namespace": "default",
		"spec.nodeName": "node-1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
		"spec.serviceAccountName": "default", "spec.hostNetwork": "false",
		"status.phase": "Running", "status.podIP": "10.0.0.7", "status.podIPs": "", "status.nominatedNodeName": "n2",
	}
	if diff := cmp.Diff(want, Pods().Fields(pod)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestPodTableRow(t *testing.T) {
	now := time.Now()
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	for _, tc := range []struct {
		name string
		pod  func(p *corev1.Pod)
		want []interface{}
	}{
		{"pending", func(p *corev1.Pod) {}, []interface{}{"web", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"running", func(p *corev1.Pod) {
			p.Spec.NodeName = "node-1"
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: running}}}
		}, []interface{}{"web", "1/1", "Running", "0", "5m", "10.0.0.7", "node-1", "<none>", "<none>"}},
		{"crashloop with restarts", func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", RestartCount: 5,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(2 * time.Minute)}},
			}}}
		}, []interface{}{"web", "0/1", "CrashLoopBackOff", "5 (2m ago)", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"completed", func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}}}
		}, []interface{}{"web", "0/1", "Completed", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"init waiting", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "a"}, {Name: "b"}}
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
				{Name: "b", State: running},
			}}
		}, []interface{}{"web", "0/1", "Init:1/2", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"init crashloop", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "a"}}
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "a", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
			}}
		}, []interface{}{"web", "0/1", "Init:CrashLoopBackOff", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"sidecar counted", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:            []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", Ready: true, Started: ptr.To(true), State: running}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "app", Ready: true, State: running}},
			}
		}, []interface{}{"web", "2/2", "Running", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"terminating", func(p *corev1.Pod) {
			dt := metav1.NewTime(now)
			p.DeletionTimestamp = &dt
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning}
		}, []interface{}{"web", "0/1", "Terminating", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"readiness gates", func(p *corev1.Pod) {
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/a"}, {ConditionType: "example.com/b"}}
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: "example.com/a", Status: corev1.ConditionTrue}}}
		}, []interface{}{"web", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "1/2"}},
		{"scheduling gated", func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"}}}
		}, []interface{}{"web", "0/1", "SchedulingGated", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := validPod()
			pod.CreationTimestamp = ago(5 * time.Minute)
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending}
			tc.pod(pod)
			tbl := Pods().Table
			got := tbl.Row(pod)
			if len(got) != len(tbl.Columns) {
				t.Fatalf("row has %d cells, table %d columns", len(got), len(tbl.Columns))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodTableColumns(t *testing.T) {
	var names []string
	var wide []string
	for _, c := range Pods().Table.Columns {
		names = append(names, c.Name)
		if c.Priority == 1 {
			wide = append(wide, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"}, names); diff != "" {
		t.Errorf("columns: %s", diff)
	}
	if diff := cmp.Diff([]string{"IP", "Node", "Nominated Node", "Readiness Gates"}, wide); diff != "" {
		t.Errorf("wide columns: %s", diff)
	}
}
