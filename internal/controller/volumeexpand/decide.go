package volumeexpand

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// wantsMore reports whether pvc is Bound to a named volume and requests
// more storage than its status reports (external-resizer's pvcNeedResize).
func wantsMore(pvc *corev1.PersistentVolumeClaim) bool {
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return false
	}
	requested := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	capacity := pvc.Status.Capacity[corev1.ResourceStorage]
	return requested.Cmp(capacity) > 0
}

// boundTo reports whether pv's claimRef is pvc itself, not an earlier
// claim of the same name.
func boundTo(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	return ref != nil && ref.Namespace == pvc.Namespace && ref.Name == pvc.Name && ref.UID == pvc.UID
}

// target is the size to expand pv to for pvc, which wantsMore, and false
// when nothing should be done now. It is external-resizer's
// expandAndRecover choice: the request, unless an expansion already under
// way (its size in allocatedResources) must finish first. The node states
// are never written by skiff; they are honoured for a claim another
// resizer worked on.
func target(pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (resource.Quantity, bool) {
	requested := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	volume := pv.Spec.Capacity[corev1.ResourceStorage]
	allocated, hasAllocated := pvc.Status.AllocatedResources[corev1.ResourceStorage]
	orAllocated := func() resource.Quantity {
		if hasAllocated {
			return allocated
		}
		return requested
	}
	state := pvc.Status.AllocatedResourceStatuses[corev1.ResourceStorage]

	if volume.Cmp(requested) < 0 {
		switch state {
		case corev1.PersistentVolumeClaimNodeResizePending, corev1.PersistentVolumeClaimNodeResizeInProgress:
			// Let the node finish what the volume already has.
			size := orAllocated()
			return size, volume.Cmp(size) < 0
		case corev1.PersistentVolumeClaimNodeResizeInfeasible, corev1.PersistentVolumeClaimControllerResizeInProgress:
			// Finish the expansion under way; a larger request
			// follows it.
			return orAllocated(), true
		default:
			return requested, true
		}
	}
	// The volume is already big enough: a write that did not land, or a
	// request lowered again while an expansion was under way.
	switch state {
	case corev1.PersistentVolumeClaimNodeResizePending, corev1.PersistentVolumeClaimNodeResizeInProgress:
		return resource.Quantity{}, false
	case corev1.PersistentVolumeClaimNodeResizeInfeasible,
		corev1.PersistentVolumeClaimControllerResizeInProgress, corev1.PersistentVolumeClaimControllerResizeInfeasible:
		return orAllocated(), true
	case "":
		return orAllocated(), true
	default:
		return requested, true
	}
}

// resizeConditions are the claim conditions that describe an expansion;
// every other condition is left as it is.
var resizeConditions = map[corev1.PersistentVolumeClaimConditionType]bool{
	corev1.PersistentVolumeClaimResizing:                true,
	corev1.PersistentVolumeClaimFileSystemResizePending: true,
	corev1.PersistentVolumeClaimControllerResizeError:   true,
	corev1.PersistentVolumeClaimNodeResizeError:         true,
}

// inProgress returns a copy of pvc marked as being expanded to size (step
// 1), or nil when it already is.
func inProgress(pvc *corev1.PersistentVolumeClaim, size resource.Quantity, now metav1.Time) *corev1.PersistentVolumeClaim {
	allocated, ok := pvc.Status.AllocatedResources[corev1.ResourceStorage]
	if ok && allocated.Cmp(size) == 0 &&
		pvc.Status.AllocatedResourceStatuses[corev1.ResourceStorage] == corev1.PersistentVolumeClaimControllerResizeInProgress &&
		onlyResizing(pvc.Status.Conditions) {
		return nil
	}
	out := pvc.DeepCopy()
	if out.Status.AllocatedResources == nil {
		out.Status.AllocatedResources = corev1.ResourceList{}
	}
	out.Status.AllocatedResources[corev1.ResourceStorage] = size
	if out.Status.AllocatedResourceStatuses == nil {
		out.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{}
	}
	out.Status.AllocatedResourceStatuses[corev1.ResourceStorage] = corev1.PersistentVolumeClaimControllerResizeInProgress
	out.Status.Conditions = withResizeConditions(pvc.Status.Conditions, corev1.PersistentVolumeClaimCondition{
		Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue, LastTransitionTime: now,
	})
	return out
}

// finished returns a copy of pvc with the expansion to capacity done
// (step 3).
func finished(pvc *corev1.PersistentVolumeClaim, capacity resource.Quantity) *corev1.PersistentVolumeClaim {
	out := pvc.DeepCopy()
	if out.Status.Capacity == nil {
		out.Status.Capacity = corev1.ResourceList{}
	}
	out.Status.Capacity[corev1.ResourceStorage] = capacity
	delete(out.Status.AllocatedResourceStatuses, corev1.ResourceStorage)
	if len(out.Status.AllocatedResourceStatuses) == 0 {
		out.Status.AllocatedResourceStatuses = nil
	}
	out.Status.Conditions = withResizeConditions(pvc.Status.Conditions)
	return out
}

// onlyResizing reports whether the resize conditions among conditions are
// exactly Resizing=True.
func onlyResizing(conditions []corev1.PersistentVolumeClaimCondition) bool {
	n := 0
	for _, c := range conditions {
		if !resizeConditions[c.Type] {
			continue
		}
		if c.Type != corev1.PersistentVolumeClaimResizing || c.Status != corev1.ConditionTrue {
			return false
		}
		n++
	}
	return n == 1
}

// withResizeConditions returns conditions with the resize conditions
// replaced by want: a condition already present with the same status is
// kept as it is (its transition time with it), the others of want are
// added, and resize conditions not in want are dropped (external-resizer's
// MergeResizeConditionsOfPVC).
func withResizeConditions(conditions []corev1.PersistentVolumeClaimCondition, want ...corev1.PersistentVolumeClaimCondition) []corev1.PersistentVolumeClaimCondition {
	var out []corev1.PersistentVolumeClaimCondition
	added := map[corev1.PersistentVolumeClaimConditionType]bool{}
	for _, c := range conditions {
		if !resizeConditions[c.Type] {
			out = append(out, c)
			continue
		}
		for _, w := range want {
			if w.Type != c.Type {
				continue
			}
			if w.Status == c.Status {
				out = append(out, c)
			} else {
				out = append(out, w)
			}
			added[w.Type] = true
		}
	}
	for _, w := range want {
		if !added[w.Type] {
			out = append(out, w)
		}
	}
	return out
}
