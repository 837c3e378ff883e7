package customresource

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/skiff-io/skiff/internal/registry"
)

// widgetsCRD is the CRD most tests serve: two versions (v1 stored,
// v1beta1 served and knowing a field v1 does not), defaults, an enum, a
// required field, a preserve-unknown-fields subtree, an embedded resource,
// a list-map, CEL rules (one a transition rule), status and scale
// subresources, printer columns and a selectable field.
const widgetsCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wd]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: &schema
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "self.replicas <= self.maxReplicas"
              message: "replicas must not exceed maxReplicas"
            - rule: "self.color == oldSelf.color"
              message: "color is immutable"
            properties:
              size:
                type: string
                enum: [small, medium, large]
              color:
                type: string
                default: blue
              replicas:
                type: integer
                default: 1
              maxReplicas:
                type: integer
                default: 10
              config:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              template:
                type: object
                x-kubernetes-embedded-resource: true
                x-kubernetes-preserve-unknown-fields: true
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name:
                      type: string
                    port:
                      type: integer
          status:
            type: object
            properties:
              replicas:
                type: integer
              selector:
                type: string
              phase:
                type: string
              lastUpdated:
                type: string
                format: date-time
    subresources: &subresources
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns: &columns
    - name: Size
      type: string
      jsonPath: .spec.size
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
      description: Desired replicas
    - name: Updated
      type: date
      jsonPath: .status.lastUpdated
    - name: Color
      type: string
      jsonPath: .spec.color
      priority: 1
    selectableFields: &selectable
    - jsonPath: .spec.color
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: string
              color:
                type: string
                default: red
              replicas:
                type: integer
              legacy:
                type: string
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
    subresources: *subresources
    additionalPrinterColumns: *columns
    selectableFields: *selectable
`

// loadCRD decodes a CRD from YAML; edit, when set, changes it first.
func loadCRD(t testing.TB, doc string, edit func(*apiextensionsv1.CustomResourceDefinition)) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal([]byte(doc), crd); err != nil {
		t.Fatalf("decoding the CRD: %v", err)
	}
	if edit != nil {
		edit(crd)
	}
	return crd
}

// widgets returns the descriptors of widgetsCRD by version.
func widgets(t testing.TB) map[string]*registry.Resource {
	t.Helper()
	return resourcesByVersion(t, loadCRD(t, widgetsCRD, nil))
}

func resourcesByVersion(t testing.TB, crd *apiextensionsv1.CustomResourceDefinition) map[string]*registry.Resource {
	t.Helper()
	rs, err := Resources(crd, nil)
	if err != nil {
		t.Fatalf("Resources: %v", err)
	}
	out := map[string]*registry.Resource{}
	for _, r := range rs {
		out[r.GroupVersion.Version] = r
	}
	return out
}

// object decodes JSON as the server does, integers as int64.
func object(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]interface{}{}
	if err := utiljson.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return &unstructured.Unstructured{Object: m}
}

// widget is a valid v1 Widget in namespace default whose spec has the
// JSON members extra besides its own; a member given again wins.
func widget(t testing.TB, extra string) *unstructured.Unstructured {
	t.Helper()
	if extra != "" {
		extra = "," + extra
	}
	return object(t, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"},
		"spec":{"size":"small","color":"blue","replicas":1,"maxReplicas":10`+extra+`}}`)
}
