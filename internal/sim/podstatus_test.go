package sim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func testPod(policy corev1.RestartPolicy, images ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       corev1.PodSpec{NodeName: "sim-node-0", RestartPolicy: policy},
		Status: corev1.PodStatus{
			Phase:    corev1.PodPending,
			QOSClass: corev1.PodQOSBestEffort,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			},
		},
	}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: img})
	}
	return p
}

func condStatus(st corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
	if i := findPodCondition(st.Conditions, t); i >= 0 {
		return st.Conditions[i].Status
	}
	return ""
}

func TestRunningStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	withInit := testPod(corev1.RestartPolicyAlways, "nginx")
	withInit.Spec.InitContainers = []corev1.Container{
		{Name: "setup", Image: "busybox"},
		{Name: "sidecar", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
	}
	gated := testPod(corev1.RestartPolicyAlways, "nginx")
	gated.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
	hostNet := testPod(corev1.RestartPolicyAlways, "nginx")
	hostNet.Spec.HostNetwork = true
	hasIP := testPod(corev1.RestartPolicyAlways, "nginx")
	hasIP.Status.PodIP, hasIP.Status.PodIPs = "10.1.1.1", []corev1.PodIP{{IP: "10.1.1.1"}}

	for _, tc := range []struct {
		name                string
		pod                 *corev1.Pod
		wantReady           corev1.ConditionStatus
		wantContainersReady corev1.ConditionStatus
		wantContainerReady  []bool
		wantPodIP           string
		wantInitTerminated  []bool
	}{
		{name: "ready", pod: testPod(corev1.RestartPolicyAlways, "nginx", "redis"), wantReady: "True", wantContainersReady: "True", wantContainerReady: []bool{true, true}, wantPodIP: "10.128.0.9"},
		{name: "one fails", pod: testPod(corev1.RestartPolicyAlways, "nginx", "example/fail:1"), wantReady: "False", wantContainersReady: "False", wantContainerReady: []bool{true, false}, wantPodIP: "10.128.0.9"},
		{name: "init and sidecar", pod: withInit, wantReady: "True", wantContainersReady: "True", wantContainerReady: []bool{true}, wantPodIP: "10.128.0.9", wantInitTerminated: []bool{true, false}},
		{name: "readiness gate false", pod: gated, wantReady: "False", wantContainersReady: "True", wantContainerReady: []bool{true}, wantPodIP: "10.128.0.9"},
		{name: "host network", pod: hostNet, wantReady: "True", wantContainersReady: "True", wantContainerReady: []bool{true}, wantPodIP: "127.0.0.2"},
		{name: "keeps pod IP", pod: hasIP, wantReady: "True", wantContainersReady: "True", wantContainerReady: []bool{true}, wantPodIP: "10.1.1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.pod.DeepCopy()
			st := runningStatus(tc.pod, "127.0.0.2", "10.128.0.9", now)
			if diff := cmp.Diff(before, tc.pod); diff != "" {
				t.Errorf("pod modified:\n%s", diff)
			}
			if st.Phase != corev1.PodRunning {
				t.Errorf("phase = %s", st.Phase)
			}
			if st.HostIP != "127.0.0.2" || len(st.HostIPs) != 1 {
				t.Errorf("hostIP = %q %v", st.HostIP, st.HostIPs)
			}
			if st.PodIP != tc.wantPodIP || len(st.PodIPs) != 1 || st.PodIPs[0].IP != tc.wantPodIP {
				t.Errorf("podIP = %q %v, want %q", st.PodIP, st.PodIPs, tc.wantPodIP)
			}
			if st.StartTime == nil || st.QOSClass != corev1.PodQOSBestEffort {
				t.Errorf("startTime %v, qosClass %q", st.StartTime, st.QOSClass)
			}
			for typ, want := range map[corev1.PodConditionType]corev1.ConditionStatus{
				corev1.PodScheduled: "True", corev1.PodInitialized: "True", podReadyToStartContainers: "True",
				corev1.ContainersReady: tc.wantContainersReady, corev1.PodReady: tc.wantReady,
			} {
				if got := condStatus(st, typ); got != want {
					t.Errorf("condition %s = %q, want %q", typ, got, want)
				}
			}
			if len(st.ContainerStatuses) != len(tc.wantContainerReady) {
				t.Fatalf("containerStatuses = %v", st.ContainerStatuses)
			}
			for i, cs := range st.ContainerStatuses {
				if cs.Ready != tc.wantContainerReady[i] || cs.State.Running == nil || cs.Started == nil || !*cs.Started {
					t.Errorf("container %s: ready %v state %+v started %v", cs.Name, cs.Ready, cs.State, cs.Started)
				}
				if cs.Image != tc.pod.Spec.Containers[i].Image || cs.ImageID == "" || cs.ContainerID == "" {
					t.Errorf("container %s: image %q imageID %q containerID %q", cs.Name, cs.Image, cs.ImageID, cs.ContainerID)
				}
			}
			if len(st.InitContainerStatuses) != len(tc.wantInitTerminated) {
				t.Fatalf("initContainerStatuses = %v", st.InitContainerStatuses)
			}
			for i, cs := range st.InitContainerStatuses {
				term := cs.State.Terminated != nil
				if term != tc.wantInitTerminated[i] || (term && (cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed")) {
					t.Errorf("init container %s state %+v", cs.Name, cs.State)
				}
			}
		})
	}
}

func TestCompletedStatus(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(2 * time.Second))
	for _, tc := range []struct {
		name      string
		images    []string
		wantPhase corev1.PodPhase
		wantCodes []int32
	}{
		{name: "succeeds", images: []string{"busybox"}, wantPhase: corev1.PodSucceeded, wantCodes: []int32{0}},
		{name: "fails", images: []string{"busybox", "failing-job"}, wantPhase: corev1.PodFailed, wantCodes: []int32{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(corev1.RestartPolicyNever, tc.images...)
			pod.Status = runningStatus(pod, "127.0.0.2", "10.128.0.1", start)
			st := completedStatus(pod, end)
			if st.Phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s", st.Phase, tc.wantPhase)
			}
			for _, typ := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
				i := findPodCondition(st.Conditions, typ)
				if i < 0 || st.Conditions[i].Status != corev1.ConditionFalse || st.Conditions[i].Reason != "PodCompleted" {
					t.Errorf("condition %s = %+v", typ, st.Conditions)
				}
			}
			for i, cs := range st.ContainerStatuses {
				term := cs.State.Terminated
				if term == nil || term.ExitCode != tc.wantCodes[i] || term.StartedAt != start || term.FinishedAt != end {
					t.Fatalf("container %s state = %+v", cs.Name, cs.State)
				}
				wantReason := "Completed"
				if tc.wantCodes[i] != 0 {
					wantReason = "Error"
				}
				if term.Reason != wantReason || cs.Ready || term.ContainerID != cs.ContainerID {
					t.Errorf("container %s: reason %q ready %v", cs.Name, term.Reason, cs.Ready)
				}
			}
			if st.PodIP != "10.128.0.1" {
				t.Errorf("pod IP lost: %q", st.PodIP)
			}
		})
	}
}

func TestCrashedStatus(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	crash := metav1.NewTime(start.Add(2 * time.Second))
	pod := testPod(corev1.RestartPolicyAlways, "nginx", "fail")
	pod.Status = runningStatus(pod, "127.0.0.2", "10.128.0.1", start)
	st := crashedStatus(pod, crash)
	ok, bad := st.ContainerStatuses[0], st.ContainerStatuses[1]
	if diff := cmp.Diff(pod.Status.ContainerStatuses[0], ok); diff != "" {
		t.Errorf("healthy container changed:\n%s", diff)
	}
	if bad.RestartCount != 1 || bad.Ready || bad.State.Running == nil || bad.State.Running.StartedAt != crash {
		t.Errorf("failing container = %+v", bad)
	}
	last := bad.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 1 || last.Reason != "Error" || last.StartedAt != start || last.FinishedAt != crash {
		t.Errorf("lastState = %+v", bad.LastTerminationState)
	}
	if bad.ContainerID == pod.Status.ContainerStatuses[1].ContainerID {
		t.Error("restarted container kept its id")
	}
	if st.Phase != corev1.PodRunning || condStatus(st, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("phase %s ready %s", st.Phase, condStatus(st, corev1.PodReady))
	}
	again := crashedStatus(&corev1.Pod{Spec: pod.Spec, Status: st}, crash)
	if again.ContainerStatuses[1].RestartCount != 2 {
		t.Errorf("restartCount after two crashes = %d", again.ContainerStatuses[1].RestartCount)
	}
}

func TestCrashDelay(t *testing.T) {
	for _, tc := range []struct {
		runTime  time.Duration
		restarts int32
		want     time.Duration
	}{
		{2 * time.Second, 0, 2 * time.Second},
		{2 * time.Second, 1, 4 * time.Second},
		{2 * time.Second, 3, 16 * time.Second},
		{2 * time.Second, 100, 5 * time.Minute},
		{0, 0, 10 * time.Millisecond},
		{time.Hour, 0, 5 * time.Minute},
	} {
		if got := crashDelay(tc.runTime, tc.restarts); got != tc.want {
			t.Errorf("crashDelay(%v, %d) = %v, want %v", tc.runTime, tc.restarts, got, tc.want)
		}
	}
}
