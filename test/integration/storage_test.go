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
// none; a class's provisioner cannot change.
func TestStorageClasses(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(c.Config)
	scs := cs.StorageV1().StorageClasses()
	pvcs := cs.CoreV1().PersistentVolumeClaims("default")

	// No default class: the claim keeps no class.
	got, err := pvcs.Create(ctx, claim("before", nil), metav1.CreateOptions{})
	if err != nil || got.Spec.StorageClassName != nil {
		t.Fatalf("claim with no default class: %v, class %v", err, got.Spec.StorageClassName)
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
