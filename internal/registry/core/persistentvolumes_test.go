package core

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
)

func pvBasic(mut func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               lrList("storage", "10Gi"),
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/pv1"}},
		},
	}
	if mut != nil {
		mut(pv)
	}
	return pv
}

func TestPVCreateDefaults(t *testing.T) {
	at := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	orig := pvNow
	pvNow = func() metav1.Time { return at }
	t.Cleanup(func() { pvNow = orig })

	r := PersistentVolumes()
	pv := pvBasic(func(pv *corev1.PersistentVolume) { pv.Status.Phase = corev1.VolumeBound })
	r.Strategy.PrepareForCreate(context.Background(), pv)
	r.Strategy.Default(pv)
	if pv.Status.Phase != corev1.VolumePending || pv.Status.LastPhaseTransitionTime == nil || !pv.Status.LastPhaseTransitionTime.Equal(&at) {
		t.Errorf("status = %+v", pv.Status)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("spec defaults = %q %v", pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.VolumeMode)
	}
	metaWantFields(t, validatePV(pv))

	later := metav1.NewTime(at.Add(time.Hour))
	pvNow = func() metav1.Time { return later }
	upd := pv.DeepCopy()
	upd.Status.Phase = corev1.VolumeAvailable
	r.Strategy.PrepareForStatusUpdate(context.Background(), upd, pv)
	if !upd.Status.LastPhaseTransitionTime.Equal(&later) {
		t.Errorf("phase change did not stamp the transition time: %v", upd.Status.LastPhaseTransitionTime)
	}
}

func TestPVValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*corev1.PersistentVolume)
		want []string
	}{
		{"valid", nil, nil},
		{"no access modes", func(pv *corev1.PersistentVolume) { pv.Spec.AccessModes = nil }, []string{"spec.accessModes"}},
		{"rwop with others", func(pv *corev1.PersistentVolume) {
			pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany}
		}, []string{"spec.accessModes"}},
		{"no capacity", func(pv *corev1.PersistentVolume) { pv.Spec.Capacity = nil }, []string{"spec.capacity"}},
		{"zero capacity", func(pv *corev1.PersistentVolume) { pv.Spec.Capacity = lrList("storage", "0") }, []string{"spec.capacity[storage]"}},
		{"no source", func(pv *corev1.PersistentVolume) { pv.Spec.HostPath = nil }, []string{"spec"}},
		{"two sources", func(pv *corev1.PersistentVolume) {
			pv.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}
		}, []string{"spec.nfs"}},
		{"local needs affinity", func(pv *corev1.PersistentVolume) {
			pv.Spec.HostPath, pv.Spec.Local = nil, &corev1.LocalVolumeSource{Path: "/mnt"}
		}, []string{"spec.nodeAffinity"}},
		{"bad reclaim policy", func(pv *corev1.PersistentVolume) { pv.Spec.PersistentVolumeReclaimPolicy = "Keep" }, []string{"spec.persistentVolumeReclaimPolicy"}},
		{"bad class", func(pv *corev1.PersistentVolume) { pv.Spec.StorageClassName = "Fast_SSD" }, []string{"spec.storageClassName"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validatePV(pvBasic(tc.mut)), tc.want...)
		})
	}
}

func TestPVUpdate(t *testing.T) {
	old := pvBasic(nil)
	defaultPV(old)
	pv := old.DeepCopy()
	pv.Spec.Capacity = lrList("storage", "20Gi")
	pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: "data"}
	metaWantFields(t, validatePVUpdate(pv, old))
	pv.Spec.HostPath.Path = "/elsewhere"
	pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
	metaWantFields(t, validatePVUpdate(pv, old), "spec.persistentvolumesource", "spec.volumeMode")
}

func TestPVTableAndFields(t *testing.T) {
	pv := pvBasic(func(pv *corev1.PersistentVolume) {
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: "data"}
		pv.Spec.StorageClassName = "standard"
		pv.Status.Phase = corev1.VolumeBound
	})
	defaultPV(pv)
	want := []interface{}{"pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "ns/data", "standard", "<unset>", "", "<unknown>", "Filesystem"}
	r := PersistentVolumes()
	if diff := cmp.Diff(want, r.Table.Row(pv)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fields.Set{"metadata.name": "pv1", "name": "pv1"}, r.Fields(pv)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
