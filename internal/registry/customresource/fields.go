package customresource

import (
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/jsonpath"
)

// selectableField is one of a version's spec.versions[].selectableFields.
type selectableField struct {
	name string // the JSONPath without its leading dot: "spec.color"
	expr string // the JSONPath as a template: "{.spec.color}"
}

// selectableFieldsOf returns the selectable fields whose JSONPath parses
// (CRD validation refuses the others; upstream fails every list then).
func selectableFieldsOf(sfs []apiextensionsv1.SelectableField) []selectableField {
	var out []selectableField
	for _, sf := range sfs {
		expr := "{" + sf.JSONPath + "}"
		if err := jsonpath.New("selectableField").Parse(expr); err != nil {
			continue
		}
		out = append(out, selectableField{name: strings.TrimPrefix(sf.JSONPath, "."), expr: expr})
	}
	return out
}

// fieldSet returns the field-selector set of a version: metadata.name,
// metadata.namespace when namespaced, and the selectable fields.
func (v *version) fieldSet(obj runtime.Object) fields.Set {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fields.Set{}
	}
	set := fields.Set{"metadata.name": u.GetName()}
	if v.namespaced {
		set["metadata.namespace"] = u.GetNamespace()
	}
	for _, sf := range v.selectable {
		set[sf.name] = fieldValue(u.Object, sf.expr)
	}
	return set
}

// fieldValue formats a selectable field's value as upstream: fmt.Sprint of
// the JSON value, "" when absent or null. A path with more than one result
// (upstream fails the list) gives "" too: validation allows only simple
// paths.
func fieldValue(obj map[string]interface{}, expr string) string {
	jp := jsonpath.New("selectableField")
	if err := jp.Parse(expr); err != nil {
		return ""
	}
	jp.AllowMissingKeys(true)
	results, err := jp.FindResults(obj)
	if err != nil || len(results) != 1 || len(results[0]) != 1 {
		return ""
	}
	if v := results[0][0].Interface(); v != nil {
		return fmt.Sprint(v)
	}
	return ""
}
