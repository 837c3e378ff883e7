package volumeexpand_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/volumeexpand"
	"github.com/skiff-io/skiff/test/framework"
)

// Against the real API server: its validation accepts each of the
// protocol's writes, and a raised claim ends with the volume and the
// claim at the new size.
func TestExpandInProcess(t *testing.T) {
	_, client, recorder := framework.StartController(t, framework.Builder(volumeexpand.New,
		volumeexpand.Options{Provisioners: []string{"skiff.io/local-path"}}))
	ctx := t.Context()
	size := resource.MustParse("1Gi")

	pvc, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("local-path"),
			VolumeName:       "pv-data",
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-data", Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "skiff.io/local-path"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:       "local-path",
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/pv-data"}},
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: "data", UID: pvc.UID},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The binder's part, done by hand: no controller but ours runs.
	pvc.Status = corev1.PersistentVolumeClaimStatus{
		Phase:       corev1.ClaimBound,
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: size},
	}
	if pvc, err = client.CoreV1().PersistentVolumeClaims("default").UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("raise: %v", err)
	}

	two := resource.MustParse("2Gi")
	framework.Eventually(t, 20*time.Second, func() bool {
		got, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		return err == nil && got.Status.Capacity.Storage().Cmp(two) == 0 && got.Status.AllocatedResourceStatuses == nil
	})
	pv, err := client.CoreV1().PersistentVolumes().Get(ctx, "pv-data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := pv.Spec.Capacity.Storage(); c.Cmp(two) != 0 {
		t.Errorf("volume capacity %s, want 2Gi", c)
	}
	for _, e := range []string{"Normal Resizing External resizer is resizing volume pv-data", "Normal VolumeResizeSuccessful Resize volume succeeded"} {
		select {
		case got := <-recorder.Events:
			if got != e {
				t.Errorf("event %q, want %q", got, e)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %q", e)
		}
	}
}
