package cronjob_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-io/skiff/internal/controller/cronjob"
	"github.com/skiff-io/skiff/test/framework"
)

func TestCronJobCreatesJob(t *testing.T) {
	// The fake clock runs 90 s ahead: a "* * * * *" schedule is due at
	// least once since the CronJob's creation, without waiting for it.
	clk := clocktesting.NewFakeClock(time.Now().Add(90 * time.Second))
	_, client, _ := framework.StartController(t, framework.Builder(cronjob.New, cronjob.Options{Clock: clk}))
	ctx := t.Context()

	cj, err := client.BatchV1().CronJobs("default").Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var got *batchv1.CronJob
	waitFor := func(what string, cond func(*batchv1.CronJob) bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err = client.BatchV1().CronJobs("default").Get(ctx, cj.Name, metav1.GetOptions{})
			return err == nil && cond(got), err
		}); err != nil {
			t.Fatalf("%s: %v (status %+v)", what, err, got.Status)
		}
	}
	waitFor("a scheduled job", func(cj *batchv1.CronJob) bool { return len(cj.Status.Active) == 1 && cj.Status.LastScheduleTime != nil })

	want := "tick-" + strconv.FormatInt(got.Status.LastScheduleTime.Unix()/60, 10)
	if got.Status.Active[0].Name != want {
		t.Errorf("active job %q, want %q", got.Status.Active[0].Name, want)
	}
	job, err := client.BatchV1().Jobs("default").Get(ctx, want, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != cj.UID {
		t.Errorf("job controller ref = %+v", ref)
	}
	if job.Annotations[batchv1.CronJobScheduledTimestampAnnotation] == "" || job.Labels["app"] != "tick" {
		t.Errorf("job metadata: %v %v", job.Annotations, job.Labels)
	}

	// Finish the job: it leaves status.active and sets lastSuccessfulTime.
	now := metav1.Now()
	job.Status.StartTime, job.Status.CompletionTime, job.Status.Succeeded = &now, &now, 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if _, err := client.BatchV1().Jobs("default").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the finished job to leave active", func(cj *batchv1.CronJob) bool {
		return len(cj.Status.Active) == 0 && cj.Status.LastSuccessfulTime != nil
	})

	// Two minutes later the next run is due.
	clk.Step(2 * time.Minute)
	if _, err := client.BatchV1().CronJobs("default").Patch(ctx, cj.Name, "application/merge-patch+json", []byte(`{"metadata":{"labels":{"poke":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	first := got.Status.LastScheduleTime.Time
	waitFor("a second job", func(cj *batchv1.CronJob) bool {
		return len(cj.Status.Active) == 1 && cj.Status.LastScheduleTime.After(first)
	})
}

// A pass that created the Job of a schedule time and lost its status write
// leaves that Job running with lastScheduleTime behind. The next pass must
// take it as that time's run: lastScheduleTime moves to it, and
// concurrencyPolicy Forbid does not mistake it for a prior run.
func TestCronJobTakesTheRunOfALostStatusWrite(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now().Add(90 * time.Second))
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := cluster.NewClient(t)
	ctx := t.Context()
	cj, err := client.BatchV1().CronJobs("default").Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	due := clk.Now().Truncate(time.Minute)
	name := "lost-" + strconv.FormatInt(due.Unix()/60, 10)
	gvk := batchv1.SchemeGroupVersion.WithKind("CronJob")
	if _, err := client.BatchV1().Jobs("default").Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, gvk)}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	framework.RunController(t, client, record.NewFakeRecorder(framework.RecorderSize), framework.Builder(cronjob.New, cronjob.Options{Clock: clk}))
	var got *batchv1.CronJob
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = client.BatchV1().CronJobs("default").Get(ctx, cj.Name, metav1.GetOptions{})
		return err == nil && got.Status.LastScheduleTime != nil && len(got.Status.Active) == 1, err
	})
	if err != nil {
		t.Fatalf("status: %v (%+v)", err, got.Status)
	}
	if !got.Status.LastScheduleTime.Time.Equal(due) || got.Status.Active[0].Name != name {
		t.Errorf("status lastScheduleTime %v active %v, want %v and %s", got.Status.LastScheduleTime, got.Status.Active, due, name)
	}
	jobs, err := client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 1 {
		t.Errorf("jobs: %v, %v; want only %s", jobs, err, name)
	}
}
