package admission

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/apiserver"
)

func TestStorageObjectInUseProtection(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   apiserver.Operation
		obj  runtime.Object
		want []string
	}{
		{"new claim", apiserver.Create, &corev1.PersistentVolumeClaim{}, []string{"kubernetes.io/pvc-protection"}},
		{"new volume", apiserver.Create, &corev1.PersistentVolume{}, []string{"kubernetes.io/pv-protection"}},
		{"claim with it already", apiserver.Create, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
			Finalizers: []string{"x", "kubernetes.io/pvc-protection"}}}, []string{"x", "kubernetes.io/pvc-protection"}},
		{"volume with another", apiserver.Create, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{
			Finalizers: []string{"skiff.io/local-path"}}}, []string{"skiff.io/local-path", "kubernetes.io/pv-protection"}},
		{"update", apiserver.Update, &corev1.PersistentVolumeClaim{}, nil},
	} {
		req := &apiserver.AdmissionRequest{Operation: tc.op, Obj: tc.obj}
		if err := (StorageObjectInUseProtection{}).Admit(context.Background(), req); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m := tc.obj.(metav1.Object)
		if !slices.Equal(m.GetFinalizers(), tc.want) {
			t.Errorf("%s: finalizers %v, want %v", tc.name, m.GetFinalizers(), tc.want)
		}
	}
}
