package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

var widgetsV1 = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

// widgetCRD is a namespaced definition with two versions (v1 stored,
// v1beta1 served), defaults, a status and a scale subresource, printer
// columns and a short name.
func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	schemaProps := &apiextensionsv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"spec": {
				Type:     "object",
				Required: []string{"size"},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"size":     {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"small"`)}, {Raw: []byte(`"large"`)}}},
					"replicas": {Type: "integer", Default: &apiextensionsv1.JSON{Raw: []byte(`1`)}},
					"color":    {Type: "string", Default: &apiextensionsv1.JSON{Raw: []byte(`"blue"`)}},
				},
			},
			"status": {
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"replicas": {Type: "integer"},
					"phase":    {Type: "string"},
				},
			},
		},
	}
	version := func(name string, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
		return apiextensionsv1.CustomResourceDefinitionVersion{
			Name: name, Served: true, Storage: storage,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schemaProps.DeepCopy()},
			Subresources: &apiextensionsv1.CustomResourceSubresources{
				Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
				Scale: &apiextensionsv1.CustomResourceSubresourceScale{
					SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas",
				},
			},
			AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
				{Name: "Size", Type: "string", JSONPath: ".spec.size"},
				{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas"},
			},
		}
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
				ShortNames: []string{"wd"}, Categories: []string{"all"},
			},
			Scope:    apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{version("v1", true), deprecated(version("v1beta1", false))},
		},
	}
}

func deprecated(v apiextensionsv1.CustomResourceDefinitionVersion) apiextensionsv1.CustomResourceDefinitionVersion {
	v.Deprecated = true
	return v
}

// establish creates crd and waits for it to be Established.
func establish(t testing.TB, cs apiextensionsclient.Interface, crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create definition %s: %v", crd.Name, err)
	}
	return waitEstablished(t, cs, crd.Name)
}

// createServed creates obj through res, retrying for a while: just after
// its definition is Established, a custom resource may not be served yet.
func createServed(t testing.TB, res dynamic.ResourceInterface, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	var created *unstructured.Unstructured
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		created, lastErr = res.Create(ctx, obj, metav1.CreateOptions{})
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), lastErr)
	}
	return created
}

// waitEstablished waits for the definition's Established condition.
func waitEstablished(t testing.TB, cs apiextensionsclient.Interface, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var crd *apiextensionsv1.CustomResourceDefinition
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		crd, err = cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s not established: %v (status %+v)", name, err, crd.Status)
	}
	return crd
}

func widget(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}}
}

// warningRecorder keeps the Warning headers a client receives.
type warningRecorder struct{ msgs []string }

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, msg string) {
	w.msgs = append(w.msgs, msg)
}

func TestCustomResources(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	dyn := dynamic.NewForConfigOrDie(c.Config)

	created, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetCRD(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create definition: %v", err)
	}
	if got := created.Status.StoredVersions; !slices.Equal(got, []string{"v1"}) {
		t.Errorf("storedVersions = %v, want [v1]", got)
	}
	crd := waitEstablished(t, ext, "widgets.example.com")
	if n := crd.Status.AcceptedNames; n.Plural != "widgets" || n.Kind != "Widget" || !slices.Equal(n.ShortNames, []string{"wd"}) {
		t.Errorf("acceptedNames = %+v", n)
	}

	t.Run("discovery", func(t *testing.T) {
		list, err := c.Client.Discovery().ServerResourcesForGroupVersion("example.com/v1")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range list.APIResources {
			names = append(names, r.Name)
			if r.Name == "widgets" && (!r.Namespaced || r.Kind != "Widget" || !slices.Equal(r.ShortNames, []string{"wd"}) || !slices.Equal(r.Categories, []string{"all"})) {
				t.Errorf("widgets in discovery: %+v", r)
			}
		}
		slices.Sort(names)
		if want := []string{"widgets", "widgets/scale", "widgets/status"}; !slices.Equal(names, want) {
			t.Errorf("example.com/v1 resources = %v, want %v", names, want)
		}
		groups, err := c.Client.Discovery().ServerGroups()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups.Groups {
			if g.Name == "example.com" {
				if g.PreferredVersion.Version != "v1" || len(g.Versions) != 2 {
					t.Errorf("example.com group: %+v", g)
				}
				return
			}
		}
		t.Error("example.com not in /apis")
	})

	ns := "default"
	widgets := dyn.Resource(widgetsV1).Namespace(ns)

	t.Run("defaults, pruning and validation", func(t *testing.T) {
		w, err := widgets.Create(ctx, widget("small", map[string]any{"size": "small", "bogus": 1}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		spec, _, _ := unstructured.NestedMap(w.Object, "spec")
		if spec["color"] != "blue" || spec["replicas"] != int64(1) {
			t.Errorf("spec not defaulted: %v", spec)
		}
		if _, ok := spec["bogus"]; ok {
			t.Errorf("unknown field kept: %v", spec)
		}
		// Strict field validation refuses the unknown field, with
		// upstream's words.
		_, err = widgets.Create(ctx, widget("strict", map[string]any{"size": "small", "bogus": 1}), metav1.CreateOptions{FieldValidation: "Strict"})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
			t.Errorf("strict create with an unknown field: %v", err)
		}
		// Warn (the default) sends it as a warning.
		rec := &warningRecorder{}
		cfg := rest.CopyConfig(c.Config)
		cfg.WarningHandler = rec
		_, err = dynamic.NewForConfigOrDie(cfg).Resource(widgetsV1).Namespace(ns).Create(ctx, widget("warned", map[string]any{"size": "large", "bogus": 1}), metav1.CreateOptions{FieldValidation: "Warn"})
		if err != nil || !slices.Contains(rec.msgs, `unknown field "spec.bogus"`) {
			t.Errorf("warn create: err %v, warnings %q", err, rec.msgs)
		}
		_, err = widgets.Create(ctx, widget("wrong", map[string]any{"size": "medium"}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `spec.size: Unsupported value: "medium"`) {
			t.Errorf("create with a value outside the enum: %v", err)
		}
		_, err = widgets.Create(ctx, widget("missing", map[string]any{"color": "red"}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.size: Required value") {
			t.Errorf("create without a required field: %v", err)
		}
	})

	t.Run("versions", func(t *testing.T) {
		old, err := dyn.Resource(widgetsV1.GroupVersion().WithResource("widgets")).Namespace(ns).Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rec := &warningRecorder{}
		cfg := rest.CopyConfig(c.Config)
		cfg.WarningHandler = rec
		beta, err := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1beta1", Resource: "widgets"}).Namespace(ns).Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A deprecated version says so on every request, in upstream's
		// words.
		if want := "example.com/v1beta1 Widget is deprecated; use example.com/v1 Widget"; !slices.Equal(rec.msgs, []string{want}) {
			t.Errorf("warnings of a v1beta1 read = %q, want %q", rec.msgs, want)
		}
		if beta.GetAPIVersion() != "example.com/v1beta1" || beta.GetUID() != old.GetUID() {
			t.Errorf("v1beta1 read: apiVersion %s uid %s (v1 uid %s)", beta.GetAPIVersion(), beta.GetUID(), old.GetUID())
		}
	})

	t.Run("status and scale", func(t *testing.T) {
		w, err := widgets.Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The main resource does not write status.
		_ = unstructured.SetNestedField(w.Object, "Running", "status", "phase")
		w, err = widgets.Update(ctx, w, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, found, _ := unstructured.NestedString(w.Object, "status", "phase"); found {
			t.Errorf("status written through the main resource: %v", w.Object["status"])
		}
		_ = unstructured.SetNestedField(w.Object, "Running", "status", "phase")
		_ = unstructured.SetNestedField(w.Object, int64(1), "status", "replicas")
		_ = unstructured.SetNestedField(w.Object, "large", "spec", "size")
		w, err = widgets.UpdateStatus(ctx, w, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if phase, _, _ := unstructured.NestedString(w.Object, "status", "phase"); phase != "Running" {
			t.Errorf("status.phase = %q after a status write", phase)
		}
		if size, _, _ := unstructured.NestedString(w.Object, "spec", "size"); size != "small" {
			t.Errorf("spec.size = %q: a status write changed spec", size)
		}
		gen := w.GetGeneration()

		scale, err := widgets.Get(ctx, "small", metav1.GetOptions{}, "scale")
		if err != nil {
			t.Fatal(err)
		}
		if scale.GetKind() != "Scale" {
			t.Fatalf("scale kind = %q", scale.GetKind())
		}
		if r, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas"); r != 1 {
			t.Errorf("scale spec.replicas = %d, want 1", r)
		}
		if r, _, _ := unstructured.NestedInt64(scale.Object, "status", "replicas"); r != 1 {
			t.Errorf("scale status.replicas = %d, want 1", r)
		}
		_, err = widgets.Patch(ctx, "small", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}, "scale")
		if err != nil {
			t.Fatalf("patch scale: %v", err)
		}
		w, err = widgets.Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r, _, _ := unstructured.NestedInt64(w.Object, "spec", "replicas"); r != 3 || w.GetGeneration() != gen+1 {
			t.Errorf("after scaling to 3: spec.replicas %d, generation %d (was %d)", r, w.GetGeneration(), gen)
		}
	})

	t.Run("patch kinds", func(t *testing.T) {
		_, err := widgets.Patch(ctx, "small", types.StrategicMergePatchType, []byte(`{"spec":{"color":"red"}}`), metav1.PatchOptions{})
		if se, ok := err.(*apierrors.StatusError); !ok || se.ErrStatus.Code != http.StatusUnsupportedMediaType {
			t.Errorf("strategic merge patch of a custom resource: %v", err)
		}
		w, err := widgets.Patch(ctx, "small", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/color","value":"green"}]`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if color, _, _ := unstructured.NestedString(w.Object, "spec", "color"); color != "green" {
			t.Errorf("spec.color = %q after a JSON patch", color)
		}
		applied := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"applied"},"spec":{"size":"large"}}`)
		w, err = widgets.Patch(ctx, "applied", types.ApplyPatchType, applied, metav1.PatchOptions{FieldManager: "tester"})
		if err != nil {
			t.Fatalf("server-side apply: %v", err)
		}
		if color, _, _ := unstructured.NestedString(w.Object, "spec", "color"); color != "blue" || len(w.GetManagedFields()) == 0 {
			t.Errorf("applied object: color %q, managedFields %v", color, w.GetManagedFields())
		}
	})

	t.Run("table, watch and protobuf", func(t *testing.T) {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/apis/example.com/v1/namespaces/default/widgets").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var table metav1.Table
		if err := json.Unmarshal(body, &table); err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, col := range table.ColumnDefinitions {
			cols = append(cols, col.Name)
		}
		// Upstream adds Age only to a version that declares no columns.
		if !slices.Equal(cols, []string{"Name", "Size", "Replicas"}) {
			t.Errorf("table columns = %v", cols)
		}
		for _, row := range table.Rows {
			if row.Cells[0] == "small" && (row.Cells[1] != "small" || row.Cells[2] != float64(3)) {
				t.Errorf("row of small: %v", row.Cells)
			}
		}
		res := c.Client.Discovery().RESTClient().Get().AbsPath("/apis/example.com/v1/namespaces/default/widgets").
			SetHeader("Accept", "application/vnd.kubernetes.protobuf").Do(ctx)
		var code int
		res.StatusCode(&code)
		if code != http.StatusNotAcceptable {
			t.Errorf("protobuf-only list answered %d, want 406", code)
		}
		w, err := widgets.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=watched"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := widgets.Create(ctx, widget("watched", map[string]any{"size": "small"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-w.ResultChan():
			if u, ok := ev.Object.(*unstructured.Unstructured); ev.Type != "ADDED" || !ok || u.GetName() != "watched" {
				t.Errorf("watch event %s %T", ev.Type, ev.Object)
			}
		case <-time.After(10 * time.Second):
			t.Error("no watch event")
		}
	})

	t.Run("names taken", func(t *testing.T) {
		other := widgetCRD()
		other.Name = "gadgets.example.com"
		other.Spec.Names = apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Widget", ListKind: "GadgetList"}
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, other, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, other.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse {
					return c.Reason == "KindConflict" && c.Message == `"Widget" is already in use`, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Errorf("a definition taking Widget's kind: %v", err)
		}
		if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, other.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, other.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("a definition with no objects not deleted: %v", err)
		}
	})

	t.Run("served after a restart", func(t *testing.T) {
		c.Restart(t)
		dyn := dynamic.NewForConfigOrDie(c.Config)
		// No wait: a ready server serves what it served before.
		w, err := dyn.Resource(widgetsV1).Namespace(ns).Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get after restart: %v", err)
		}
		if size, _, _ := unstructured.NestedString(w.Object, "spec", "size"); size != "small" {
			t.Errorf("spec.size = %q after restart", size)
		}
	})

	t.Run("deleting the definition deletes its objects", func(t *testing.T) {
		ext := apiextensionsclient.NewForConfigOrDie(c.Config)
		dyn := dynamic.NewForConfigOrDie(c.Config)
		// A finalizer holds one object: the definition waits for it,
		// and meanwhile refuses new objects as upstream does.
		held := widget("held", map[string]any{"size": "small"})
		held.SetFinalizers([]string{"example.com/hold"})
		if _, err := dyn.Resource(widgetsV1).Namespace(ns).Create(ctx, held, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, "widgets.example.com", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(widgetsV1).Namespace(ns).Create(ctx, widget("late", map[string]any{"size": "small"}), metav1.CreateOptions{})
			return apierrors.IsMethodNotSupported(err) && strings.Contains(err.Error(), "create not allowed while custom resource definition is terminating"), nil
		})
		if err != nil {
			t.Errorf("creates while the definition terminates were not refused: %v", err)
		}
		if _, err := dyn.Resource(widgetsV1).Namespace(ns).Get(ctx, "held", metav1.GetOptions{}); err != nil {
			t.Errorf("the held object is not served while the definition terminates: %v", err)
		}
		_, err = dyn.Resource(widgetsV1).Namespace(ns).Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "widgets.example.com", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("definition not gone: %v", err)
		}
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(widgetsV1).Namespace(ns).List(ctx, metav1.ListOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("widgets still served after their definition went: %v", err)
		}
		// Created again, it starts empty: the objects went with it.
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetCRD(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitEstablished(t, ext, "widgets.example.com")
		list, err := dyn.Resource(widgetsV1).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("after re-creating the definition: %v, %d objects", err, len(list.Items))
		}
	})
}

// BenchmarkCreateCustomResources16 measures custom-object creates per
// second with 16 concurrent writers (JSON: custom resources have no
// protobuf form), beside BenchmarkCreatePods16.
func BenchmarkCreateCustomResources16(b *testing.B) {
	c := framework.StartInProcess(b, framework.WithControllers())
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetCRD(), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	waitEstablished(b, ext, "widgets.example.com")
	mustNS(b, c, "bench")
	widgets := dynamic.NewForConfigOrDie(unthrottled(c.Config)).Resource(widgetsV1).Namespace("bench")
	createConcurrently(b, 16, func(i int64) error {
		_, err := widgets.Create(ctx, widget(fmt.Sprintf("w-%d", i), map[string]any{"size": "small"}), metav1.CreateOptions{})
		return err
	})
}

// BenchmarkCRDEstablished measures the time from a definition's create
// to its Established condition, and until its resource answers a list.
func BenchmarkCRDEstablished(b *testing.B) {
	c := framework.StartInProcess(b, framework.WithControllers())
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	var established, served time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		crd := widgetCRD()
		plural := fmt.Sprintf("widgets%d", i)
		crd.Name = plural + ".example.com"
		crd.Spec.Names = apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Kind: fmt.Sprintf("Widget%d", i)}
		start := time.Now()
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitEstablished(b, ext, crd.Name)
		established += time.Since(start)
		gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: plural}
		for {
			if _, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{}); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		served += time.Since(start)
	}
	b.ReportMetric(float64(established.Milliseconds())/float64(b.N), "ms-to-established")
	b.ReportMetric(float64(served.Milliseconds())/float64(b.N), "ms-to-served")
}
