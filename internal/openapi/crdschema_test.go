package openapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// A custom resource's schema in v2 is what upstream publishes there: a
// bare object when the root keeps unknown fields, otherwise the schema
// without junctors and with nullable and unknown-keeping fields untyped;
// v3 keeps the schema as given. Both describe metadata as upstream.
func TestCustomResourceSchemaV2(t *testing.T) {
	var typed, open spec.Schema
	mustJSON(t, `{"type":"object","description":"Foo CRD","properties":{
		"spec":{"type":"object","required":["n","m"],"properties":{
			"n":{"type":"string","nullable":true},
			"m":{"type":"integer"},
			"any":{"type":"object","x-kubernetes-preserve-unknown-fields":true,"properties":{"x":{"type":"string"}}},
			"arr":{"type":"array","x-kubernetes-preserve-unknown-fields":true,"items":{"type":"string"}},
			"either":{"type":"string","anyOf":[{"maxLength":3},{"pattern":"^a"}]}}}}}`, &typed)
	mustJSON(t, `{"type":"object","x-kubernetes-preserve-unknown-fields":true}`, &open)
	gvk := func(kind string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: kind}
	}
	resources := []Resource{
		{GVK: gvk("Foo"), Plural: "foos", Namespaced: true, Schema: &typed, Verbs: []string{"get"}},
		{GVK: gvk("Open"), Plural: "opens", Namespaced: true, Schema: &open, Verbs: []string{"get"}},
	}
	raw, err := BuildV2(resources, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	o := doc.Definitions["com.example.v1.Open"]
	delete(o, "x-kubernetes-group-version-kind")
	if diff := cmp.Diff(map[string]any{"type": "object"}, o); diff != "" {
		t.Errorf("v2 definition of a root that keeps unknown fields (-want +got):\n%s", diff)
	}
	foo := doc.Definitions["com.example.v1.Foo"]
	props := foo["properties"].(map[string]any)
	spec := props["spec"].(map[string]any)
	sp := spec["properties"].(map[string]any)
	want := map[string]any{
		"n":      map[string]any{},
		"m":      map[string]any{"type": "integer"},
		"any":    map[string]any{"x-kubernetes-preserve-unknown-fields": true},
		"arr":    map[string]any{"x-kubernetes-preserve-unknown-fields": true},
		"either": map[string]any{"type": "string"},
	}
	if diff := cmp.Diff(want, sp); diff != "" {
		t.Errorf("v2 spec properties (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"m"}, spec["required"]); diff != "" {
		t.Errorf("v2 required: a nullable field is not required (-want +got):\n%s", diff)
	}
	md, _ := json.Marshal(props["metadata"])
	if !strings.Contains(string(md), "Standard object's metadata") {
		t.Errorf("metadata %s: want upstream's description", md)
	}

	// v3 keeps the schema, and the input is not changed by building v2.
	docs, err := BuildV3(resources, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	v3 := string(docs["apis/example.com/v1"])
	for _, want := range []string{`"anyOf"`, `"nullable":true`, `"Standard object's metadata`} {
		if !strings.Contains(v3, want) {
			t.Errorf("v3 document lacks %s", want)
		}
	}
	if typed.Properties["spec"].Properties["n"].Nullable != true || len(typed.Properties["spec"].Required) != 2 {
		t.Error("building v2 changed the resource's schema")
	}
}

func mustJSON(t *testing.T, s string, into any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), into); err != nil {
		t.Fatal(err)
	}
}
