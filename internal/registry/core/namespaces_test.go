package core

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestNamespacesDescriptor(t *testing.T) {
	r := Namespaces()
	if r.Name != "namespaces" || r.Singular != "namespace" || r.Kind != "Namespace" || r.Namespaced || !r.Status {
		t.Errorf("descriptor = %+v", r)
	}
	if diff := cmp.Diff([]string{"ns"}, r.ShortNames); diff != "" {
		t.Errorf("shortNames: %s", diff)
	}
	if msgs := r.Strategy.NameValidation("a.b", false); len(msgs) == 0 {
		t.Errorf("namespace name a.b accepted; namespaces are DNS labels")
	}
}

func TestNamespaceCreate(t *testing.T) {
	r := Namespaces()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
		Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	r.Strategy.PrepareForCreate(context.Background(), ns)
	r.Strategy.Default(ns)
	want := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup", "kubernetes"}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	if diff := cmp.Diff(want, ns); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	assertErrKeys(t, r.Strategy.Validate(ns))

	ns.Spec.Finalizers = append(ns.Spec.Finalizers, "cleanup", "bad/name/x")
	assertErrKeys(t, r.Strategy.Validate(ns), "FieldValueInvalid spec.finalizers[2]", "FieldValueInvalid spec.finalizers[3]")
}

func TestNamespaceUpdate(t *testing.T) {
	r := Namespaces()
	old := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	ns := old.DeepCopy()
	ns.Labels = map[string]string{"env": "prod", "kubernetes.io/metadata.name": "other"}
	ns.Spec.Finalizers = nil
	ns.Status.Phase = corev1.NamespaceTerminating
	r.Strategy.PrepareForUpdate(context.Background(), ns, old)
	r.Strategy.Default(ns)
	if diff := cmp.Diff(map[string]string{"env": "prod", "kubernetes.io/metadata.name": "team-a"}, ns.Labels); diff != "" {
		t.Errorf("labels: %s", diff)
	}
	if len(ns.Spec.Finalizers) != 1 || ns.Status.Phase != corev1.NamespaceActive {
		t.Errorf("update changed finalizers or status: %+v", ns)
	}
	if ns.Generation != 0 {
		t.Errorf("generation = %d, namespaces have none", ns.Generation)
	}
}

func TestNamespaceStatusUpdate(t *testing.T) {
	r := Namespaces()
	old := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	ns := old.DeepCopy()
	ns.Status.Phase = corev1.NamespaceTerminating
	r.Strategy.PrepareForStatusUpdate(context.Background(), ns, old)
	if ns.Labels["kubernetes.io/metadata.name"] != "team-a" {
		t.Errorf("labels = %v", ns.Labels)
	}
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(ns, old), "FieldValueInvalid status.Phase")
	now := metav1.Now()
	ns.DeletionTimestamp = &now
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(ns, old))
	ns.Status.Phase = corev1.NamespaceActive
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(ns, old), "FieldValueInvalid status.Phase")
}

func TestNamespaceTableAndFields(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", CreationTimestamp: metav1.NewTime(time.Now().Add(-48 * time.Hour))},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	r := Namespaces()
	if diff := cmp.Diff([]interface{}{"team-a", "Active", "2d"}, r.Table.Row(ns)); diff != "" {
		t.Errorf("row: %s", diff)
	}
	want := fields.Set{"metadata.name": "team-a", "name": "team-a", "status.phase": "Active"}
	if diff := cmp.Diff(want, r.Fields(ns)); diff != "" {
		t.Errorf("fields: %s", diff)
	}
}
