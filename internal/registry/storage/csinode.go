package storage

import (
	"context"
	"fmt"

	storagev1 "k8s.io/api/storage/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// maxCSINodeID is the longest nodeID upstream accepts (its "long node
// ID" option, which its strategy always sets).
const maxCSINodeID = 256

// prepareCSINodeForCreate clears status, whose only field is behind a gate
// off by default; generation is left as sent, as upstream.
func prepareCSINodeForCreate(_ context.Context, obj runtime.Object) {
	if n, ok := obj.(*storagev1.CSINode); ok {
		n.Status = storagev1.CSINodeStatus{}
	}
}

// prepareCSINodeForUpdate keeps status as stored; generation is not
// bumped, as upstream.
func prepareCSINodeForUpdate(_ context.Context, obj, old runtime.Object) {
	n, ok1 := obj.(*storagev1.CSINode)
	o, ok2 := old.(*storagev1.CSINode)
	if !ok1 || !ok2 {
		return
	}
	n.Status = o.Status
}

func validateCSINode(obj runtime.Object) field.ErrorList {
	n, ok := obj.(*storagev1.CSINode)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	dp := field.NewPath("spec", "drivers")
	names := sets.New[string]()
	for i := range n.Spec.Drivers {
		errs = append(errs, csiNodeDriver(&n.Spec.Drivers[i], names, dp.Index(i))...)
	}
	return errs
}

// csiNodeDriver checks one driver: its name, nodeID and allocatable
// count, that the name is not repeated, and its topology keys. As
// upstream, the errors about topology keys are reported at the driver,
// not at topologyKeys.
func csiNodeDriver(d *storagev1.CSINodeDriver, names sets.Set[string], p *field.Path) field.ErrorList {
	errs := csiDriverName(d.Name, p.Child("name"))
	ip := p.Child("nodeID")
	if d.NodeID == "" {
		errs = append(errs, field.Required(ip, ""))
	}
	if len(d.NodeID) > maxCSINodeID {
		errs = append(errs, field.Invalid(ip, d.NodeID, fmt.Sprintf("must be %d characters or less", maxCSINodeID)))
	}
	if a := d.Allocatable; a != nil && a.Count != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(*a.Count), p.Child("allocatable", "count"))...)
	}
	if names.Has(d.Name) {
		errs = append(errs, field.Duplicate(p.Child("name"), d.Name))
	}
	names.Insert(d.Name)
	keys := sets.New[string]()
	for _, k := range d.TopologyKeys {
		if k == "" {
			errs = append(errs, field.Required(p, ""))
		}
		if keys.Has(k) {
			errs = append(errs, field.Duplicate(p, k))
		}
		keys.Insert(k)
		errs = append(errs, qualifiedName(k, p)...)
	}
	return errs
}

// validateCSINodeUpdate checks the new object as on create, then that a
// driver kept under the same name changed nothing but its allocatable
// count (upstream's MutableCSINodeAllocatableCount, on by default).
func validateCSINodeUpdate(obj, old runtime.Object) field.ErrorList {
	n, ok1 := obj.(*storagev1.CSINode)
	o, ok2 := old.(*storagev1.CSINode)
	if !ok1 || !ok2 {
		return nil
	}
	errs := validateCSINode(n)
	dp := field.NewPath("spec", "drivers")
	for _, od := range o.Spec.Drivers {
		for _, nd := range n.Spec.Drivers {
			if od.Name != nd.Name {
				continue
			}
			od, nd := od.DeepCopy(), nd.DeepCopy()
			od.Allocatable, nd.Allocatable = nil, nil
			errs = append(errs, apimachineryvalidation.ValidateImmutableField(*nd, *od, dp)...)
		}
	}
	return errs
}

// csiNodeTable is upstream's NAME DRIVERS AGE; DRIVERS counts the
// registered drivers.
var csiNodeTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Drivers", Type: "integer", Description: "Drivers indicates the number of CSI drivers registered on the node"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		n, ok := obj.(*storagev1.CSINode)
		if !ok {
			return nil
		}
		return []interface{}{n.Name, int64(len(n.Spec.Drivers)), registry.Age(n)}
	},
}
