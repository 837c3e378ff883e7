package integration

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/localpath"
	"github.com/skiff-io/skiff/test/framework"
)

// TestLocalPathProvisioner follows a claim on the default local-path class
// through the control plane and a node that runs only the local-path
// cleaner (no kubelet): the scheduler picks the node, the provisioner makes
// a volume there pre-bound to the claim, the binder binds it; deleting the
// claim deletes the volume, whose directory the node removes (Delete) or
// keeps (Retain). The node may list only its own volumes and change
// nothing of them but the finalizer, and a volume forged to point
// elsewhere has nothing removed.
func TestLocalPathProvisioner(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := ctxT(t)
	admin := kubernetes.NewForConfigOrDie(c.Config)

	var class *storagev1.StorageClass
	waitFor(t, "the local-path StorageClass", func() (bool, error) {
		var err error
		class, err = admin.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
		return err == nil, err
	})
	if class.Provisioner != "skiff.io/local-path" || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		*class.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion ||
		class.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Fatalf("local-path class: %+v", class)
	}

	// The node: Ready, with its storage directory announced.
	const nodeName = "lp-node"
	dir := filepath.Join(t.TempDir(), "storage")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName,
		Labels:      map[string]string{"kubernetes.io/hostname": nodeName},
		Annotations: map[string]string{localpath.DirAnnotation: dir}}}
	_, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	// The node controllers write the Node too (its podCIDR).
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node.Status = corev1.NodeStatus{Capacity: alloc, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}}
		_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	nodeClient := clientWithCert(t, c, "system:node:"+nodeName, "system:nodes")
	cleanerCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- localpath.NewCleaner(nodeClient, nodeName, dir, slog.Default()).Start(cleanerCtx) }()
	t.Cleanup(func() { stop(); <-done })

	// provision creates a claim (of class, or the default) and a pod
	// using it, and returns the claim's volume once the pod is bound.
	provision := func(name string, class *string) *corev1.PersistentVolume {
		t.Helper()
		pvc := claim(name, class)
		pvc, err := admin.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}},
		}}
		if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, name+" bound to the node with its claim Bound", func() (bool, error) {
			p, err := admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got, err := admin.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Spec.NodeName == nodeName && got.Status.Phase == corev1.ClaimBound, err
		})
		pv, err := admin.CoreV1().PersistentVolumes().Get(ctx, localpath.VolumeName(pvc.UID), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pv
	}
	release := func(name string) {
		t.Helper()
		if err := admin.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().PersistentVolumeClaims("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// fill stands in for the kubelet, which makes the directory at the
	// first mount.
	fill := func(pv *corev1.PersistentVolume) string {
		t.Helper()
		if err := os.MkdirAll(pv.Spec.Local.Path, 0o777); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(pv.Spec.Local.Path, "data")
		if err := os.WriteFile(f, []byte("kept"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}

	pv := provision("deleted", nil)
	want := filepath.Join(dir, pv.Name)
	if pv.Spec.Local == nil || pv.Spec.Local.Path != want || pv.Labels[localpath.NodeLabel] != nodeName ||
		pv.Annotations["pv.kubernetes.io/provisioned-by"] != "skiff.io/local-path" ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.StorageClassName != "local-path" ||
		pv.Spec.Capacity.Storage().String() != "1Gi" || pv.Spec.NodeAffinity == nil ||
		pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != nodeName {
		t.Fatalf("provisioned volume: %+v", pv)
	}
	deletedFile := fill(pv)

	// What the node may do with volumes.
	if _, err := nodeClient.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node listing every volume: %v, want 403", err)
	}
	if _, err := nodeClient.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: localpath.NodeLabel + "=other"}); !apierrors.IsForbidden(err) {
		t.Errorf("node listing another node's volumes: %v, want 403", err)
	}
	own, err := nodeClient.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: localpath.NodeLabel + "=" + nodeName})
	if err != nil || len(own.Items) != 1 {
		t.Fatalf("node listing its volumes: %v (%d)", err, len(own.Items))
	}
	changed := own.Items[0].DeepCopy()
	changed.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	if _, err := nodeClient.CoreV1().PersistentVolumes().Update(ctx, changed, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node changing its volume's reclaim policy: %v, want 403", err)
	}
	if err := nodeClient.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node deleting its volume: %v, want 403", err)
	}

	// Delete: the volume and its directory go with the claim.
	release("deleted")
	waitFor(t, "the Delete volume gone", func() (bool, error) {
		_, err := admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := os.Stat(filepath.Dir(deletedFile)); !os.IsNotExist(err) {
		t.Errorf("the Delete volume's directory is still there: %v", err)
	}

	// Retain: the volume stays Released with its data, and deleting it
	// keeps the data too.
	keep := localpath.DefaultClass()
	keep.Name, keep.Annotations = "keep", nil
	keep.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRetain)
	if _, err := admin.StorageV1().StorageClasses().Create(ctx, keep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv = provision("retained", ptr.To("keep"))
	keptFile := fill(pv)
	release("retained")
	waitFor(t, "the Retain volume Released", func() (bool, error) {
		got, err := admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.VolumeReleased, err
	})
	if err := admin.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Retain volume deleted", func() (bool, error) {
		_, err := admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if b, err := os.ReadFile(keptFile); err != nil || string(b) != "kept" {
		t.Errorf("the Retain volume's data: %q, %v", b, err)
	}

	// A volume forged with the node's label and another path: deleted,
	// nothing removed.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	forged := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Labels: map[string]string{localpath.NodeLabel: nodeName},
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "skiff.io/local-path"}, Finalizers: []string{localpath.Finalizer}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: filepath.Dir(victim)}},
			NodeAffinity:                  pv.Spec.NodeAffinity,
		},
	}
	if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.CoreV1().PersistentVolumes().Delete(ctx, "forged", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forged volume deleted", func() (bool, error) {
		_, err := admin.CoreV1().PersistentVolumes().Get(ctx, "forged", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if b, err := os.ReadFile(victim); err != nil || string(b) != "mine" {
		t.Errorf("the forged volume's path was touched: %q, %v", b, err)
	}
}
