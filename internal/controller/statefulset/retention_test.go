package statefulset

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func withPolicy(whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType) *appsv1.StatefulSet {
	set := testSet()
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: whenDeleted, WhenScaled: whenScaled,
	}
	return set
}

func TestClaimOwners(t *testing.T) {
	const (
		retain = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
		del    = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-2", Namespace: "ns", UID: "pod-uid"}}
	isController := true
	setRef := *metav1.NewControllerRef(testSet(), gvk)
	podRef := *metav1.NewControllerRef(pod, podGVK)
	plain := func(ref metav1.OwnerReference) metav1.OwnerReference {
		ref.Controller, ref.BlockOwnerDeletion = nil, nil
		return ref
	}
	stale := func(ref metav1.OwnerReference) metav1.OwnerReference {
		ref.UID = "earlier"
		return ref
	}
	otherRef := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Backup", Name: "b", UID: "backup-uid"}
	otherController := otherRef
	otherController.Controller = &isController

	for _, tc := range []struct {
		name                string
		set                 *appsv1.StatefulSet
		condemned           bool
		have                []metav1.OwnerReference
		want                []metav1.OwnerReference // nil with update false: untouched
		wantUpdate, warning bool
	}{
		{name: "no policy, no owners", set: testSet()},
		{name: "retain: set ref removed", set: withPolicy(retain, retain), have: []metav1.OwnerReference{setRef}, want: []metav1.OwnerReference{}, wantUpdate: true},
		{name: "retain: pod ref removed", set: withPolicy(retain, retain), condemned: true, have: []metav1.OwnerReference{podRef, otherRef}, want: []metav1.OwnerReference{otherRef}, wantUpdate: true},
		{name: "whenDeleted: set ref", set: withPolicy(del, retain), want: []metav1.OwnerReference{setRef}, wantUpdate: true},
		{name: "whenDeleted: set ref when condemned", set: withPolicy(del, retain), condemned: true, want: []metav1.OwnerReference{setRef}, wantUpdate: true},
		{name: "whenDeleted: up to date", set: withPolicy(del, retain), have: []metav1.OwnerReference{otherRef, setRef}},
		{name: "whenDeleted: non-controller ref upgraded", set: withPolicy(del, retain), have: []metav1.OwnerReference{plain(setRef)}, want: []metav1.OwnerReference{setRef}, wantUpdate: true},
		{name: "whenScaled: nothing in range", set: withPolicy(retain, del)},
		{name: "whenScaled: pod ref when condemned", set: withPolicy(retain, del), condemned: true, want: []metav1.OwnerReference{podRef}, wantUpdate: true},
		{name: "whenScaled: back in range", set: withPolicy(retain, del), have: []metav1.OwnerReference{podRef}, want: []metav1.OwnerReference{}, wantUpdate: true},
		{name: "both: set ref in range", set: withPolicy(del, del), have: []metav1.OwnerReference{podRef}, want: []metav1.OwnerReference{setRef}, wantUpdate: true},
		{name: "both: pod ref replaces set ref", set: withPolicy(del, del), condemned: true, have: []metav1.OwnerReference{setRef, otherRef}, want: []metav1.OwnerReference{otherRef, podRef}, wantUpdate: true},
		{name: "both: condemned up to date", set: withPolicy(del, del), condemned: true, have: []metav1.OwnerReference{podRef}},
		{name: "stale set ref untouched", set: withPolicy(del, del), condemned: true, have: []metav1.OwnerReference{stale(setRef)}},
		{name: "stale pod ref untouched", set: withPolicy(del, del), have: []metav1.OwnerReference{stale(podRef)}},
		{name: "other controller: ours removed", set: withPolicy(del, retain), have: []metav1.OwnerReference{plain(setRef), otherController}, want: []metav1.OwnerReference{otherController}, wantUpdate: true, warning: true},
		{name: "other controller: none added", set: withPolicy(del, del), condemned: true, have: []metav1.OwnerReference{otherController}},
		{name: "other controller under retain", set: withPolicy(retain, retain), have: []metav1.OwnerReference{otherController, plain(setRef)}, want: []metav1.OwnerReference{otherController}, wantUpdate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "www-web-2", Namespace: "ns", OwnerReferences: tc.have}}
			refs, warning, update := claimOwners(claim, tc.set, pod, tc.condemned)
			if update != tc.wantUpdate || warning != tc.warning {
				t.Fatalf("update, conflict = %v, %v; want %v, %v", update, warning, tc.wantUpdate, tc.warning)
			}
			if !update {
				return
			}
			if refs == nil {
				refs = []metav1.OwnerReference{}
			}
			if d := cmp.Diff(tc.want, refs); d != "" {
				t.Errorf("owner references (-want +got):\n%s", d)
			}
			// What was written is up to date on the next sync.
			claim.OwnerReferences = refs
			if _, _, again := claimOwners(claim, tc.set, pod, tc.condemned); again {
				t.Errorf("owner references %v still need an update", refs)
			}
		})
	}
}

func TestNewClaimsOwner(t *testing.T) {
	set := withPolicy(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)
	claims := newClaims(set, 1)
	want := []metav1.OwnerReference{*metav1.NewControllerRef(set, gvk)}
	if len(claims) != 1 {
		t.Fatalf("claims = %d, want 1", len(claims))
	}
	if d := cmp.Diff(want, claims[0].OwnerReferences); d != "" {
		t.Errorf("owner references (-want +got):\n%s", d)
	}
	if c := newClaims(testSet(), 1); len(c[0].OwnerReferences) != 0 {
		t.Errorf("Retain: owner references %v", c[0].OwnerReferences)
	}
}

func TestClaimGoing(t *testing.T) {
	gone := metav1.NewTime(now)
	pod := func(name string) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: name, UID: "old"}
	}
	for _, tc := range []struct {
		name  string
		claim corev1.PersistentVolumeClaim
		want  bool
	}{
		{"free", corev1.PersistentVolumeClaim{}, false},
		{"owned by the set", corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(testSet(), gvk)}}}, false},
		{"being deleted", corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &gone}}, true},
		{"owned by an earlier pod", corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{pod("web-1")}}}, true},
		{"owned by another pod", corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{pod("web-10")}}}, false},
	} {
		if got := claimGoing(&tc.claim, "web-1"); got != tc.want {
			t.Errorf("%s: claimGoing = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDecideClaims: the claims of every pod in range are checked, and
// those of condemned pods before any of them is deleted, once the ordered
// walk gets that far.
func TestDecideClaims(t *testing.T) {
	parallel := func(s snapshot) snapshot { s.parallel = true; return s }
	for _, tc := range []struct {
		name       string
		snap       snapshot
		want       []string // pod names, condemned ones with a "!"
		wantDelete []string
	}{
		{"steady", snap(2, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy)), []string{"web-0", "web-1"}, nil},
		{"all in range, past a blocking pod", snap(3, mkPod(0, "web-old", pending), mkPod(2, "web-old", terminating)), []string{"web-0", "web-2"}, nil},
		{"scale down: every condemned pod first", snap(1, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-old", healthy)),
			[]string{"web-0", "!web-2", "!web-1"}, []string{"web-2"}},
		{"ordered: not while a pod in range is unhealthy", snap(1, mkPod(0, "web-old", pending), mkPod(1, "web-old", healthy)), []string{"web-0"}, nil},
		{"parallel: condemned regardless", parallel(snap(2, mkPod(0, "web-old", pending), mkPod(2, "web-old", healthy))),
			[]string{"web-0", "!web-2"}, []string{"web-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.snap)
			var names []string
			for _, c := range got.claims {
				n := c.pod.Name
				if c.condemned {
					n = "!" + n
				}
				names = append(names, n)
			}
			if d := cmp.Diff(tc.want, names); d != "" {
				t.Errorf("claims (-want +got):\n%s", d)
			}
			var deleted []string
			for _, p := range got.delete {
				deleted = append(deleted, p.Name)
			}
			if d := cmp.Diff(tc.wantDelete, deleted); d != "" {
				t.Errorf("delete (-want +got):\n%s", d)
			}
		})
	}
}
