package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// An image volume's mounts take subPath and subPathExpr, as upstream
// allows since v1.33; the path must still stay inside the volume.
func TestValidateImageVolumeMounts(t *testing.T) {
	vols := map[string]corev1.VolumeSource{"img": {Image: &corev1.ImageVolumeSource{Reference: "example.com/data:1"}}}
	tests := []struct {
		name  string
		mount corev1.VolumeMount
		errs  int
	}{
		{"whole", corev1.VolumeMount{Name: "img", MountPath: "/data"}, 0},
		{"subPath", corev1.VolumeMount{Name: "img", MountPath: "/data", SubPath: "usr/share/data"}, 0},
		{"subPathExpr", corev1.VolumeMount{Name: "img", MountPath: "/data", SubPathExpr: "$(POD_NAME)"}, 0},
		{"subPath leaving the volume", corev1.VolumeMount{Name: "img", MountPath: "/data", SubPath: "../etc"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := validateVolumeMounts([]corev1.VolumeMount{tt.mount}, nil, vols, field.NewPath("volumeMounts"))
			if len(errs) != tt.errs {
				t.Errorf("%d errors, want %d: %v", len(errs), tt.errs, errs)
			}
		})
	}
}
