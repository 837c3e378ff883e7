package core

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func pvcBasic(mut func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: lrList("storage", "1Gi")},
		},
	}
	defaultPVC(pvc)
	if mut != nil {
		mut(pvc)
	}
	return pvc
}

func TestPVCDefaultsAndValidate(t *testing.T) {
	pvc := pvcBasic(nil)
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeMode == nil || *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("defaults: phase %q volumeMode %v", pvc.Status.Phase, pvc.Spec.VolumeMode)
	}
	for _, tc := range []struct {
		name string
		mut  func(*corev1.PersistentVolumeClaim)
		want []string
	}{
		{"valid", nil, nil},
		{"no access modes", func(p *corev1.PersistentVolumeClaim) { p.Spec.AccessModes = nil }, []string{"spec.accessModes"}},
		{"bad access mode", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadSometimes"}
		}, []string{"spec.accessModes"}},
		{"no storage request", func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = nil }, []string{"spec.resources[storage]"}},
		{"zero storage request", func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = lrList("storage", "0") }, []string{"spec.resources[storage]"}},
		{"bad volume mode", func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeMode("Raw")) }, []string{"spec.volumeMode"}},
		{"empty attributes class", func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeAttributesClassName = ptr.To("") }, []string{"spec.volumeAttributesClassName"}},
		{"data source without name", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim"}
		}, []string{"spec.dataSource.name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validatePVC(pvcBasic(tc.mut)), tc.want...)
		})
	}
}

func TestPVCUpdate(t *testing.T) {
	bound := pvcBasic(func(p *corev1.PersistentVolumeClaim) {
		p.Spec.VolumeName = "pv1"
		p.Status.Phase = corev1.ClaimBound
		p.Status.Capacity = lrList("storage", "1Gi")
	})
	for _, tc := range []struct {
		name string
		old  *corev1.PersistentVolumeClaim
		mut  func(*corev1.PersistentVolumeClaim)
		want []string
	}{
		{"binding sets volumeName once", pvcBasic(nil), func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeName = "pv1" }, nil},
		{"expansion of a bound claim", bound, func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = lrList("storage", "5Gi") }, nil},
		{"shrinking below capacity", bound, func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = lrList("storage", "500Mi") }, []string{"spec.resources.requests.storage"}},
		{"expansion of an unbound claim", pvcBasic(nil), func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = lrList("storage", "5Gi") }, []string{"spec"}},
		{"access modes are immutable", bound, func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, []string{"spec"}},
		{"volumeName may not change once set", bound, func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeName = "pv2" }, []string{"spec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pvc := tc.old.DeepCopy()
			tc.mut(pvc)
			metaWantFields(t, validatePVCUpdate(pvc, tc.old), tc.want...)
		})
	}
}

func TestPVCTable(t *testing.T) {
	tab := PersistentVolumeClaims().Table
	pending := pvcBasic(func(p *corev1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr.To("standard") })
	if diff := cmp.Diff([]interface{}{"data", "Pending", "", "", "", "standard", "<unset>", "<unknown>", "Filesystem"}, tab.Row(pending)); diff != "" {
		t.Errorf("pending row (-want +got):\n%s", diff)
	}
	bound := pvcBasic(func(p *corev1.PersistentVolumeClaim) {
		p.Spec.VolumeName = "pv1"
		p.Status.Phase = corev1.ClaimBound
		p.Status.Capacity = lrList("storage", "2Gi")
		p.Status.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
		p.Annotations = map[string]string{pvBetaStorageClassAnnotation: "legacy"}
	})
	if diff := cmp.Diff([]interface{}{"data", "Bound", "pv1", "2Gi", "RWOP", "legacy", "<unset>", "<unknown>", "Filesystem"}, tab.Row(bound)); diff != "" {
		t.Errorf("bound row (-want +got):\n%s", diff)
	}
}
