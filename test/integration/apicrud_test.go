package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// apiCRUDCase describes one resource for driveAPICRUD, in the shape of
// upstream's conformance ResourceTestcase (test/e2e/framework/conformance):
// an initial object, a spec update, an optional status update, and
// patches of each type that make the same changes.
type apiCRUDCase struct {
	gvr        schema.GroupVersionResource
	namespaced bool
	// initial is the object to create (name "test", suffixed with the
	// namespace when cluster-scoped, as upstream's test does).
	initial runtime.Object
	// updateSpec and updateStatus change an object as upstream's
	// UpdateSpec and UpdateStatus do; updateStatus nil means the resource
	// has no status subresource to test.
	updateSpec, updateStatus func(u *unstructured.Unstructured)
	// wantSpec and wantStatus check that the change is in an object
	// returned after an update or patch of the spec or status.
	wantSpec, wantStatus func(u *unstructured.Unstructured) error
	// specPatches and statusPatches by patch type; the patch bodies get
	// apiVersion, kind, name, namespace and uid added, as upstream's do
	// (JSON patches excepted).
	specPatches, statusPatches map[types.PatchType]string
}

const crudLabel = "e2e-test.kubernetes.io"

// driveAPICRUD runs upstream's TestResource sequence against c with the
// dynamic client: discovery, create (fieldValidation Strict), get,
// update, status update and get of /status, each patch after a fresh
// create, list by label (and across namespaces), deletecollection — and
// checks after each step that a label-selected watch saw exactly the
// events upstream's informers expect, with resourceVersions that never
// go back.
func driveAPICRUD(t *testing.T, c *framework.Cluster, ns string, tc apiCRUDCase) {
	t.Helper()
	ctx := ctxT(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	gv := tc.gvr.GroupVersion()

	// Discovery lists the resource (and its status).
	list, err := c.Client.Discovery().ServerResourcesForGroupVersion(gv.String())
	if err != nil {
		t.Fatalf("discovery of %s: %v", gv, err)
	}
	var names []string
	kind := ""
	for _, r := range list.APIResources {
		names = append(names, r.Name)
		if r.Name == tc.gvr.Resource {
			kind = r.Kind
		}
	}
	if !slices.Contains(names, tc.gvr.Resource) {
		t.Fatalf("discovery of %s lacks %s: %v", gv, tc.gvr.Resource, names)
	}
	if tc.updateStatus != nil && !slices.Contains(names, tc.gvr.Resource+"/status") {
		t.Fatalf("discovery of %s lacks %s/status: %v", gv, tc.gvr.Resource, names)
	}

	raw, err := json.Marshal(tc.initial)
	if err != nil {
		t.Fatal(err)
	}
	initial := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &initial.Object); err != nil {
		t.Fatal(err)
	}
	initial.SetAPIVersion(gv.String())
	initial.SetKind(kind)
	initial.SetName("test")
	labelValue := "crud-" + ns
	initial.SetLabels(map[string]string{crudLabel: labelValue})
	rc := dyn.Resource(tc.gvr)
	var client dynamic.ResourceInterface = rc
	if tc.namespaced {
		initial.SetNamespace(ns)
		client = rc.Namespace(ns)
	} else {
		initial.SetName("test-" + ns)
	}
	name := initial.GetName()
	selector := metav1.ListOptions{LabelSelector: crudLabel + "=" + labelValue}

	w, err := rc.Watch(ctx, selector)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	t.Cleanup(w.Stop)
	lastRV := int64(0)
	expect := func(step string, want ...watch.EventType) {
		t.Helper()
		for _, typ := range want {
			select {
			case ev := <-w.ResultChan():
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					t.Fatalf("%s: watch event %s with %T", step, ev.Type, ev.Object)
				}
				if ev.Type != typ || u.GetName() != name {
					t.Fatalf("%s: watch event %s %s, want %s %s", step, ev.Type, u.GetName(), typ, name)
				}
				rv, err := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
				if err != nil || rv < lastRV {
					t.Fatalf("%s: resourceVersion %q after %d", step, u.GetResourceVersion(), lastRV)
				}
				lastRV = rv
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no %s watch event", step, typ)
			}
		}
		select {
		case ev := <-w.ResultChan():
			t.Fatalf("%s: unexpected watch event %s", step, ev.Type)
		case <-time.After(50 * time.Millisecond):
		}
	}
	check := func(step string, f func(*unstructured.Unstructured) error, u *unstructured.Unstructured) {
		t.Helper()
		if u.GetName() != name || u.GetNamespace() != initial.GetNamespace() {
			t.Fatalf("%s: returned %s/%s", step, u.GetNamespace(), u.GetName())
		}
		if f != nil {
			if err := f(u); err != nil {
				t.Fatalf("%s: %v\n%v", step, err, u.Object)
			}
		}
	}
	deleteAndWait := func(step string) {
		t.Helper()
		if err := client.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("%s: delete: %v", step, err)
		}
		if _, err := client.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: get after delete: want NotFound, got %v", step, err)
		}
		expect(step+": delete", watch.Deleted)
	}
	create := func(step string, strict bool) *unstructured.Unstructured {
		t.Helper()
		opts := metav1.CreateOptions{}
		if strict {
			opts.FieldValidation = "Strict"
		}
		u, err := client.Create(ctx, initial.DeepCopy(), opts)
		if err != nil {
			t.Fatalf("%s: create: %v", step, err)
		}
		check(step+": create", nil, u)
		expect(step+": create", watch.Added)
		return u
	}
	update := func(step string, u *unstructured.Unstructured) *unstructured.Unstructured {
		t.Helper()
		u = u.DeepCopy()
		tc.updateSpec(u)
		out, err := client.Update(ctx, u, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("%s: update: %v", step, err)
		}
		check(step+": update", tc.wantSpec, out)
		expect(step+": update", watch.Modified)
		return out
	}
	patch := func(step string, u *unstructured.Unstructured, pt types.PatchType, body string, sub ...string) *unstructured.Unstructured {
		t.Helper()
		data := []byte(body)
		if pt != types.JSONPatchType {
			p := map[string]interface{}{}
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			po := &unstructured.Unstructured{Object: p}
			po.SetAPIVersion(u.GetAPIVersion())
			po.SetKind(u.GetKind())
			po.SetName(name)
			po.SetNamespace(u.GetNamespace())
			po.SetUID(u.GetUID())
			if data, err = po.MarshalJSON(); err != nil {
				t.Fatal(err)
			}
		}
		opts := metav1.PatchOptions{FieldValidation: "Strict"}
		if pt == types.ApplyPatchType {
			opts.FieldManager = "test-apply"
			opts.Force = ptr.To(true)
		}
		out, err := client.Patch(ctx, name, pt, data, opts, sub...)
		if err != nil {
			t.Fatalf("%s: %s patch: %v", step, pt, err)
		}
		return out
	}

	existing := create("create", true)
	createdRV := existing.GetResourceVersion()
	got, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	check("get", nil, got)
	existing = update("update", got)
	if a, b := mustAtoi(t, createdRV), mustAtoi(t, existing.GetResourceVersion()); b <= a {
		t.Fatalf("update did not raise resourceVersion: %d -> %d", a, b)
	}
	if tc.updateStatus != nil {
		u := existing.DeepCopy()
		tc.updateStatus(u)
		out, err := client.UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status: %v", err)
		}
		check("update status", tc.wantStatus, out)
		check("update status keeps spec", tc.wantSpec, out)
		expect("update status", watch.Modified)
		st, err := client.Get(ctx, name, metav1.GetOptions{}, "status")
		if err != nil {
			t.Fatalf("get status: %v", err)
		}
		check("get status", tc.wantStatus, st)
		existing = out
	}

	for _, pt := range patchOrder {
		body, ok := tc.specPatches[pt]
		if !ok {
			continue
		}
		step := fmt.Sprintf("spec %s patch", pt)
		deleteAndWait(step)
		existing = create(step, false)
		existing = patch(step, existing, pt, body)
		check(step, tc.wantSpec, existing)
		expect(step, watch.Modified)
	}
	for _, pt := range patchOrder {
		body, ok := tc.statusPatches[pt]
		if !ok {
			continue
		}
		step := fmt.Sprintf("status %s patch", pt)
		deleteAndWait(step)
		existing = create(step, false)
		existing = update(step, existing)
		existing = patch(step, existing, pt, body, "status")
		check(step, tc.wantStatus, existing)
		check(step+" keeps spec", tc.wantSpec, existing)
		expect(step, watch.Modified)
	}

	items, err := client.List(ctx, selector)
	if err != nil || len(items.Items) != 1 || items.Items[0].GetName() != name {
		t.Fatalf("list by label: %v, %d items", err, len(items.Items))
	}
	if tc.namespaced {
		items, err := rc.List(ctx, selector)
		if err != nil || len(items.Items) != 1 || items.Items[0].GetName() != name {
			t.Fatalf("list by label in all namespaces: %v, %d items", err, len(items.Items))
		}
	}
	if err := client.DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	if _, err := client.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after deletecollection: want NotFound, got %v", err)
	}
	expect("deletecollection", watch.Deleted)
}

var patchOrder = []types.PatchType{types.StrategicMergePatchType, types.ApplyPatchType, types.MergePatchType, types.JSONPatchType}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", s, err)
	}
	return n
}

// labelIs checks metadata.labels[key] == value.
func labelIs(key, value string) func(*unstructured.Unstructured) error {
	return func(u *unstructured.Unstructured) error {
		if got := u.GetLabels()[key]; got != value {
			return fmt.Errorf("label %s = %q, want %q", key, got, value)
		}
		return nil
	}
}

// fieldIs checks a nested field of u.
func fieldIs(want interface{}, path ...string) func(*unstructured.Unstructured) error {
	return func(u *unstructured.Unstructured) error {
		got, found, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		if err != nil || !found {
			return fmt.Errorf("%v: not found (%v)", path, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%v = %v, want %v", path, got, want)
		}
		return nil
	}
}

// expectInvalid checks that err is a 422 Invalid Status whose causes
// include one for field with a message containing msg.
func expectInvalid(t *testing.T, err error, fieldPath, msg string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want 422 Invalid, got %v", err)
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Code != 422 {
		t.Fatalf("want a 422 Status, got %#v", err)
	}
	d := status.Status().Details
	if d != nil {
		for _, c := range d.Causes {
			if c.Field == fieldPath && strings.Contains(c.Message, msg) {
				return
			}
		}
	}
	t.Fatalf("no cause for %s with %q in %v", fieldPath, msg, err)
}
