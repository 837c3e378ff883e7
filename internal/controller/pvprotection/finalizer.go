package pvprotection

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The finalizers these controllers own, under upstream's names.
const (
	// ClaimFinalizer keeps a PersistentVolumeClaim while a pod uses it.
	ClaimFinalizer = "kubernetes.io/pvc-protection"
	// VolumeFinalizer keeps a PersistentVolume while it is Bound.
	VolumeFinalizer = "kubernetes.io/pv-protection"
)

// needsFinalizer reports whether obj is live and lacks finalizer.
func needsFinalizer(obj metav1.Object, finalizer string) bool {
	return obj.GetDeletionTimestamp() == nil && !slices.Contains(obj.GetFinalizers(), finalizer)
}

// releasable reports whether obj is being deleted and still held by
// finalizer: the only state in which the finalizer may be removed.
func releasable(obj metav1.Object, finalizer string) bool {
	return obj.GetDeletionTimestamp() != nil && slices.Contains(obj.GetFinalizers(), finalizer)
}

// without returns finalizers less every copy of finalizer.
func without(finalizers []string, finalizer string) []string {
	out := make([]string, 0, len(finalizers))
	for _, f := range finalizers {
		if f != finalizer {
			out = append(out, f)
		}
	}
	return out
}
