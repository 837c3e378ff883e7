package customresource

import (
	"bytes"
	"encoding/json"
	"reflect"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metatable "k8s.io/apimachinery/pkg/api/meta/table"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/jsonpath"

	"github.com/skiff-io/skiff/internal/registry"
)

// ageColumn is the column upstream serves when a version has no printer
// columns: the age, from metadata.creationTimestamp, typed "date".
var ageColumn = apiextensionsv1.CustomResourceColumnDefinition{
	Name:        "Age",
	Type:        "date",
	Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"],
	JSONPath:    ".metadata.creationTimestamp",
}

// table builds the `kubectl get` columns of a version from its
// additionalPrinterColumns, as upstream's tableconvertor: Name first, then
// each column's JSONPath value formatted by the column's type; Age alone
// when there are none. Like upstream, a column whose JSONPath does not
// parse ends the table there (CRD validation refuses those).
func table(cols []apiextensionsv1.CustomResourceColumnDefinition) *registry.Table {
	if len(cols) == 0 {
		cols = []apiextensionsv1.CustomResourceColumnDefinition{ageColumn}
	}
	defs := []metav1.TableColumnDefinition{registry.NameColumn}
	var paths, types []string
	for _, col := range cols {
		expr := "{" + col.JSONPath + "}"
		if err := jsonpath.New(col.Name).Parse(expr); err != nil {
			break
		}
		desc := col.Description
		if desc == "" {
			desc = "Custom resource definition column (in JSONPath format): " + col.JSONPath
		}
		defs = append(defs, metav1.TableColumnDefinition{
			Name:        col.Name,
			Type:        col.Type,
			Format:      col.Format,
			Description: desc,
			Priority:    col.Priority,
		})
		paths = append(paths, expr)
		types = append(types, col.Type)
	}
	return &registry.Table{
		Columns: defs,
		Row: func(obj runtime.Object) []interface{} {
			cells := make([]interface{}, 1, 1+len(paths))
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				cells = append(cells, make([]interface{}, len(paths))...)
				return cells
			}
			cells[0] = u.GetName()
			for i, expr := range paths {
				cells = append(cells, cell(u.Object, expr, types[i]))
			}
			return cells
		},
	}
}

// cell evaluates one column on obj. A JSONPath is parsed for each use:
// a parsed jsonpath.JSONPath keeps state while it evaluates and may not be
// shared between requests.
func cell(obj map[string]interface{}, expr, typ string) interface{} {
	jp := jsonpath.New("column")
	if err := jp.Parse(expr); err != nil {
		return nil
	}
	jp.AllowMissingKeys(true)
	results, err := jp.FindResults(obj)
	if err != nil || len(results) == 0 || len(results[0]) == 0 {
		return nil
	}
	// Columns are simple paths: one result at most.
	value := results[0][0].Interface()
	if typ == "string" {
		var buf bytes.Buffer
		if err := jp.PrintResults(&buf, []reflect.Value{reflect.ValueOf(value)}); err != nil {
			return nil
		}
		return buf.String()
	}
	return cellValue(typ, value)
}

// cellValue formats a JSON value for a column of type typ as upstream's
// tableconvertor does: nil when the value does not have the type.
func cellValue(typ string, value interface{}) interface{} {
	if value == nil {
		return nil
	}
	switch typ {
	case "integer":
		switch v := value.(type) {
		case int64:
			return v
		case float64:
			return int64(v)
		case json.Number:
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
	case "number":
		switch v := value.(type) {
		case int64:
			return float64(v)
		case float64:
			return v
		case json.Number:
			if f, err := v.Float64(); err == nil {
				return f
			}
		}
	case "boolean":
		if b, ok := value.(bool); ok {
			return b
		}
	case "string":
		if s, ok := value.(string); ok {
			return s
		}
	case "date":
		if s, ok := value.(string); ok {
			var t metav1.Time
			if err := t.UnmarshalQueryParameter(s); err != nil {
				return "<invalid>"
			}
			return metatable.ConvertToHumanReadableDateType(t)
		}
	}
	return nil
}
