package integration

import (
	"context"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/skiff-io/skiff/test/framework"
)

// TestCustomResourceDefaultedOnRead: a default added to a CRD's storage
// version shows in objects stored before it, on get, list and watch, as
// upstream defaults on read; what is stored is not rewritten.
func TestCustomResourceDefaultedOnRead(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	gadgets := dynamic.NewForConfigOrDie(c.Config).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"})

	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Scope: apiextensionsv1.ClusterScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"a": {Type: "string"},
						"b": {Type: "string"},
					},
				}},
			}},
		},
	}
	establish(t, ext, crd)
	old := createServed(t, gadgets, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": map[string]any{"name": "old"},
	}})
	if _, found := old.Object["a"]; found {
		t.Fatalf("a set before any default: %v", old.Object)
	}
	w, err := gadgets.Watch(ctx, metav1.ListOptions{ResourceVersion: old.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.JSONPatchType,
		[]byte(`[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/a/default","value":"A"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := gadgets.Get(ctx, "old", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Object["a"] == "A", nil
	})
	if err != nil {
		t.Fatalf("get of an object stored before the default: a not defaulted: %v", err)
	}
	list, err := gadgets.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Object["a"] != "A" {
		t.Errorf("list after the default: %v %+v", err, list)
	}

	// A write of another field: the watch event carries the default too.
	if _, err := gadgets.Patch(ctx, "old", types.MergePatchType, []byte(`{"b":"x"}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || u.Object["a"] != "A" || u.Object["b"] != "x" {
			t.Errorf("watch event %s: %v", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Error("no watch event for the patch")
	}

	// Removing a's default and adding b's: an object created while a's
	// default was there keeps a (it was stored) and gets b on read.
	if _, err := gadgets.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": map[string]any{"name": "unwritten"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.JSONPatchType,
		[]byte(`[{"op":"remove","path":"/spec/versions/0/schema/openAPIV3Schema/properties/a/default"},{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/b/default","value":"B"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := gadgets.Get(ctx, "unwritten", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Object["b"] == "B", nil
	})
	if err != nil {
		t.Fatalf("b not defaulted on read: %v", err)
	}
	if got, err := gadgets.Get(ctx, "unwritten", metav1.GetOptions{}); err != nil || got.Object["a"] != "A" {
		t.Errorf("a stored at create should stay after its default is removed: %v %v", err, got)
	}
}
