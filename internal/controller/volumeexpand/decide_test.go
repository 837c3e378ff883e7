package volumeexpand

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// claimAt is a claim Bound to volume "pv" that requests requested and has
// capacity; allocated "" leaves allocatedResources unset.
func claimAt(requested, capacity, allocated string, state corev1.ClaimResourceStatus) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "data", UID: "uid-data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			VolumeName: "pv",
			Resources:  corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(requested)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{
			Phase:    corev1.ClaimBound,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)},
		},
	}
	if allocated != "" {
		pvc.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(allocated)}
	}
	if state != "" {
		pvc.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: state}
	}
	return pvc
}

func volumeOf(capacity string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)},
			ClaimRef: &corev1.ObjectReference{Namespace: "team", Name: "data", UID: "uid-data"},
		},
	}
}

func TestWantsMore(t *testing.T) {
	for _, c := range []struct {
		name string
		pvc  *corev1.PersistentVolumeClaim
		want bool
	}{
		{"raised", claimAt("2Gi", "1Gi", "", ""), true},
		{"same size in other units", claimAt("1024Mi", "1Gi", "", ""), false},
		{"done", claimAt("2Gi", "2Gi", "2Gi", ""), false},
		{"provisioned larger", claimAt("1Gi", "5Gi", "", ""), false},
		{"pending", func() *corev1.PersistentVolumeClaim {
			p := claimAt("2Gi", "1Gi", "", "")
			p.Status.Phase = corev1.ClaimPending
			return p
		}(), false},
		{"no volume", func() *corev1.PersistentVolumeClaim {
			p := claimAt("2Gi", "1Gi", "", "")
			p.Spec.VolumeName = ""
			return p
		}(), false},
	} {
		if got := wantsMore(c.pvc); got != c.want {
			t.Errorf("%s: wantsMore = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBoundTo(t *testing.T) {
	pvc := claimAt("2Gi", "1Gi", "", "")
	for _, c := range []struct {
		name string
		ref  *corev1.ObjectReference
		want bool
	}{
		{"bound", &corev1.ObjectReference{Namespace: "team", Name: "data", UID: "uid-data"}, true},
		{"no claimRef", nil, false},
		{"earlier claim of the name", &corev1.ObjectReference{Namespace: "team", Name: "data", UID: "uid-old"}, false},
		{"other namespace", &corev1.ObjectReference{Namespace: "other", Name: "data", UID: "uid-data"}, false},
		{"other claim", &corev1.ObjectReference{Namespace: "team", Name: "logs", UID: "uid-data"}, false},
	} {
		pv := volumeOf("1Gi")
		pv.Spec.ClaimRef = c.ref
		if got := boundTo(pv, pvc); got != c.want {
			t.Errorf("%s: boundTo = %v, want %v", c.name, got, c.want)
		}
	}
}

// The target size is external-resizer's: the request, or the size of an
// expansion under way until it has finished.
func TestTarget(t *testing.T) {
	for _, c := range []struct {
		name string
		pvc  *corev1.PersistentVolumeClaim
		pv   string
		want string // "" nothing to do
	}{
		{"fresh", claimAt("2Gi", "1Gi", "", ""), "1Gi", "2Gi"},
		{"second expansion", claimAt("3Gi", "2Gi", "2Gi", ""), "2Gi", "3Gi"},
		{"resume", claimAt("2Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimControllerResizeInProgress), "1Gi", "2Gi"},
		{"raised again while under way", claimAt("3Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimControllerResizeInProgress), "1Gi", "2Gi"},
		{"volume grown, claim not yet", claimAt("2Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimControllerResizeInProgress), "2Gi", "2Gi"},
		{"lowered while under way", claimAt("2Gi", "1Gi", "3Gi", corev1.PersistentVolumeClaimControllerResizeInProgress), "3Gi", "3Gi"},
		{"volume provisioned larger", claimAt("2Gi", "1Gi", "", ""), "5Gi", "2Gi"},
		{"infeasible before, volume smaller", claimAt("2Gi", "1Gi", "4Gi", corev1.PersistentVolumeClaimControllerResizeInfeasible), "1Gi", "2Gi"},
		{"infeasible before, volume larger", claimAt("2Gi", "1Gi", "4Gi", corev1.PersistentVolumeClaimControllerResizeInfeasible), "2Gi", "4Gi"},
		{"node pending, volume grown", claimAt("2Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimNodeResizePending), "2Gi", ""},
		{"node pending, raised again", claimAt("3Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimNodeResizePending), "2Gi", ""},
		{"node pending, volume behind", claimAt("3Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimNodeResizeInProgress), "1Gi", "2Gi"},
		{"node infeasible", claimAt("3Gi", "1Gi", "2Gi", corev1.PersistentVolumeClaimNodeResizeInfeasible), "1Gi", "2Gi"},
	} {
		size, ok := target(c.pvc, volumeOf(c.pv))
		got := ""
		if ok {
			got = size.String()
		}
		if got != c.want {
			t.Errorf("%s: target = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestInProgressAndFinished(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	modify := corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimVolumeModifyingVolume, Status: corev1.ConditionTrue, LastTransitionTime: t0}
	resizing := corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue, LastTransitionTime: t0}
	fsPending := corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue, LastTransitionTime: t0}

	pvc := claimAt("2Gi", "1Gi", "", "")
	pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{modify, fsPending}
	marked := inProgress(pvc, resource.MustParse("2Gi"), t1)
	if marked == nil {
		t.Fatal("inProgress: nil for a claim not marked")
	}
	want := pvc.DeepCopy()
	want.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}
	want.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{
		corev1.ResourceStorage: corev1.PersistentVolumeClaimControllerResizeInProgress,
	}
	want.Status.Conditions = []corev1.PersistentVolumeClaimCondition{modify, {Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue, LastTransitionTime: t1}}
	if d := cmp.Diff(want, marked); d != "" {
		t.Errorf("inProgress (-want +got):\n%s", d)
	}
	if again := inProgress(marked, resource.MustParse("2Gi"), t1); again != nil {
		t.Errorf("inProgress of a marked claim: %+v, want nil", again.Status)
	}
	if other := inProgress(marked, resource.MustParse("3Gi"), t1); other == nil || other.Status.AllocatedResources.Storage().String() != "3Gi" {
		t.Errorf("inProgress to another size: %+v, want allocated 3Gi", other)
	}

	// An existing Resizing condition keeps its transition time.
	pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{resizing}
	if got := inProgress(pvc, resource.MustParse("2Gi"), t1).Status.Conditions; !cmp.Equal(got, []corev1.PersistentVolumeClaimCondition{resizing}) {
		t.Errorf("inProgress conditions: %+v, want the Resizing of %v", got, t0)
	}

	marked.Status.AllocatedResourceStatuses["example.com/other"] = corev1.PersistentVolumeClaimControllerResizeInProgress
	done := finished(marked, resource.MustParse("2Gi"))
	want = marked.DeepCopy()
	want.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}
	want.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{"example.com/other": corev1.PersistentVolumeClaimControllerResizeInProgress}
	want.Status.Conditions = []corev1.PersistentVolumeClaimCondition{modify}
	if d := cmp.Diff(want, done); d != "" {
		t.Errorf("finished (-want +got):\n%s", d)
	}
	delete(marked.Status.AllocatedResourceStatuses, "example.com/other")
	if got := finished(marked, resource.MustParse("2Gi")).Status.AllocatedResourceStatuses; got != nil {
		t.Errorf("finished: allocatedResourceStatuses %v, want nil", got)
	}
}
