package integration

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/skiff-io/skiff/test/framework"
)

// webApply is the apply configuration of a one-container Deployment with
// the given replicas; its port leaves the protocol to defaulting.
func webApply(ns string, replicas int32) *appsv1ac.DeploymentApplyConfiguration {
	labels := map[string]string{"app": "web"}
	return appsv1ac.Deployment("web", ns).
		WithLabels(labels).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels).
				WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().
					WithName("web").WithImage("busybox:1.36").
					WithPorts(corev1ac.ContainerPort().WithContainerPort(8080))))))
}

// managers lists an object's managedFields as "manager/operation/subresource".
func managers(m metav1.Object) []string {
	var out []string
	for _, e := range m.GetManagedFields() {
		out = append(out, e.Manager+"/"+string(e.Operation)+"/"+e.Subresource)
	}
	return out
}

// ownedBy reports whether manager's entry (of operation op) owns path,
// given as the fieldsV1 keys from the root ("f:spec", "f:replicas").
func ownedBy(t *testing.T, m metav1.Object, manager string, op metav1.ManagedFieldsOperationType, path ...string) bool {
	t.Helper()
	for _, e := range m.GetManagedFields() {
		if e.Manager != manager || e.Operation != op || e.FieldsV1 == nil {
			continue
		}
		var node map[string]any
		if err := json.Unmarshal(e.FieldsV1.Raw, &node); err != nil {
			t.Fatalf("fieldsV1 of %s: %v", manager, err)
		}
		found := true
		for _, p := range path {
			next, ok := node[p].(map[string]any)
			if !ok {
				found = false
				break
			}
			node = next
		}
		if found {
			return true
		}
	}
	return false
}

func TestServerSideApply(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	mustNamespace(t, c.Client, "ssa")
	deploys := c.Client.AppsV1().Deployments("ssa")

	// Create on apply.
	d, err := deploys.Apply(ctx, webApply("ssa", 2), metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("apply (create): %v", err)
	}
	if d.UID == "" || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("created deployment: %+v", d)
	}
	if diff := cmp.Diff([]string{"alice/Apply/"}, managers(d)); diff != "" {
		t.Errorf("managers after create (-want +got):\n%s", diff)
	}
	if !ownedBy(t, d, "alice", metav1.ManagedFieldsOperationApply, "f:spec", "f:replicas") {
		t.Errorf("alice does not own .spec.replicas: %+v", d.ManagedFields)
	}

	// The same apply again changes nothing, the port included: the
	// defaulted protocol is part of the list key.
	again, err := deploys.Apply(ctx, webApply("ssa", 2), metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("apply (again): %v", err)
	}
	if again.ResourceVersion != d.ResourceVersion || len(again.Spec.Template.Spec.Containers[0].Ports) != 1 {
		t.Errorf("re-apply changed the object: rv %s -> %s, ports %v", d.ResourceVersion, again.ResourceVersion, again.Spec.Template.Spec.Containers[0].Ports)
	}

	// Another manager setting replicas to another value conflicts.
	_, err = deploys.Apply(ctx, webApply("ssa", 5), metav1.ApplyOptions{FieldManager: "bob"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply by bob: want Conflict, got %v", err)
	}
	st := err.(apierrors.APIStatus).Status()
	if want := `Apply failed with 1 conflict: conflict with "alice": .spec.replicas`; st.Message != want {
		t.Errorf("conflict message %q, want %q", st.Message, want)
	}
	wantCauses := []metav1.StatusCause{{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "alice"`, Field: ".spec.replicas"}}
	if st.Details == nil || !cmp.Equal(wantCauses, st.Details.Causes) {
		t.Errorf("conflict causes %+v, want %+v", st.Details, wantCauses)
	}

	// The same value is shared ownership, not a conflict.
	shared, err := deploys.Apply(ctx, appsv1ac.Deployment("web", "ssa").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(2)),
		metav1.ApplyOptions{FieldManager: "carol"})
	if err != nil {
		t.Fatalf("apply of the same value: %v", err)
	}
	if !ownedBy(t, shared, "carol", metav1.ManagedFieldsOperationApply, "f:spec", "f:replicas") ||
		!ownedBy(t, shared, "alice", metav1.ManagedFieldsOperationApply, "f:spec", "f:replicas") {
		t.Errorf("replicas not shared by alice and carol: %v", managers(shared))
	}

	// force takes the field over.
	forced, err := deploys.Apply(ctx, webApply("ssa", 5), metav1.ApplyOptions{FieldManager: "bob", Force: true})
	if err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	if *forced.Spec.Replicas != 5 || ownedBy(t, forced, "alice", metav1.ManagedFieldsOperationApply, "f:spec", "f:replicas") ||
		!ownedBy(t, forced, "bob", metav1.ManagedFieldsOperationApply, "f:spec", "f:replicas") {
		t.Errorf("forced apply: replicas %d, managedFields %+v", *forced.Spec.Replicas, forced.ManagedFields)
	}

	// A dry run answers the result and stores nothing.
	dry, err := deploys.Apply(ctx, webApply("ssa", 7), metav1.ApplyOptions{FieldManager: "bob", DryRun: []string{metav1.DryRunAll}})
	if err != nil || *dry.Spec.Replicas != 7 {
		t.Fatalf("dry-run apply: %v", err)
	}
	if got, _ := deploys.Get(ctx, "web", metav1.GetOptions{}); *got.Spec.Replicas != 5 {
		t.Errorf("dry run stored replicas %d", *got.Spec.Replicas)
	}

	// A plain update records an Update entry for its manager.
	cur, err := deploys.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels["tier"] = "front"
	upd, err := deploys.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "dave"})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if !ownedBy(t, upd, "dave", metav1.ManagedFieldsOperationUpdate, "f:metadata", "f:labels", "f:tier") {
		t.Errorf("dave does not own the label it set: %+v", upd.ManagedFields)
	}

	// Status applies touch status only, recorded with the subresource.
	status := appsv1ac.Deployment("web", "ssa").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(9)).
		WithStatus(appsv1ac.DeploymentStatus().WithObservedGeneration(1).WithReplicas(3))
	sd, err := deploys.ApplyStatus(ctx, status, metav1.ApplyOptions{FieldManager: "ctrl", Force: true})
	if err != nil {
		t.Fatalf("apply status: %v", err)
	}
	if sd.Status.Replicas != 3 || *sd.Spec.Replicas != 5 {
		t.Errorf("status apply: status.replicas %d (want 3), spec.replicas %d (want 5)", sd.Status.Replicas, *sd.Spec.Replicas)
	}
	if !ownedBy(t, sd, "ctrl", metav1.ManagedFieldsOperationApply, "f:status", "f:replicas") ||
		ownedBy(t, sd, "ctrl", metav1.ManagedFieldsOperationApply, "f:spec") {
		t.Errorf("ctrl's ownership after a status apply: %+v", sd.ManagedFields)
	}
	for _, e := range sd.ManagedFields {
		if e.Manager == "ctrl" && e.Subresource != "status" {
			t.Errorf("ctrl's entry has subresource %q", e.Subresource)
		}
	}
	// A status apply does not create.
	if _, err := deploys.ApplyStatus(ctx, appsv1ac.Deployment("nope", "ssa"), metav1.ApplyOptions{FieldManager: "ctrl"}); !apierrors.IsNotFound(err) {
		t.Errorf("status apply of a missing object: want NotFound, got %v", err)
	}

	// Scale writes are recorded with the scale subresource.
	sc, err := deploys.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 4
	if _, err := deploys.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{FieldManager: "hpa"}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	scaled, _ := deploys.Get(ctx, "web", metav1.GetOptions{})
	found := false
	for _, e := range scaled.ManagedFields {
		found = found || (e.Manager == "hpa" && e.Subresource == "scale")
	}
	if !found || !ownedBy(t, scaled, "hpa", metav1.ManagedFieldsOperationUpdate, "f:spec", "f:replicas") {
		t.Errorf("scale write not recorded: %+v", scaled.ManagedFields)
	}
}

func TestApplyRequestErrors(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	mustNamespace(t, c.Client, "ssaerr")
	rc := c.Client.CoreV1().RESTClient()
	cm := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}`)

	tests := []struct {
		name   string
		body   []byte
		params map[string]string
		code   int
		msg    string
	}{
		{name: "no field manager", body: cm, code: http.StatusUnprocessableEntity,
			msg: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"},
		{name: "unknown field", body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"bogus":1}`),
			params: map[string]string{"fieldManager": "m"}, code: http.StatusBadRequest},
		{name: "wrong name", body: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`),
			params: map[string]string{"fieldManager": "m"}, code: http.StatusBadRequest,
			msg: "the name of the object (b) does not match the name on the URL (a)"},
		{name: "wrong kind", body: []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}`),
			params: map[string]string{"fieldManager": "m"}, code: http.StatusBadRequest},
		{name: "duplicate field, strict", body: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n  k: w\n"),
			params: map[string]string{"fieldManager": "m", "fieldValidation": "Strict"}, code: http.StatusBadRequest},
		{name: "force on a merge patch", body: []byte(`{}`), params: map[string]string{"force": "true"}, code: http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := types.ApplyYAMLPatchType
			if tt.params["force"] != "" {
				pt = types.MergePatchType
			}
			req := rc.Patch(pt).Namespace("ssaerr").Resource("configmaps").Name("a").Body(tt.body)
			for k, v := range tt.params {
				req = req.Param(k, v)
			}
			err := req.Do(ctx).Error()
			var st apierrors.APIStatus
			if err == nil || !asStatus(err, &st) {
				t.Fatalf("want an API error, got %v", err)
			}
			if int(st.Status().Code) != tt.code {
				t.Errorf("code %d, want %d (%s)", st.Status().Code, tt.code, st.Status().Message)
			}
			if tt.msg != "" && st.Status().Message != tt.msg {
				t.Errorf("message %q, want %q", st.Status().Message, tt.msg)
			}
		})
	}
}

func asStatus(err error, st *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	*st = s
	return ok
}

// The upgrade from client-side to server-side apply, as kubectl does it:
// a client-side apply (manager kubectl-client-side-apply, with the
// last-applied-configuration annotation) then an apply by manager
// "kubectl" takes the fields over without conflict.
func TestApplyUpgradesClientSideApply(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	mustNamespace(t, c.Client, "csa")
	deploys := c.Client.AppsV1().Deployments("csa")

	csa := &appsv1.Deployment{}
	raw, _ := json.Marshal(webApply("csa", 2))
	if err := json.Unmarshal(raw, csa); err != nil {
		t.Fatal(err)
	}
	csa.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: string(raw)}
	if _, err := deploys.Create(ctx, csa, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
		t.Fatalf("client-side create: %v", err)
	}
	// Another manager conflicts...
	if _, err := deploys.Apply(ctx, webApply("csa", 3), metav1.ApplyOptions{FieldManager: "other"}); !apierrors.IsConflict(err) {
		t.Fatalf("apply by other: want Conflict, got %v", err)
	}
	// ...kubectl does not, and takes ownership.
	d, err := deploys.Apply(ctx, webApply("csa", 3), metav1.ApplyOptions{FieldManager: "kubectl"})
	if err != nil {
		t.Fatalf("server-side apply after client-side apply: %v", err)
	}
	if *d.Spec.Replicas != 3 || !ownedBy(t, d, "kubectl", metav1.ManagedFieldsOperationApply, "f:spec", "f:replicas") ||
		ownedBy(t, d, "kubectl-client-side-apply", metav1.ManagedFieldsOperationUpdate, "f:spec", "f:replicas") {
		t.Errorf("after the upgrade: replicas %d, managedFields %+v", *d.Spec.Replicas, d.ManagedFields)
	}
	// The annotation follows the server-side apply.
	var last map[string]any
	if err := json.Unmarshal([]byte(d.Annotations[corev1.LastAppliedConfigAnnotation]), &last); err != nil {
		t.Fatalf("last-applied annotation: %v", err)
	}
	if got := last["spec"].(map[string]any)["replicas"]; got != float64(3) {
		t.Errorf("last-applied replicas %v, want 3", got)
	}
}

// managedFields given by a request are honoured when valid, and a list
// of one empty entry resets them (an empty list would do in JSON, but
// protobuf, client-go's default, cannot tell it from none).
func TestManagedFieldsFromRequests(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	mustNamespace(t, c.Client, "mf")
	cms := c.Client.CoreV1().ConfigMaps("mf")

	created, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Without a fieldManager the manager is the User-Agent's prefix.
	if len(created.ManagedFields) != 1 || created.ManagedFields[0].Manager == "" || created.ManagedFields[0].Time == nil ||
		created.ManagedFields[0].FieldsType != "FieldsV1" || created.ManagedFields[0].APIVersion != "v1" {
		t.Fatalf("managedFields on create: %+v", created.ManagedFields)
	}
	created.ManagedFields = []metav1.ManagedFieldsEntry{{}}
	reset, err := cms.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reset.ManagedFields) != 0 {
		t.Errorf("empty managedFields did not reset: %+v", reset.ManagedFields)
	}
	// Update without managedFields keeps the stored ones (none now), and
	// a later apply starts tracking again.
	applied, err := cms.Apply(ctx, corev1ac.ConfigMap("a", "mf").WithData(map[string]string{"k": "v"}), metav1.ApplyOptions{FieldManager: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m/Apply/", "before-first-apply/Update/"}, managers(applied)); diff != "" {
		t.Errorf("managers (-want +got):\n%s", diff)
	}
	// Reads show them.
	got, err := cms.Get(ctx, "a", metav1.GetOptions{})
	if err != nil || len(got.ManagedFields) != 2 {
		t.Errorf("get: %v, %d entries", err, len(got.ManagedFields))
	}
}
