package integration

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/test/framework"
)

// TestWebhookPatchOfCustomResourcePruned: a field a mutating webhook adds
// to a custom resource that its schema does not know is dropped, as
// upstream decodes the patched object through the schema; a known one is
// kept.
func TestWebhookPatchOfCustomResourcePruned(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "notes.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "notes", Singular: "note", Kind: "Note", ListKind: "NoteList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"data": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"start": {Type: "string"},
							"known": {Type: "string"},
						}},
					},
				}},
			}},
		},
	}
	establish(t, ext, crd)

	rv := newReviewer(t, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/mutate": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			pt := admissionv1.PatchTypeJSONPatch
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt,
				Patch: []byte(`[{"op":"add","path":"/data/known","value":"yes"},{"op":"add","path":"/data/unknown","value":"yes"}]`)}
		},
	})
	none := admissionregistrationv1.SideEffectClassNone
	_, err := kubernetes.NewForConfigOrDie(c.Config).AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "mutate-notes"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "notes.skiff.test", ClientConfig: rv.clientConfig("/mutate"),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"notes"}},
			}},
			SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	notes := dynamic.NewForConfigOrDie(c.Config).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "notes"}).Namespace("default")
	var created *unstructured.Unstructured
	n := 0
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		n++
		name := fmt.Sprintf("note-%d", n)
		created, err = notes.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Note", "metadata": map[string]any{"name": name},
			"data": map[string]any{"start": "yes"},
		}}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return rv.called("/mutate") > 0, nil
	})
	if err != nil {
		t.Fatalf("create through the webhook: %v", err)
	}
	want := map[string]any{"start": "yes", "known": "yes"}
	if !reflect.DeepEqual(created.Object["data"], want) {
		t.Errorf("created data = %v, want %v", created.Object["data"], want)
	}
	stored, err := notes.Get(ctx, created.GetName(), metav1.GetOptions{})
	if err != nil || !reflect.DeepEqual(stored.Object["data"], want) {
		t.Errorf("stored data = %v (%v), want %v", stored.Object["data"], err, want)
	}
}
