package customresource

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestPrune(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        string
		wantUnknown []string
	}{{
		name: "known fields only",
		in:   `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":"small"}}`,
		want: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":"small"}}`,
	}, {
		name: "unknown fields at every level",
		in: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","foo":1},"top":true,
			"spec":{"size":"small","foo":"x","ports":[{"name":"http","port":80,"protocol":"TCP"}]},
			"status":{"bar":1}}`,
		want: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},
			"spec":{"size":"small","ports":[{"name":"http","port":80}]},"status":{}}`,
		// Upstream's form: root metadata first, then the pruned fields
		// in order.
		wantUnknown: []string{"metadata.foo", "spec.foo", "spec.ports[0].protocol", "status.bar", "top"},
	}, {
		name: "preserve-unknown-fields subtree is kept",
		in:   `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":"small","config":{"any":{"thing":[1,"two"]}}}}`,
		want: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":"small","config":{"any":{"thing":[1,"two"]}}}}`,
	}, {
		name: "embedded resource keeps its type and prunes its metadata",
		in: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},
			"spec":{"size":"small","template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","bogus":1},"spec":{"x":1}}}}`,
		want: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},
			"spec":{"size":"small","template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"x":1}}}}`,
		wantUnknown: []string{"spec.template.metadata.bogus"},
	}, {
		name: "non-nullable null without a default is dropped, with a default kept for defaulting",
		in:   `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":null,"color":null}}`,
		want: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"color":null}}`,
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.in)
			unknown := res.Prune(obj)
			if diff := cmp.Diff(tt.wantUnknown, unknown, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("unknown fields (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(object(t, tt.want).Object, obj.Object); diff != "" {
				t.Errorf("pruned object (-want +got):\n%s", diff)
			}
		})
	}
}

// A version without a schema keeps every field, as does a CRD that
// preserves unknown fields.
func TestPruneKeepsUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		edit func(*apiextensionsv1.CustomResourceDefinition)
	}{{
		name: "no schema",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.Versions[0].Schema = nil },
	}, {
		name: "spec.preserveUnknownFields",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.PreserveUnknownFields = true },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resourcesByVersion(t, loadCRD(t, widgetsCRD, tt.edit))["v1"]
			obj := widget(t, `"foo":{"bar":1}`)
			obj.Object["extra"] = "kept"
			if unknown := res.Prune(obj); len(unknown) != 0 {
				t.Errorf("Prune reported %q, want nothing", unknown)
			}
			if obj.Object["extra"] != "kept" || obj.Object["spec"].(map[string]interface{})["foo"] == nil {
				t.Errorf("Prune dropped unknown fields: %v", obj.Object)
			}
			if errs := res.Strategy.Validate(obj); len(errs) != 0 {
				t.Errorf("Validate: %v", errs)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{{
		name: "absent fields get defaults",
		in:   `{"spec":{"size":"small"}}`,
		want: `{"spec":{"size":"small","color":"blue","replicas":1,"maxReplicas":10}}`,
	}, {
		name: "set fields keep their values",
		in:   `{"spec":{"size":"small","color":"green","replicas":3,"maxReplicas":5}}`,
		want: `{"spec":{"size":"small","color":"green","replicas":3,"maxReplicas":5}}`,
	}, {
		name: "null non-nullable field is defaulted",
		in:   `{"spec":{"size":"small","color":null}}`,
		want: `{"spec":{"size":"small","color":"blue","replicas":1,"maxReplicas":10}}`,
	}, {
		name: "no spec, nothing to default into",
		in:   `{"status":{}}`,
		want: `{"status":{}}`,
	}, {
		name: "spec of the wrong type is left to validation",
		in:   `{"spec":"small"}`,
		want: `{"spec":"small"}`,
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.in)
			res.Strategy.Default(obj)
			if diff := cmp.Diff(object(t, tt.want).Object, obj.Object); diff != "" {
				t.Errorf("defaulted (-want +got):\n%s", diff)
			}
		})
	}
}
