package customresource

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTableColumns(t *testing.T) {
	tests := []struct {
		name string
		edit func(*apiextensionsv1.CustomResourceDefinition)
		want []metav1.TableColumnDefinition
	}{{
		name: "printer columns",
		want: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			{Name: "Size", Type: "string", Description: "Custom resource definition column (in JSONPath format): .spec.size"},
			{Name: "Replicas", Type: "integer", Description: "Desired replicas"},
			{Name: "Updated", Type: "date", Description: "Custom resource definition column (in JSONPath format): .status.lastUpdated"},
			{Name: "Color", Type: "string", Description: "Custom resource definition column (in JSONPath format): .spec.color", Priority: 1},
		},
	}, {
		name: "no printer columns: upstream's Name and Age",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Versions[0].AdditionalPrinterColumns = nil
		},
		want: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			{Name: "Age", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
		},
	}, {
		name: "a column that does not parse ends the table, as upstream",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Versions[0].AdditionalPrinterColumns[1].JSONPath = ".spec[" // Replicas
		},
		want: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			{Name: "Size", Type: "string", Description: "Custom resource definition column (in JSONPath format): .spec.size"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resourcesByVersion(t, loadCRD(t, widgetsCRD, tt.edit))["v1"]
			if diff := cmp.Diff(tt.want, res.Table.Columns); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			// Every row has one cell per column.
			if cells := res.Table.Row(widget(t, "")); len(cells) != len(tt.want) {
				t.Errorf("row has %d cells, want %d", len(cells), len(tt.want))
			}
		})
	}
}

func TestTableRow(t *testing.T) {
	updated := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		obj  string
		want []interface{} // Name, Size, Replicas, Updated, Color
	}{{
		name: "all set",
		obj:  `{"metadata":{"name":"w"},"spec":{"size":"small","replicas":3,"color":"blue"},"status":{"lastUpdated":"` + updated + `"}}`,
		want: []interface{}{"w", "small", int64(3), "3h", "blue"},
	}, {
		name: "missing values are nil",
		obj:  `{"metadata":{"name":"w"},"spec":{}}`,
		want: []interface{}{"w", nil, nil, nil, nil},
	}, {
		name: "values of another type",
		obj:  `{"metadata":{"name":"w"},"spec":{"size":{"a":1},"replicas":2.7,"color":5},"status":{"lastUpdated":"yesterday"}}`,
		// string columns print any value as JSONPath does; an integer
		// column truncates a number; a date that does not parse is
		// <invalid>.
		want: []interface{}{"w", `{"a":1}`, int64(2), "<invalid>", "5"},
	}, {
		name: "nulls",
		obj:  `{"metadata":{"name":"w"},"spec":{"size":null,"replicas":null,"color":null},"status":{"lastUpdated":null}}`,
		// A string column prints null as upstream's JSONPath printer does.
		want: []interface{}{"w", "<no value>", nil, nil, "<no value>"},
	}, {
		name: "wrong types for typed columns",
		obj:  `{"metadata":{"name":"w"},"spec":{"replicas":"three"},"status":{"lastUpdated":7}}`,
		want: []interface{}{"w", nil, nil, nil, nil},
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := res.Table.Row(object(t, tt.obj))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTableDefaultAge(t *testing.T) {
	res := resourcesByVersion(t, loadCRD(t, widgetsCRD, func(crd *apiextensionsv1.CustomResourceDefinition) {
		crd.Spec.Versions[0].AdditionalPrinterColumns = nil
	}))["v1"]
	obj := widget(t, "")
	obj.SetCreationTimestamp(metav1.NewTime(time.Now().Add(-49 * time.Hour)))
	if diff := cmp.Diff([]interface{}{"w", "2d1h"}, res.Table.Row(obj)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestCellValue(t *testing.T) {
	tests := []struct {
		typ   string
		value interface{}
		want  interface{}
	}{
		{"integer", int64(3), int64(3)},
		{"integer", 3.9, int64(3)},
		{"integer", "3", nil},
		{"number", int64(3), 3.0},
		{"number", 2.5, 2.5},
		{"number", true, nil},
		{"boolean", true, true},
		{"boolean", "true", nil},
		{"date", "not a date", "<invalid>"},
		{"date", int64(1), nil},
		{"unknown", "x", nil},
		{"integer", nil, nil},
	}
	for _, tt := range tests {
		if got := cellValue(tt.typ, tt.value); got != tt.want {
			t.Errorf("cellValue(%q, %#v) = %#v, want %#v", tt.typ, tt.value, got, tt.want)
		}
	}
}
