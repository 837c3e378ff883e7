package integration

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// These tests run the server's own Job controller (with upstream's
// back-off durations) and no scheduler or kubelet: the tests play the
// kubelet, writing pod phases through pods/status.

// startJobCluster starts a control plane that runs only the Job
// controller, and returns its admin client.
func startJobCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	c := framework.StartInProcess(t, framework.WithControllers("job"), func(cfg *server.Config) { cfg.DisableScheduler = true })
	return c.Client
}

func createJob(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, mutate func(*batchv1.Job)) *batchv1.Job {
	t.Helper()
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
	if mutate != nil {
		mutate(j)
	}
	j, err := cs.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job %s: %v", name, err)
	}
	return j
}

// jobPods lists the pods that carry the Job's controller-uid label, in
// name order; with active, only those neither finished nor being deleted.
func jobPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, j *batchv1.Job, active bool) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(j.UID)})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if !active || (p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// waitActive waits until the Job has n active pods and returns them.
func waitActive(ctx context.Context, t *testing.T, cs kubernetes.Interface, j *batchv1.Job, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	framework.Eventually(t, 30*time.Second, func() bool {
		pods = jobPods(ctx, t, cs, j, true)
		return len(pods) == n
	})
	return pods
}

// terminatePod plays the kubelet: the pod's container exits with code and
// the pod ends in phase.
func terminatePod(ctx context.Context, t *testing.T, cs kubernetes.Interface, p corev1.Pod, phase corev1.PodPhase, code int32) {
	t.Helper()
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "busybox", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.Now()}}}}
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("pod %s status: %v", p.Name, err)
	}
}

// waitCondition waits until the Job has condition typ True and returns it.
func waitCondition(ctx context.Context, t *testing.T, cs kubernetes.Interface, j *batchv1.Job, typ batchv1.JobConditionType) (*batchv1.Job, batchv1.JobCondition) {
	t.Helper()
	var got *batchv1.Job
	var cond batchv1.JobCondition
	framework.Eventually(t, 30*time.Second, func() bool {
		var err error
		if got, err = cs.BatchV1().Jobs(j.Namespace).Get(ctx, j.Name, metav1.GetOptions{}); err != nil {
			return false
		}
		for _, c := range got.Status.Conditions {
			if c.Type == typ && c.Status == corev1.ConditionTrue {
				cond = c
				return true
			}
		}
		return false
	})
	return got, cond
}

// Upstream's conformance test "Job should adopt matching orphans and
// release non-matching pods": a pod of the Job that loses its controller
// reference is adopted again, and one whose labels stop matching the
// selector is released (and replaced).
func TestJobAdoptsOrphansAndReleasesNonMatchingPods(t *testing.T) {
	cs := startJobCluster(t)
	ctx := ctxT(t)
	j := createJob(ctx, t, cs, "adopt", func(j *batchv1.Job) {
		j.Spec.Parallelism, j.Spec.Completions = ptr.To[int32](2), ptr.To[int32](4)
	})
	pods := waitActive(ctx, t, cs, j, 2)

	orphan := pods[0]
	if _, err := cs.CoreV1().Pods("default").Patch(ctx, orphan.Name, types.MergePatchType,
		[]byte(`{"metadata":{"ownerReferences":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("orphaning %s: %v", orphan.Name, err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		p, err := cs.CoreV1().Pods("default").Get(ctx, orphan.Name, metav1.GetOptions{})
		ref := metav1.GetControllerOf(p)
		return err == nil && p.UID == orphan.UID && ref != nil && ref.UID == j.UID && ref.Kind == "Job"
	})

	released := pods[1]
	if _, err := cs.CoreV1().Pods("default").Patch(ctx, released.Name, types.MergePatchType,
		[]byte(`{"metadata":{"labels":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("relabelling %s: %v", released.Name, err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		p, err := cs.CoreV1().Pods("default").Get(ctx, released.Name, metav1.GetOptions{})
		return err == nil && metav1.GetControllerOf(p) == nil
	})
	// The Job runs its two pods again: the adopted one and a new one.
	got := waitActive(ctx, t, cs, j, 2)
	if got[0].Name != orphan.Name && got[1].Name != orphan.Name {
		t.Errorf("active pods %s, %s: the adopted pod %s is not among them", got[0].Name, got[1].Name, orphan.Name)
	}
}

// A failed pod is replaced only after upstream's first back-off step,
// 10 s after it finished, not at once.
func TestJobFailedPodReplacedAfterBackoff(t *testing.T) {
	cs := startJobCluster(t)
	ctx := ctxT(t)
	j := createJob(ctx, t, cs, "retry", nil)
	first := waitActive(ctx, t, cs, j, 1)[0]
	// FinishedAt is kept to the second: the back-off may end up to 1 s
	// early as the controller sees it.
	failedAt := time.Now().Truncate(time.Second)
	terminatePod(ctx, t, cs, first, corev1.PodFailed, 1)
	second := waitActive(ctx, t, cs, j, 1)[0]
	if second.Name == first.Name {
		t.Fatalf("pod %s still active", first.Name)
	}
	if gap := second.CreationTimestamp.Sub(failedAt); gap < 9*time.Second {
		t.Errorf("replacement created %v after the failure, want about 10s", gap)
	}
	got, err := cs.BatchV1().Jobs("default").Get(ctx, j.Name, metav1.GetOptions{})
	if err != nil || got.Status.Failed != 1 {
		t.Errorf("status.failed = %d (%v), want 1", got.Status.Failed, err)
	}
}

// A podFailurePolicy FailJob rule fails the Job at the first matching
// failure, with upstream's reason and message.
func TestJobPodFailurePolicyFailJob(t *testing.T) {
	cs := startJobCluster(t)
	ctx := ctxT(t)
	j := createJob(ctx, t, cs, "policy", func(j *batchv1.Job) {
		j.Spec.BackoffLimit = ptr.To[int32](6)
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action:      batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
		}}}
	})
	p := waitActive(ctx, t, cs, j, 1)[0]
	terminatePod(ctx, t, cs, p, corev1.PodFailed, 42)
	got, c := waitCondition(ctx, t, cs, j, batchv1.JobFailed)
	want := fmt.Sprintf("Container c for pod default/%s failed with exit code 42 matching FailJob rule at index 0", p.Name)
	if c.Reason != batchv1.JobReasonPodFailurePolicy || c.Message != want {
		t.Errorf("Failed %q %q, want %q %q", c.Reason, c.Message, batchv1.JobReasonPodFailurePolicy, want)
	}
	if got.Status.Failed != 1 || len(jobPods(ctx, t, cs, j, false)) != 1 {
		t.Errorf("status.failed %d, %d pods; want 1 and 1", got.Status.Failed, len(jobPods(ctx, t, cs, j, false)))
	}
}

// backoffLimitPerIndex 0: a failed index is not retried, is listed in
// status.failedIndexes, and the Job fails with FailedIndexes once the
// other indexes are done.
func TestJobBackoffLimitPerIndex(t *testing.T) {
	cs := startJobCluster(t)
	ctx := ctxT(t)
	j := createJob(ctx, t, cs, "perindex", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		j.Spec.BackoffLimitPerIndex = ptr.To[int32](0)
	})
	pods := waitActive(ctx, t, cs, j, 3)
	for _, p := range pods {
		if got := p.Annotations[batchv1.JobIndexFailureCountAnnotation]; got != "0" {
			t.Errorf("pod %s: %s = %q, want 0", p.Name, batchv1.JobIndexFailureCountAnnotation, got)
		}
	}
	for _, p := range pods {
		phase, code := corev1.PodSucceeded, int32(0)
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "1" {
			phase, code = corev1.PodFailed, 1
		}
		terminatePod(ctx, t, cs, p, phase, code)
	}
	got, c := waitCondition(ctx, t, cs, j, batchv1.JobFailed)
	if c.Reason != batchv1.JobReasonFailedIndexes || c.Message != "Job has failed indexes" {
		t.Errorf("Failed %q %q, want FailedIndexes", c.Reason, c.Message)
	}
	if ptr.Deref(got.Status.FailedIndexes, "") != "1" || got.Status.CompletedIndexes != "0,2" || got.Status.Failed != 1 {
		t.Errorf("status %+v, want failedIndexes 1, completedIndexes 0,2, failed 1", got.Status)
	}
	if n := len(jobPods(ctx, t, cs, j, false)); n != 3 {
		t.Errorf("%d pods, want 3 (the failed index not retried)", n)
	}
}

// successPolicy: once index 0 succeeded the Job meets its success
// criteria, the other pods are deleted and the Job is Complete.
func TestJobSuccessPolicy(t *testing.T) {
	cs := startJobCluster(t)
	ctx := ctxT(t)
	j := createJob(ctx, t, cs, "leader", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
	})
	for _, p := range waitActive(ctx, t, cs, j, 3) {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "0" {
			terminatePod(ctx, t, cs, p, corev1.PodSucceeded, 0)
		}
	}
	got, c := waitCondition(ctx, t, cs, j, batchv1.JobComplete)
	if c.Reason != batchv1.JobReasonSuccessPolicy || c.Message != "Matched rules at index 0" {
		t.Errorf("Complete %q %q, want SuccessPolicy, Matched rules at index 0", c.Reason, c.Message)
	}
	var met bool
	for _, c := range got.Status.Conditions {
		met = met || (c.Type == batchv1.JobSuccessCriteriaMet && c.Status == corev1.ConditionTrue && c.Reason == batchv1.JobReasonSuccessPolicy)
	}
	if !met || got.Status.CompletedIndexes != "0" || got.Status.Active != 0 {
		t.Errorf("status %+v, want SuccessCriteriaMet, completedIndexes 0, no active pod", got.Status)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return len(jobPods(ctx, t, cs, j, false)) == 1, nil
	}); err != nil {
		t.Errorf("the other pods were not deleted: %d pods", len(jobPods(ctx, t, cs, j, false)))
	}
}
