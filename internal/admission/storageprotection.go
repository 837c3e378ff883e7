package admission

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// The protection finalizers, as the pvc-protection and pv-protection
// controllers remove them.
const (
	claimProtectionFinalizer  = "kubernetes.io/pvc-protection"
	volumeProtectionFinalizer = "kubernetes.io/pv-protection"
)

// StorageObjectInUseProtection is upstream's admission plugin of that
// name: a new PersistentVolumeClaim gets the kubernetes.io/pvc-protection
// finalizer and a new PersistentVolume kubernetes.io/pv-protection, so
// that they are protected from their first moment and the protection
// controllers need not write them again right after the create (a write
// that would make every other writer of a new claim, the scheduler's
// selected node among them, conflict).
type StorageObjectInUseProtection struct{}

func (StorageObjectInUseProtection) Admit(_ context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Create || req.Sub != "" {
		return nil
	}
	switch obj := req.Obj.(type) {
	case *corev1.PersistentVolumeClaim:
		if !slices.Contains(obj.Finalizers, claimProtectionFinalizer) {
			obj.Finalizers = append(obj.Finalizers, claimProtectionFinalizer)
		}
	case *corev1.PersistentVolume:
		if !slices.Contains(obj.Finalizers, volumeProtectionFinalizer) {
			obj.Finalizers = append(obj.Finalizers, volumeProtectionFinalizer)
		}
	}
	return nil
}
