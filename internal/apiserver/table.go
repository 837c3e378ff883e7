package apiserver

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// defaultTable is upstream's table for resources without printers.
var defaultTable = registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
	},
	Row: func(obj runtime.Object) []interface{} {
		m, err := meta.Accessor(obj)
		if err != nil {
			return []interface{}{"", ""}
		}
		return []interface{}{m.GetName(), m.GetCreationTimestamp().UTC().Format("2006-01-02T15:04:05Z")}
	},
}

// toTable renders objects as a meta.k8s.io/v1 Table with the resource's
// columns. Each row carries the object as the includeObject parameter
// asks: its metadata (the default), the whole object, or nothing.
func (s *Server) toTable(r *http.Request, sv *served, items []runtime.Object, lm metav1.ListInterface) (*metav1.Table, error) {
	policy := metav1.IncludeMetadata
	switch p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p {
	case "":
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		policy = p
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("includeObject: unsupported value %q", p))
	}
	tab := sv.res.Table
	if tab == nil {
		tab = &defaultTable
	}
	t := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
		ColumnDefinitions: tab.Columns,
		Rows:              make([]metav1.TableRow, 0, len(items)),
	}
	if lm != nil {
		t.ResourceVersion, t.Continue, t.RemainingItemCount = lm.GetResourceVersion(), lm.GetContinue(), lm.GetRemainingItemCount()
	}
	for _, obj := range items {
		row := metav1.TableRow{Cells: tab.Row(obj)}
		switch policy {
		case metav1.IncludeMetadata:
			row.Object.Object = partialMetadata(obj)
		case metav1.IncludeObject:
			row.Object.Object = obj
		}
		t.Rows = append(t.Rows, row)
	}
	if r.URL.Query().Get("noHeaders") == "true" {
		t.ColumnDefinitions = nil
	}
	return t, nil
}
