package customresource

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// errorStrings renders errs as the server's 422 lists them.
func errorStrings(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// notChecked is upstream's error when a blocking error keeps the CEL rules
// from running.
const notChecked = `<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		obj  func(t *testing.T) *unstructured.Unstructured
		want []string
	}{{
		name: "valid",
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"ports":[{"name":"http","port":80}]`) },
	}, {
		name: "wrong type",
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"replicas":"three"`) },
		want: []string{
			`spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`,
			`.spec.replicas: Invalid value: 0: .spec.replicas accessor error: three is of the type string, expected int64`,
			notChecked,
		},
	}, {
		name: "missing required field",
		obj: func(t *testing.T) *unstructured.Unstructured {
			w := widget(t, "")
			unstructured.RemoveNestedField(w.Object, "spec", "size")
			return w
		},
		want: []string{`spec.size: Required value`, notChecked},
	}, {
		name: "enum",
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"size":"huge"`) },
		want: []string{`spec.size: Unsupported value: "huge": supported values: "small", "medium", "large"`, notChecked},
	}, {
		name: "CEL rule",
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"replicas":11`) },
		want: []string{`spec: Invalid value: replicas must not exceed maxReplicas`},
	}, {
		name: "duplicate list-map key",
		obj: func(t *testing.T) *unstructured.Unstructured {
			return widget(t, `"ports":[{"name":"http","port":80},{"name":"http","port":81}]`)
		},
		want: []string{`spec.ports[1]: Duplicate value: {"name":"http"}`},
	}, {
		name: "embedded resource without kind",
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"template":{"apiVersion":"v1"}`) },
		want: []string{`spec.template.kind: Required value`, notChecked},
	}, {
		name: "embedded resource with apiVersion of the wrong type",
		obj: func(t *testing.T) *unstructured.Unstructured {
			return widget(t, `"template":{"apiVersion":1,"kind":"Pod"}`)
		},
		want: []string{`spec.template.apiVersion: Invalid value: 1: must be a string`},
	}, {
		name: "negative scale replicas",
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"replicas":-1`) },
		want: []string{`.spec.replicas: Invalid value: -1: should be a non-negative integer`},
	}, {
		name: "wrong kind and apiVersion, reported alone",
		obj: func(t *testing.T) *unstructured.Unstructured {
			w := widget(t, `"size":"huge"`)
			w.SetAPIVersion("example.com/v2")
			w.SetKind("Gadget")
			return w
		},
		want: []string{
			`kind: Invalid value: "Gadget": must be Widget`,
			`apiVersion: Invalid value: "example.com/v2": must be example.com/v1`,
		},
	}, {
		name: "metadata that is not ObjectMeta",
		obj: func(t *testing.T) *unstructured.Unstructured {
			w := widget(t, "")
			w.Object["metadata"] = map[string]interface{}{"name": "w", "labels": "a=b"}
			return w
		},
		want: []string{`metadata: Invalid value: {"labels":"a=b","name":"w"}: cannot restore map from string`},
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorStrings(res.Strategy.Validate(tt.obj(t)))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	tests := []struct {
		name     string
		old, obj func(t *testing.T) *unstructured.Unstructured
		want     []string
	}{{
		name: "unchanged",
		old:  func(t *testing.T) *unstructured.Unstructured { return widget(t, "") },
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, "") },
	}, {
		name: "transition rule",
		old:  func(t *testing.T) *unstructured.Unstructured { return widget(t, "") },
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"color":"green"`) },
		want: []string{`spec: Invalid value: color is immutable`},
	}, {
		name: "rules without oldSelf still apply",
		old:  func(t *testing.T) *unstructured.Unstructured { return widget(t, "") },
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"replicas":11`) },
		want: []string{`spec: Invalid value: replicas must not exceed maxReplicas`},
	}, {
		// Ratcheting, as upstream: an invalid value stored before may
		// stay while the update does not touch it.
		name: "unchanged invalid value is ratcheted",
		old:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"size":"huge"`) },
		obj: func(t *testing.T) *unstructured.Unstructured {
			w := widget(t, `"size":"huge"`)
			w.SetLabels(map[string]string{"a": "b"})
			return w
		},
	}, {
		name: "changed invalid value is not",
		old:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"size":"huge"`) },
		obj:  func(t *testing.T) *unstructured.Unstructured { return widget(t, `"size":"giant"`) },
		want: []string{`spec.size: Unsupported value: "giant": supported values: "small", "medium", "large"`, notChecked},
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorStrings(res.Strategy.ValidateUpdate(tt.obj(t), tt.old(t)))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ValidateUpdate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateStatusUpdate(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   []string
	}{{
		name:   "valid",
		status: `{"replicas":2,"selector":"app=w","phase":"Ready"}`,
	}, {
		name:   "wrong type",
		status: `{"replicas":2,"phase":3}`,
		want:   []string{`status.phase: Invalid value: "integer": phase in body must be of type string: "integer"`, notChecked},
	}, {
		name:   "wrong scale replicas type",
		status: `{"replicas":"two"}`,
		want: []string{
			`status.replicas: Invalid value: "string": replicas in body must be of type integer: "string"`,
			`.status.replicas: Invalid value: 0: .status.replicas accessor error: two is of the type string, expected int64`,
			notChecked,
		},
	}, {
		name:   "bad date",
		status: `{"lastUpdated":"yesterday"}`,
		want:   []string{`status.lastUpdated: Invalid value: "yesterday": lastUpdated in body must be of type date-time: "yesterday"`, notChecked},
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := widget(t, "")
			obj := widget(t, "")
			obj.Object["status"] = object(t, tt.status).Object
			got := errorStrings(res.Strategy.ValidateStatusUpdate(obj, old))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ValidateStatusUpdate (-want +got):\n%s", diff)
			}
		})
	}
}

// CEL's work is bounded by upstream's per-call limit: a rule that would
// compare every pair of a long list stops with an error.
func TestValidateCELCostLimit(t *testing.T) {
	crd := loadCRD(t, widgetsCRD, func(crd *apiextensionsv1.CustomResourceDefinition) {
		spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
		spec.Properties["tags"] = apiextensionsv1.JSONSchemaProps{
			Type:  "array",
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}},
			XValidations: apiextensionsv1.ValidationRules{{
				Rule: "self.all(x, self.all(y, x == y || x != y))",
			}},
		}
		crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = spec
	})
	res := resourcesByVersion(t, crd)["v1"]
	tags := make([]string, 700)
	for i := range tags {
		tags[i] = fmt.Sprintf(`"t%d"`, i)
	}
	got := errorStrings(res.Strategy.Validate(widget(t, `"tags":[`+strings.Join(tags, ",")+`]`)))
	if len(got) != 1 || !strings.Contains(got[0], "call cost exceeds limit") {
		t.Errorf("Validate = %q, want one error saying the call cost exceeds the limit", got)
	}
	// A short list is within the limit.
	if got := res.Strategy.Validate(widget(t, `"tags":["a","b"]`)); len(got) != 0 {
		t.Errorf("Validate of a short list: %v", got)
	}
}
