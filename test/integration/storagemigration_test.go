package integration

import (
	"testing"
	"time"

	svmv1 "k8s.io/api/storagemigration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/test/framework"
)

// storagemigration.k8s.io/v1 StorageVersionMigration is served as
// upstream's conformance test drives it
// (test/e2e/apimachinery/storage_version_migration.go): CRUD, status,
// every patch type, list, watch and deletecollection; then the immutable
// spec and upstream's status rules in 422s.
func TestStorageVersionMigration(t *testing.T) {
	c := framework.StartInProcess(t)
	ns := "svm"
	mustNamespace(t, c.Client, ns)
	const label = "test.storagemigration.example.com"
	labelPatch := `{"metadata": {"labels": {"test.storagemigration.example.com": "test"}}}`
	cond := `{"type": "TestCondition", "status": "True", "reason": "TestReason", "message": "TestMessage", "lastTransitionTime": "2026-01-01T00:00:00Z"}`
	statusPatch := `{"status": {"conditions": [` + cond + `]}}`

	driveAPICRUD(t, c, ns, apiCRUDCase{
		gvr:     svmv1.SchemeGroupVersion.WithResource("storageversionmigrations"),
		initial: &svmv1.StorageVersionMigration{Spec: svmv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Resource: "foo"}}},
		updateSpec: func(u *unstructured.Unstructured) {
			l := u.GetLabels()
			l[label] = "test"
			u.SetLabels(l)
		},
		wantSpec: labelIs(label, "test"),
		updateStatus: func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedSlice(u.Object, []interface{}{map[string]interface{}{
				"type": "TestCondition", "status": "True", "reason": "TestReason", "message": "TestMessage",
				"lastTransitionTime": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
			}}, "status", "conditions")
		},
		wantStatus: conditionIs("TestCondition", "True"),
		specPatches: map[types.PatchType]string{
			types.ApplyPatchType:          labelPatch,
			types.StrategicMergePatchType: labelPatch,
			types.MergePatchType:          labelPatch,
			types.JSONPatchType:           `[{"op": "add", "path": "/metadata/labels/test.storagemigration.example.com", "value": "test"}]`,
		},
		statusPatches: map[types.PatchType]string{
			types.ApplyPatchType:          statusPatch,
			types.StrategicMergePatchType: statusPatch,
			types.MergePatchType:          statusPatch,
			types.JSONPatchType:           `[{"op": "add", "path": "/status/conditions", "value": [` + cond + `]}]`,
		},
	})

	ctx := ctxT(t)
	svms := c.Client.StoragemigrationV1().StorageVersionMigrations()

	_, err := svms.Create(ctx, &svmv1.StorageVersionMigration{ObjectMeta: metav1.ObjectMeta{Name: "bad"}}, metav1.CreateOptions{})
	expectInvalid(t, err, "spec.resource.resource", "resource is required to be set")
	_, err = svms.Create(ctx, &svmv1.StorageVersionMigration{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: svmv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Group: "Bad_Group", Resource: "foos"}}}, metav1.CreateOptions{})
	expectInvalid(t, err, "spec.resource.group", "RFC 1123")

	m, err := svms.Create(ctx, &svmv1.StorageVersionMigration{ObjectMeta: metav1.ObjectMeta{Name: "deployments"},
		Spec: svmv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Group: "apps", Resource: "deployments"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Spec.Resource.Resource = "replicasets"
	_, err = svms.Update(ctx, m, metav1.UpdateOptions{})
	expectInvalid(t, err, "spec", "field is immutable")

	m, _ = svms.Get(ctx, "deployments", metav1.GetOptions{})
	now := metav1.Now()
	m.Status.Conditions = []metav1.Condition{
		{Type: string(svmv1.MigrationSucceeded), Status: metav1.ConditionTrue, Reason: "Done", LastTransitionTime: now},
		{Type: string(svmv1.MigrationFailed), Status: metav1.ConditionTrue, Reason: "Broken", LastTransitionTime: now},
	}
	_, err = svms.UpdateStatus(ctx, m, metav1.UpdateOptions{})
	expectInvalid(t, err, "status.conditions", "Both success and failed conditions cannot be true at the same time")

	m.Status.Conditions = m.Status.Conditions[:1]
	m.Status.ResourceVersion = "12"
	if m, err = svms.UpdateStatus(ctx, m, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("succeed: %v", err)
	}
	m.Status.Conditions[0].Status = metav1.ConditionFalse
	_, err = svms.UpdateStatus(ctx, m, metav1.UpdateOptions{})
	expectInvalid(t, err, "status.conditions", "Success condition cannot be set to false once it is true")
	m.Status.Conditions[0].Status = metav1.ConditionTrue
	m.Status.ResourceVersion = "13"
	_, err = svms.UpdateStatus(ctx, m, metav1.UpdateOptions{})
	expectInvalid(t, err, "status.resourceVersion", "field is immutable")

	// status.conditions is a list map keyed by type, as upstream's
	// markers say: two appliers each keep their own condition.
	if _, err := svms.Create(ctx, &svmv1.StorageVersionMigration{ObjectMeta: metav1.ObjectMeta{Name: "applied"},
		Spec: svmv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Resource: "configmaps"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct{ manager, typ string }{{"one", "Running"}, {"two", "Observed"}} {
		body := `{"apiVersion": "storagemigration.k8s.io/v1", "kind": "StorageVersionMigration", "metadata": {"name": "applied"},
			"status": {"conditions": [{"type": "` + a.typ + `", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}`
		if _, err := svms.Patch(ctx, "applied", types.ApplyPatchType, []byte(body), metav1.PatchOptions{FieldManager: a.manager}, "status"); err != nil {
			t.Fatalf("apply status as %s: %v", a.manager, err)
		}
	}
	m, err = svms.Get(ctx, "applied", metav1.GetOptions{})
	if err != nil || len(m.Status.Conditions) != 2 {
		t.Fatalf("applied conditions: %v %+v", err, m.Status.Conditions)
	}
}
