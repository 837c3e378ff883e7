package localpath

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOwns(t *testing.T) {
	volume := func(name, node, path string, mutate ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{NodeLabel: node},
				Annotations: map[string]string{ProvisionedBy: Provisioner}},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}}},
		}
		for _, m := range mutate {
			m(pv)
		}
		return pv
	}
	const dir = "/var/lib/skiff/storage"
	for _, tc := range []struct {
		name string
		pv   *corev1.PersistentVolume
		want bool
	}{
		{"its own volume", volume("pvc-1", "a", dir+"/pvc-1"), true},
		{"another node's", volume("pvc-1", "b", dir+"/pvc-1"), false},
		{"another path", volume("pvc-1", "a", "/etc"), false},
		{"the storage directory itself", volume("pvc-1", "a", dir), false},
		{"another volume's directory", volume("pvc-1", "a", dir+"/pvc-2"), false},
		{"a path with steps back", volume("pvc-1", "a", dir+"/../pvc-1"), false},
		{"another provisioner", volume("pvc-1", "a", dir+"/pvc-1", func(pv *corev1.PersistentVolume) {
			pv.Annotations[ProvisionedBy] = "rancher.io/local-path"
		}), false},
		{"a hostPath volume", volume("pvc-1", "a", dir+"/pvc-1", func(pv *corev1.PersistentVolume) {
			pv.Spec.Local, pv.Spec.HostPath = nil, &corev1.HostPathVolumeSource{Path: dir + "/pvc-1"}
		}), false},
	} {
		if got := Owns(tc.pv, "a", dir); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
	if Owns(volume("pvc-1", "a", "storage/pvc-1"), "a", "storage") {
		t.Error("a relative storage directory is owned")
	}
}
