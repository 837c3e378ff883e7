package ttlafterfinished_test

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/ttlafterfinished"
	"github.com/skiff-io/skiff/test/framework"
)

func TestDeletesFinishedJobAfterTTL(t *testing.T) {
	_, client, _ := framework.StartController(t, framework.Builder(ttlafterfinished.New))
	ctx := t.Context()

	mk := func(name string, ttl int32) *batchv1.Job {
		j, err := client.BatchV1().Jobs("default").Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: batchv1.JobSpec{TTLSecondsAfterFinished: ptr.To(ttl), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	complete := func(j *batchv1.Job) {
		now := metav1.Now()
		j.Status.StartTime, j.Status.CompletionTime, j.Status.Succeeded = &now, &now, 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		if _, err := client.BatchV1().Jobs("default").UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	running := mk("running", 0)
	long := mk("long-ttl", 3600)
	short := mk("short-ttl", 1)
	complete(long)
	complete(short)

	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.BatchV1().Jobs("default").Get(ctx, short.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal("finished job with ttl 1s was not deleted")
	}
	for _, j := range []*batchv1.Job{running, long} {
		if _, err := client.BatchV1().Jobs("default").Get(ctx, j.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("job %s: %v, want it kept", j.Name, err)
		}
	}
}
