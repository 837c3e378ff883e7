package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// resource.k8s.io/v1 (dynamic resource allocation) is served as
// upstream's conformance CRUD tests drive it (test/e2e/dra/dra.go, "CRUD
// Tests"): each of the five resources through create, get, update,
// status, every patch type, list, watch and deletecollection with the
// objects those tests send; then defaulting, immutability and upstream's
// validation messages in 422s.
func TestDRA(t *testing.T) {
	c := framework.StartInProcess(t)
	cs := c.Client
	ns := "dra"
	mustNamespace(t, cs, ns)
	gv := resourcev1.SchemeGroupVersion

	t.Run("DeviceClass", func(t *testing.T) {
		driveAPICRUD(t, c, ns, apiCRUDCase{
			gvr: gv.WithResource("deviceclasses"),
			initial: &resourcev1.DeviceClass{Spec: resourcev1.DeviceClassSpec{
				Selectors: []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: "false"}}},
			}},
			updateSpec: func(u *unstructured.Unstructured) {
				sel, _, _ := unstructured.NestedSlice(u.Object, "spec", "selectors")
				_ = unstructured.SetNestedField(sel[0].(map[string]interface{}), "1 == 0", "cel", "expression")
				_ = unstructured.SetNestedSlice(u.Object, sel, "spec", "selectors")
			},
			wantSpec: func(u *unstructured.Unstructured) error {
				sel, _, _ := unstructured.NestedSlice(u.Object, "spec", "selectors")
				if len(sel) != 1 {
					return fmt.Errorf("selectors %v", sel)
				}
				return fieldIs("1 == 0", "cel", "expression")(&unstructured.Unstructured{Object: sel[0].(map[string]interface{})})
			},
			specPatches: map[types.PatchType]string{types.StrategicMergePatchType: `{"spec": {"selectors": [{"cel": {"expression": "1 == 0"}}]}}`},
		})
	})

	t.Run("DeviceTaintRule", func(t *testing.T) {
		now := metav1.Now()
		nowJSON, _ := now.MarshalJSON()
		driveAPICRUD(t, c, ns, apiCRUDCase{
			gvr: gv.WithResource("devicetaintrules"),
			initial: &resourcev1.DeviceTaintRule{Spec: resourcev1.DeviceTaintRuleSpec{
				Taint: resourcev1.DeviceTaint{Key: "testing", Effect: resourcev1.DeviceTaintEffectNone},
			}},
			updateSpec: func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(u.Object, "NoExecute", "spec", "taint", "effect")
			},
			wantSpec: fieldIs("NoExecute", "spec", "taint", "effect"),
			updateStatus: func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedSlice(u.Object, []interface{}{map[string]interface{}{
					"type": "Testing", "status": "True", "lastTransitionTime": now.UTC().Format(time.RFC3339),
					"reason": "E2E_test_running", "message": "This condition can be ignored.",
				}}, "status", "conditions")
			},
			wantStatus:  conditionIs("Testing", "True"),
			specPatches: map[types.PatchType]string{types.StrategicMergePatchType: `{"spec": {"taint": {"effect": "NoExecute"}}}`},
			statusPatches: map[types.PatchType]string{types.StrategicMergePatchType: fmt.Sprintf(
				`{"status": {"conditions": [{"type": "Testing", "status": "True", "lastTransitionTime": %s, "reason": "E2E_test_running", "message": "This condition can be ignored."}]}}`, nowJSON)},
		})
	})

	claimSpec := resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
		Name: "req-0", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "dra.example.com"},
	}}}}
	addLabel := func(u *unstructured.Unstructured) {
		l := u.GetLabels()
		l["test.dra.example.com"] = "test"
		u.SetLabels(l)
	}
	labelPatch := `{"metadata": {"labels": {"test.dra.example.com": "test"}}}`

	t.Run("ResourceClaim", func(t *testing.T) {
		driveAPICRUD(t, c, ns, apiCRUDCase{
			gvr:        gv.WithResource("resourceclaims"),
			namespaced: true,
			initial:    &resourcev1.ResourceClaim{Spec: claimSpec},
			updateSpec: addLabel,
			wantSpec:   labelIs("test.dra.example.com", "test"),
			updateStatus: func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedMap(u.Object, map[string]interface{}{}, "status", "allocation")
			},
			wantStatus: func(u *unstructured.Unstructured) error {
				if _, found, _ := unstructured.NestedMap(u.Object, "status", "allocation"); !found {
					return fmt.Errorf("no status.allocation")
				}
				return nil
			},
			specPatches: map[types.PatchType]string{
				types.ApplyPatchType:          labelPatch,
				types.StrategicMergePatchType: labelPatch,
				types.MergePatchType:          labelPatch,
				types.JSONPatchType:           `[{"op": "add", "path": "/metadata/labels/test.dra.example.com", "value": "test"}]`,
			},
			statusPatches: map[types.PatchType]string{
				types.ApplyPatchType:          `{"status": {"allocation": {}}}`,
				types.StrategicMergePatchType: `{"status": {"allocation": {}}}`,
				types.MergePatchType:          `{"status": {"allocation": {}}}`,
				types.JSONPatchType:           `[{"op": "add", "path": "/status/allocation", "value": {}}]`,
			},
		})
	})

	t.Run("ResourceClaimTemplate", func(t *testing.T) {
		driveAPICRUD(t, c, ns, apiCRUDCase{
			gvr:         gv.WithResource("resourceclaimtemplates"),
			namespaced:  true,
			initial:     &resourcev1.ResourceClaimTemplate{Spec: resourcev1.ResourceClaimTemplateSpec{Spec: claimSpec}},
			updateSpec:  addLabel,
			wantSpec:    labelIs("test.dra.example.com", "test"),
			specPatches: map[types.PatchType]string{types.StrategicMergePatchType: labelPatch},
		})
	})

	t.Run("ResourceSlice", func(t *testing.T) {
		driveAPICRUD(t, c, ns, apiCRUDCase{
			gvr: gv.WithResource("resourceslices"),
			initial: &resourcev1.ResourceSlice{Spec: resourcev1.ResourceSliceSpec{
				Driver:   "dra.example.com",
				Pool:     resourcev1.ResourcePool{Name: "cluster", Generation: 1, ResourceSliceCount: 1},
				NodeName: ptr.To("no-such-node"),
			}},
			updateSpec: func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedSlice(u.Object, []interface{}{map[string]interface{}{"name": "device-0"}}, "spec", "devices")
			},
			wantSpec: func(u *unstructured.Unstructured) error {
				d, _, _ := unstructured.NestedSlice(u.Object, "spec", "devices")
				if len(d) != 1 || d[0].(map[string]interface{})["name"] != "device-0" {
					return fmt.Errorf("devices %v", d)
				}
				return nil
			},
			specPatches: map[types.PatchType]string{types.StrategicMergePatchType: `{"spec": {"devices": [{"name": "device-0"}]}}`},
		})
	})

	ctx := ctxT(t)
	rs := cs.ResourceV1()

	t.Run("defaults", func(t *testing.T) {
		claim, err := rs.ResourceClaims(ns).Create(ctx, &resourcev1.ResourceClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "defaulted"},
			Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
				Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "gpu.example.com",
					Tolerations: []resourcev1.DeviceToleration{{Key: "k", Value: "v"}}},
			}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e := claim.Spec.Devices.Requests[0].Exactly
		if e.AllocationMode != resourcev1.DeviceAllocationModeExactCount || e.Count != 1 || e.Tolerations[0].Operator != resourcev1.DeviceTolerationOpEqual {
			t.Errorf("defaults: mode %q count %d operator %q", e.AllocationMode, e.Count, e.Tolerations[0].Operator)
		}
		rule, err := rs.DeviceTaintRules().Create(ctx, &resourcev1.DeviceTaintRule{
			ObjectMeta: metav1.ObjectMeta{Name: "timeadded"},
			Spec:       resourcev1.DeviceTaintRuleSpec{Taint: resourcev1.DeviceTaint{Key: "k", Effect: resourcev1.DeviceTaintEffectNoSchedule}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rule.Spec.Taint.TimeAdded == nil || rule.Generation != 1 {
			t.Errorf("taint rule: timeAdded %v generation %d", rule.Spec.Taint.TimeAdded, rule.Generation)
		}
	})

	t.Run("immutable", func(t *testing.T) {
		claim, err := rs.ResourceClaims(ns).Get(ctx, "defaulted", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		claim.Spec.Devices.Requests[0].Exactly.DeviceClassName = "other.example.com"
		_, err = rs.ResourceClaims(ns).Update(ctx, claim, metav1.UpdateOptions{})
		expectInvalid(t, err, "spec", "field is immutable")

		slice, err := rs.ResourceSlices().Create(ctx, &resourcev1.ResourceSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "node-a-slice"},
			Spec: resourcev1.ResourceSliceSpec{Driver: "dra.example.com", NodeName: ptr.To("node-a"),
				Pool: resourcev1.ResourcePool{Name: "node-a", ResourceSliceCount: 1}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		slice.Spec.Driver = "other.example.com"
		_, err = rs.ResourceSlices().Update(ctx, slice, metav1.UpdateOptions{})
		expectInvalid(t, err, "spec.driver", "field is immutable")

		// Upstream's field selectors on slices.
		list, err := rs.ResourceSlices().List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-a,spec.driver=dra.example.com"})
		if err != nil || len(list.Items) != 1 || list.Items[0].Name != "node-a-slice" {
			t.Fatalf("field selector: %v %v", err, list)
		}

		// An allocation is never changed once made.
		claim, _ = rs.ResourceClaims(ns).Get(ctx, "defaulted", metav1.GetOptions{})
		claim.Status.Allocation = &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{Results: []resourcev1.DeviceRequestAllocationResult{{
			Request: "gpu", Driver: "dra.example.com", Pool: "node-a", Device: "gpu-0"}}}}
		claim, err = rs.ResourceClaims(ns).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		claim.Status.Allocation.Devices.Results[0].Device = "gpu-1"
		_, err = rs.ResourceClaims(ns).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
		expectInvalid(t, err, "status.allocation", "field is immutable")
	})

	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			create     func() error
			field, msg string
		}{{
			name: "class selector without cel",
			create: func() error {
				_, err := rs.DeviceClasses().Create(ctx, &resourcev1.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
					Spec: resourcev1.DeviceClassSpec{Selectors: []resourcev1.DeviceSelector{{}}}}, metav1.CreateOptions{})
				return err
			},
			field: "spec.selectors[0].cel", msg: "Required value",
		}, {
			name: "request with neither exactly nor firstAvailable",
			create: func() error {
				_, err := rs.ResourceClaims(ns).Create(ctx, &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
					Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{Name: "r"}}}}}, metav1.CreateOptions{})
				return err
			},
			field: "spec.devices.requests[0]", msg: "exactly one of `exactly` or `firstAvailable` is required",
		}, {
			name: "duplicate request names in a template",
			create: func() error {
				req := resourcev1.DeviceRequest{Name: "r", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "c"}}
				_, err := rs.ResourceClaimTemplates(ns).Create(ctx, &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
					Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{
						Requests: []resourcev1.DeviceRequest{req, req}}}}}, metav1.CreateOptions{})
				return err
			},
			field: "spec.spec.devices.requests[1]", msg: "Duplicate value",
		}, {
			name: "slice without node selection",
			create: func() error {
				_, err := rs.ResourceSlices().Create(ctx, &resourcev1.ResourceSlice{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
					Spec: resourcev1.ResourceSliceSpec{Driver: "dra.example.com", Pool: resourcev1.ResourcePool{Name: "p", ResourceSliceCount: 1}}}, metav1.CreateOptions{})
				return err
			},
			field: "spec", msg: "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required",
		}, {
			name: "slice with a bad driver name",
			create: func() error {
				_, err := rs.ResourceSlices().Create(ctx, &resourcev1.ResourceSlice{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
					Spec: resourcev1.ResourceSliceSpec{Driver: "Not_A_Driver", AllNodes: ptr.To(true), Pool: resourcev1.ResourcePool{Name: "p", ResourceSliceCount: 1}}}, metav1.CreateOptions{})
				return err
			},
			field: "spec.driver", msg: "RFC 1123",
		}, {
			name: "taint rule with an unknown effect",
			create: func() error {
				_, err := rs.DeviceTaintRules().Create(ctx, &resourcev1.DeviceTaintRule{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
					Spec: resourcev1.DeviceTaintRuleSpec{Taint: resourcev1.DeviceTaint{Key: "k", Effect: "Sometimes"}}}, metav1.CreateOptions{})
				return err
			},
			field: "spec.taint.effect", msg: "Unsupported value",
		}, {
			name: "status reservation without allocation",
			create: func() error {
				claim, err := rs.ResourceClaims(ns).Create(ctx, &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{GenerateName: "reserve-"}, Spec: claimSpec}, metav1.CreateOptions{})
				if err != nil {
					return err
				}
				claim.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{{Resource: "pods", Name: "p", UID: "1234"}}
				_, err = rs.ResourceClaims(ns).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
				return err
			},
			field: "status.reservedFor", msg: "may not be specified when `allocated` is not set",
		}} {
			t.Run(tc.name, func(t *testing.T) {
				expectInvalid(t, tc.create(), tc.field, tc.msg)
			})
		}
	})

	t.Run("openapi", func(t *testing.T) {
		doc, err := cs.Discovery().RESTClient().Get().AbsPath("/openapi/v3/apis/resource.k8s.io/v1").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, def := range []string{"io.k8s.api.resource.v1.DeviceClass", "io.k8s.api.resource.v1.ResourceClaim", "io.k8s.api.resource.v1.ResourceClaimTemplate",
			"io.k8s.api.resource.v1.ResourceSlice", "io.k8s.api.resource.v1.DeviceTaintRule"} {
			if !strings.Contains(string(doc), `"`+def+`"`) {
				t.Errorf("OpenAPI lacks %s", def)
			}
		}
	})

	t.Run("protobuf", func(t *testing.T) {
		cfg := rest.CopyConfig(c.Config)
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf"
		pb, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pb.ResourceV1().DeviceClasses().Create(ctx, &resourcev1.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "proto"}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create over protobuf: %v", err)
		}
		list, err := pb.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) == 0 {
			t.Fatalf("list over protobuf: %v, %d items", err, len(list.Items))
		}
	})

	t.Run("table", func(t *testing.T) {
		raw, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/resource.k8s.io/v1/namespaces", ns, "resourceclaims", "defaulted").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil || !strings.Contains(string(raw), `"allocated"`) {
			t.Fatalf("table: %v %s", err, raw)
		}
	})
}

// conditionIs checks that status.conditions has one of type typ with
// status st.
func conditionIs(typ, st string) func(*unstructured.Unstructured) error {
	return func(u *unstructured.Unstructured) error {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]interface{})
			if m["type"] == typ && m["status"] == st {
				return nil
			}
		}
		return fmt.Errorf("no condition %s=%s in %v", typ, st, conds)
	}
}
