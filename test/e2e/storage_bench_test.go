package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// BenchmarkClaimToRunning measures, one pod at a time, how long a new
// claim on the default local-path class takes from its create to the pod
// that mounts it Running ("claim": the binder, the scheduler's node
// choice, the provisioner, the binding of claim and pod, the kubelet's
// directory and the container's start), against the same pod with an
// emptyDir instead ("emptyDir"), on one node. Each pod and claim is
// deleted before the next; bound and scheduled are create to the claim
// Bound and to the pod bound to the node.
//
//	go test -run '^$' -bench ClaimToRunning -benchtime 50x ./test/e2e/
func BenchmarkClaimToRunning(b *testing.B) {
	if why := framework.CanRunContainers(); why != "" {
		b.Skipf("skipping: %s", why)
	}
	images := b.TempDir()
	framework.BuildImages(b, images)
	c := framework.StartNode(b, skiffBin, images)
	// A fresh cluster: the default ServiceAccount and class come a moment
	// after the node.
	ctx := context.Background()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		_, err2 := c.Client.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
		return err == nil && err2 == nil, nil
	})
	if err != nil {
		b.Fatalf("no default ServiceAccount and local-path class: %v", err)
	}
	b.Run("claim", func(b *testing.B) { benchPodStarts(b, c, true) })
	b.Run("emptyDir", func(b *testing.B) { benchPodStarts(b, c, false) })
}

func benchPodStarts(b *testing.B, c *framework.Cluster, claim bool) {
	ctx := context.Background()
	pods, claims := c.Client.CoreV1().Pods("default"), c.Client.CoreV1().PersistentVolumeClaims("default")
	var took, bound, scheduled []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-%v-%d", claim, i)
		vol := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		if claim {
			vol = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{Name: "c", Image: "docker.io/library/busybox:1.36", Command: []string{"sleep", "3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: vol}},
		}}
		start := time.Now()
		if claim {
			pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
			}}
			if _, err := claims.Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		var boundAt, scheduledAt time.Duration
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			if claim && boundAt == 0 {
				if c, err := claims.Get(ctx, name, metav1.GetOptions{}); err == nil && c.Status.Phase == corev1.ClaimBound {
					boundAt = time.Since(start)
				}
			}
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err == nil && p.Spec.NodeName != "" && scheduledAt == 0 {
				scheduledAt = time.Since(start)
			}
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		if err != nil {
			b.Fatalf("%s not Running: %v", name, err)
		}
		took = append(took, time.Since(start))
		bound, scheduled = append(bound, boundAt), append(scheduled, scheduledAt)
		b.StopTimer()
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			b.Fatal(err)
		}
		if claim {
			if err := claims.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	at := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Milliseconds())
	}
	b.ReportMetric(at(took, 0.5), "p50-ms")
	b.ReportMetric(at(took, 0.99), "p99-ms")
	b.ReportMetric(at(scheduled, 0.5), "scheduled-p50-ms")
	if claim {
		b.ReportMetric(at(bound, 0.5), "bound-p50-ms")
	}
}
