package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

func claim(name string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// TestStorageClasses serves storage.k8s.io and gives claims that name no
// class the default one, as upstream's DefaultStorageClass admission: the
// newest class annotated default; a claim asking for no class ("") keeps
// none; a class's provisioner cannot change. The server's own default
// class is left out (TestLocalPathProvisioner has it).
func TestStorageClasses(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithoutLocalStorage())
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(c.Config)
	scs := cs.StorageV1().StorageClasses()
	pvcs := cs.CoreV1().PersistentVolumeClaims("default")

	// No default class: the claim keeps no class.
	got, err := pvcs.Create(ctx, claim("before", nil), metav1.CreateOptions{})
	if err != nil || got.Spec.StorageClassName != nil {
		t.Fatalf("claim with no default class: %v, class %v", err, got.Spec.StorageClassName)
	}
	// A new claim reads Pending, whatever status its client sent, as
	// upstream's defaulting on read shows it.
	if got.Status.Phase != corev1.ClaimPending {
		t.Errorf("new claim: phase %q, want Pending", got.Status.Phase)
	}
	for i, name := range []string{"slow", "fast"} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // creationTimestamp counts seconds
		}
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
			Provisioner: "example.com/" + name}
		if _, err := scs.Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	created, err := scs.Get(ctx, "fast", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *created.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *created.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("defaults: reclaimPolicy %v, volumeBindingMode %v", *created.ReclaimPolicy, *created.VolumeBindingMode)
	}
	got, err = pvcs.Create(ctx, claim("defaulted", nil), metav1.CreateOptions{})
	if err != nil || got.Spec.StorageClassName == nil {
		t.Fatalf("claim with a default class: %v, class %v", err, got.Spec.StorageClassName)
	}
	// Both classes are default: the newest.
	if *got.Spec.StorageClassName != "fast" {
		t.Errorf("claim got class %q, want the newest default, fast", *got.Spec.StorageClassName)
	}
	got, err = pvcs.Create(ctx, claim("none", ptr.To("")), metav1.CreateOptions{})
	if err != nil || got.Spec.StorageClassName == nil || *got.Spec.StorageClassName != "" {
		t.Errorf("claim asking for no class: %v, class %v", err, got.Spec.StorageClassName)
	}
	created.Provisioner = "example.com/other"
	if _, err := scs.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("changing a provisioner: %v, want 422", err)
	}
}

// TestPersistentVolumeBinding binds a claim to the smallest fitting
// volume of its class, as upstream's binder, with both protection
// finalizers, and releases the volume (Retain) when the claim goes.
func TestPersistentVolumeBinding(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(c.Config)
	pvs := cs.CoreV1().PersistentVolumes()
	pvcs := cs.CoreV1().PersistentVolumeClaims("default")
	for name, size := range map[string]string{"small": "1Gi", "big": "5Gi", "tiny": "100Mi"} {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              "manual",
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
			},
		}
		if _, err := pvs.Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the volumes Available", func() (bool, error) {
		list, err := pvs.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, pv := range list.Items {
			if pv.Status.Phase != corev1.VolumeAvailable {
				return false, nil
			}
		}
		return len(list.Items) == 3, nil
	})
	if _, err := pvcs.Create(ctx, claim("data", ptr.To("manual")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var bound *corev1.PersistentVolumeClaim
	waitFor(t, "the claim Bound", func() (bool, error) {
		got, err := pvcs.Get(ctx, "data", metav1.GetOptions{})
		bound = got
		return err == nil && got.Status.Phase == corev1.ClaimBound, nil
	})
	if bound.Spec.VolumeName != "small" || bound.Status.Capacity.Storage().String() != "1Gi" {
		t.Errorf("claim bound to %q with capacity %v, want small, 1Gi", bound.Spec.VolumeName, bound.Status.Capacity.Storage())
	}
	if len(bound.Finalizers) != 1 || bound.Finalizers[0] != "kubernetes.io/pvc-protection" {
		t.Errorf("claim finalizers %v", bound.Finalizers)
	}
	waitFor(t, "the volume Bound with its finalizer", func() (bool, error) {
		pv, err := pvs.Get(ctx, "small", metav1.GetOptions{})
		return err == nil && pv.Status.Phase == corev1.VolumeBound && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Name == "data" &&
			len(pv.Finalizers) == 1 && pv.Finalizers[0] == "kubernetes.io/pv-protection", nil
	})
	if err := pvcs.Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the claim gone and the volume Released", func() (bool, error) {
		_, err := pvcs.Get(ctx, "data", metav1.GetOptions{})
		pv, err2 := pvs.Get(ctx, "small", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && err2 == nil && pv.Status.Phase == corev1.VolumeReleased, nil
	})
	// A claim on a class that does not exist stays Pending, with
	// upstream's event.
	if _, err := pvcs.Create(ctx, claim("nowhere", ptr.To("missing")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ProvisioningFailed event", func() (bool, error) {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=nowhere"})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Reason == "ProvisioningFailed" && e.Message == `storageclass.storage.k8s.io "missing" not found` {
				return true, nil
			}
		}
		return false, nil
	})
}
