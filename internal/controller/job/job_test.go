package job_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/job"
	"github.com/skiff-io/skiff/test/framework"
)

// quick shortens the pod failure back-off for tests that are not about
// it. Pod finish times have a resolution of one second, so it is
// effectively gone.
var quick = job.Options{PodFailureBackoff: 10 * time.Millisecond, MaxPodFailureBackoff: 100 * time.Millisecond}

// startController runs the Job controller against a fresh in-process
// cluster and stops it (waiting for Start to return) in t.Cleanup.
func startController(t *testing.T, opts ...job.Options) kubernetes.Interface {
	client, _ := startWithRecorder(t, opts...)
	return client
}

// startWithRecorder is startController that also returns the recorder the
// controller reports events to. Without opts the back-off is quick.
func startWithRecorder(t *testing.T, opts ...job.Options) (kubernetes.Interface, *record.FakeRecorder) {
	t.Helper()
	if len(opts) == 0 {
		opts = []job.Options{quick}
	}
	_, client, recorder := framework.StartController(t, framework.Builder(job.New, opts...))
	return client, recorder
}

func newJob(name string, mutate func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
	mutate(j)
	return j
}

// activePods lists the job's pods that are neither finished nor deleted.
func activePods(ctx context.Context, t *testing.T, client kubernetes.Interface, j *batchv1.Job) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(j.UID)})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func finish(ctx context.Context, t *testing.T, client kubernetes.Interface, p corev1.Pod, phase corev1.PodPhase) {
	t.Helper()
	p.Status.Phase = phase
	if _, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("pod %s status: %v", p.Name, err)
	}
}

func condition(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if c := &j.Status.Conditions[i]; c.Type == typ && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// runUntil finishes the job's active pods with phase, round after round,
// until the job has condition typ; it fails if more than maxActive pods
// are active at once.
func runUntil(ctx context.Context, t *testing.T, client kubernetes.Interface, j *batchv1.Job, phase corev1.PodPhase, typ batchv1.JobConditionType, maxActive int) *batchv1.Job {
	t.Helper()
	var got *batchv1.Job
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = client.BatchV1().Jobs(j.Namespace).Get(ctx, j.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if condition(got, typ) != nil {
			return true, nil
		}
		pods := activePods(ctx, t, client, got)
		if len(pods) > maxActive {
			return false, fmt.Errorf("%d active pods, parallelism %d", len(pods), maxActive)
		}
		for _, p := range pods {
			finish(ctx, t, client, p, phase)
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("job %s never got %s: %v (status %+v)", j.Name, typ, err, got.Status)
	}
	return got
}

func TestJobRunsToCompletion(t *testing.T) {
	client, recorder := startWithRecorder(t)
	ctx := context.Background()
	j, err := client.BatchV1().Jobs("default").Create(ctx, newJob("three", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](2)
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := runUntil(ctx, t, client, j, corev1.PodSucceeded, batchv1.JobComplete, 2)
	if got.Status.Succeeded != 3 || got.Status.Active != 0 || got.Status.CompletionTime == nil || got.Status.StartTime == nil {
		t.Errorf("status = %+v, want 3 succeeded, 0 active, start and completion times", got.Status)
	}
	if condition(got, batchv1.JobSuccessCriteriaMet) == nil {
		t.Errorf("no SuccessCriteriaMet condition: %+v", got.Status.Conditions)
	}
	reasons := map[string]int{}
	for len(recorder.Events) > 0 {
		e := <-recorder.Events
		reasons[strings.Fields(e)[1]]++
	}
	if reasons["SuccessfulCreate"] != 3 || reasons["Completed"] != 1 {
		t.Errorf("events by reason = %v, want 3 SuccessfulCreate and 1 Completed", reasons)
	}
}

func TestJobBackoffLimitExceeded(t *testing.T) {
	client := startController(t)
	ctx := context.Background()
	j, err := client.BatchV1().Jobs("default").Create(ctx, newJob("failing", func(j *batchv1.Job) {
		j.Spec.BackoffLimit = ptr.To[int32](1)
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := runUntil(ctx, t, client, j, corev1.PodFailed, batchv1.JobFailed, 1)
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Failed reason = %q, want %q", c.Reason, batchv1.JobReasonBackoffLimitExceeded)
	}
	if got.Status.Failed != 2 || condition(got, batchv1.JobFailureTarget) == nil {
		t.Errorf("status = %+v, want 2 failed and FailureTarget", got.Status)
	}
}

func TestIndexedJob(t *testing.T) {
	client := startController(t)
	ctx := context.Background()
	j, err := client.BatchV1().Jobs("default").Create(ctx, newJob("idx", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pods = activePods(ctx, t, client, j)
		return len(pods) == 3, nil
	}); err != nil {
		t.Fatalf("want 3 pods, got %d", len(pods))
	}
	seen := map[string]bool{}
	for _, p := range pods {
		idx := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		seen[idx] = true
		if p.Spec.Hostname != "idx-"+idx || p.Labels[batchv1.JobCompletionIndexAnnotation] != idx {
			t.Errorf("pod %s: hostname %q label %q for index %q", p.Name, p.Spec.Hostname, p.Labels[batchv1.JobCompletionIndexAnnotation], idx)
		}
		var env bool
		for _, e := range p.Spec.Containers[0].Env {
			env = env || e.Name == "JOB_COMPLETION_INDEX"
		}
		if !env {
			t.Errorf("pod %s has no JOB_COMPLETION_INDEX", p.Name)
		}
	}
	if !seen["0"] || !seen["1"] || !seen["2"] {
		t.Errorf("indexes = %v, want 0, 1, 2", seen)
	}
	got := runUntil(ctx, t, client, j, corev1.PodSucceeded, batchv1.JobComplete, 3)
	if got.Status.CompletedIndexes != "0-2" || got.Status.Succeeded != 3 {
		t.Errorf("completedIndexes %q succeeded %d, want 0-2 and 3", got.Status.CompletedIndexes, got.Status.Succeeded)
	}
}

func TestJobDeadlineExceeded(t *testing.T) {
	client := startController(t)
	ctx := context.Background()
	j, err := client.BatchV1().Jobs("default").Create(ctx, newJob("slow", func(j *batchv1.Job) {
		j.Spec.Parallelism, j.Spec.Completions = ptr.To[int32](2), ptr.To[int32](2)
		j.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got *batchv1.Job
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = client.BatchV1().Jobs("default").Get(ctx, j.Name, metav1.GetOptions{})
		return err == nil && condition(got, batchv1.JobFailed) != nil, err
	}); err != nil {
		t.Fatalf("job never failed: %v", err)
	}
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonDeadlineExceeded {
		t.Errorf("reason = %q, want DeadlineExceeded", c.Reason)
	}
	if pods := activePods(ctx, t, client, got); len(pods) != 0 || got.Status.Active != 0 {
		t.Errorf("%d pods still active (status.active %d)", len(pods), got.Status.Active)
	}
}

func TestJobSuspendAndResume(t *testing.T) {
	client := startController(t)
	ctx := context.Background()
	j, err := client.BatchV1().Jobs("default").Create(ctx, newJob("held", func(j *batchv1.Job) {
		j.Spec.Suspend = ptr.To(true)
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		j, err = client.BatchV1().Jobs("default").Get(ctx, j.Name, metav1.GetOptions{})
		return err == nil && condition(j, batchv1.JobSuspended) != nil, err
	}); err != nil {
		t.Fatalf("job never suspended: %v", err)
	}
	if pods := activePods(ctx, t, client, j); len(pods) != 0 || j.Status.StartTime != nil {
		t.Errorf("suspended job has %d pods, startTime %v", len(pods), j.Status.StartTime)
	}
	j.Spec.Suspend = ptr.To(false)
	if j, err = client.BatchV1().Jobs("default").Update(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	runUntil(ctx, t, client, j, corev1.PodSucceeded, batchv1.JobComplete, 1)
}

// TestJobPodFailureBackoff runs a Job whose pods always fail against the
// real API server with a fake clock and upstream's default back-off: each
// replacement pod comes only once 10 s, 20 s, 40 s have passed since the
// last failure, not a second before, and the Job fails after
// backoffLimit+1 pods without creating another.
func TestJobPodFailureBackoff(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now().Truncate(time.Second))
	client := startController(t, job.Options{Clock: clk})
	ctx := context.Background()
	j, err := client.BatchV1().Jobs("default").Create(ctx, newJob("crashing", func(j *batchv1.Job) {
		j.Spec.BackoffLimit = ptr.To[int32](3)
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allPods := func() int {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(j.UID)})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	// poke makes the controller reconcile the Job now, as any event
	// would, rather than when its requeue (in real time) comes.
	poke := func(n int) {
		t.Helper()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"test/poke":"%d"}}}`, n)
		if _, err := client.BatchV1().Jobs("default").Patch(ctx, j.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return cond(), nil
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for failure := 1; failure <= 4; failure++ {
		var pods []corev1.Pod
		waitFor(fmt.Sprintf("pod %d", failure), func() bool {
			pods = activePods(ctx, t, client, j)
			return len(pods) == 1
		})
		if n := allPods(); n != failure {
			t.Fatalf("before failure %d: %d pods, want %d", failure, n, failure)
		}
		p := pods[0]
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, FinishedAt: metav1.NewTime(clk.Now())}}}}
		if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(fmt.Sprintf("failure %d counted", failure), func() bool {
			got, err := client.BatchV1().Jobs("default").Get(ctx, j.Name, metav1.GetOptions{})
			return err == nil && got.Status.Failed == int32(failure)
		})
		if failure == 4 {
			break
		}
		backoff := job.DefaultPodFailureBackoff << (failure - 1)
		clk.Step(backoff - time.Second)
		poke(2 * failure)
		// Nothing may come before the back-off ends: watch a while.
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 500*time.Millisecond, true, func(context.Context) (bool, error) {
			if n := allPods(); n != failure {
				return false, fmt.Errorf("%d pods %v before the back-off of %v ended", n, backoff-time.Second, backoff)
			}
			return false, nil
		}); !wait.Interrupted(err) {
			t.Fatal(err)
		}
		clk.Step(time.Second)
		poke(2*failure + 1)
	}
	got := runUntil(ctx, t, client, j, corev1.PodFailed, batchv1.JobFailed, 1)
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Failed reason %q, want BackoffLimitExceeded", c.Reason)
	}
	if n := allPods(); n != 4 {
		t.Errorf("%d pods created, want backoffLimit+1 = 4", n)
	}
}
