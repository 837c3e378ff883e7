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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/test/framework"
)

// TestCustomResourcesOfTwoStorageVersions: after a CRD's storage version
// changes, objects stored as the old one and the new one are both served
// in the version asked for, on get, list and watch, each converted from
// the version it was stored as (upstream's "non homogeneous list").
func TestCustomResourcesOfTwoStorageVersions(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	gvr := func(v string) dynamic.NamespaceableResourceInterface {
		return dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: v, Resource: "ports"})
	}
	props := func(names ...string) *apiextensionsv1.CustomResourceValidation {
		p := map[string]apiextensionsv1.JSONSchemaProps{}
		for _, n := range names {
			p[n] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}
		return &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: p}}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "ports.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "ports", Singular: "port", Kind: "Port", ListKind: "PortList"},
			Scope: apiextensionsv1.ClusterScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: props("hostPort", "both")},
				{Name: "v2", Served: true, Storage: false, Schema: props("host", "both")},
			},
		},
	}
	establish(t, ext, crd)
	port := func(name string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Port", "metadata": map[string]any{"name": name},
			"hostPort": "localhost:8080", "both": "x",
		}}
	}
	createServed(t, gvr("v1"), port("first"))

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Versions[0].Storage, cur.Spec.Versions[1].Storage = false, true
		_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Objects created from now on are stored as v2: wait until one is.
	n := 0
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		n++
		_, err := gvr("v1").Create(ctx, port("second"), metav1.CreateOptions{})
		if err != nil {
			return false, nil
		}
		// Stored as v2, it lost v1's hostPort (conversion None prunes).
		got, err := gvr("v1").Get(ctx, "second", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if _, v1Field := got.Object["hostPort"]; v1Field {
			// Still stored as v1: try again.
			return false, gvr("v1").Delete(ctx, "second", metav1.DeleteOptions{})
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("storage version v2 not in effect after %d tries: %v", n, err)
	}

	for _, v := range []string{"v1", "v2"} {
		list, err := gvr(v).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", v, err)
		}
		if len(list.Items) != 2 {
			t.Fatalf("list %s: %d items", v, len(list.Items))
		}
		for _, it := range list.Items {
			if it.GetAPIVersion() != "example.com/"+v || it.Object["both"] != "x" {
				t.Errorf("list %s: item %s is %v", v, it.GetName(), it.Object)
			}
			_, hostPort := it.Object["hostPort"]
			if v == "v2" && hostPort {
				t.Errorf("list v2: item %s kept v1's hostPort: %v", it.GetName(), it.Object)
			}
		}
	}
	first, err := gvr("v2").Get(ctx, "first", metav1.GetOptions{})
	if err != nil || first.GetAPIVersion() != "example.com/v2" || first.Object["hostPort"] != nil {
		t.Errorf("get v2 of the object stored as v1: %v %v", err, first)
	}
}
