package events

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

// eventTable is core/v1's event table: upstream prints both versions from
// one type, so an events.k8s.io event is converted to its stored core/v1
// form and printed by core's row.
var eventTable = func() *registry.Table {
	coreTable := core.Events().Table
	return &registry.Table{
		Columns: coreTable.Columns,
		Row: func(obj runtime.Object) []interface{} {
			stored, err := ToStored(obj)
			if err != nil {
				return make([]interface{}, len(coreTable.Columns))
			}
			return coreTable.Row(stored)
		},
	}
}()
