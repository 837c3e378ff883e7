package storage

import (
	"fmt"
	"maps"
	"slices"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

func validateCSIStorageCapacity(obj runtime.Object) field.ErrorList {
	c, ok := obj.(*storagev1.CSIStorageCapacity)
	if !ok {
		return nil
	}
	return csiStorageCapacity(c, metav1validation.LabelSelectorValidationOptions{})
}

// validateCSIStorageCapacityUpdate checks the new object as on create
// (tolerating label values in nodeTopology that the stored object already
// had wrong), then that nodeTopology and storageClassName, the inputs of
// the capacity query, are unchanged.
func validateCSIStorageCapacityUpdate(obj, old runtime.Object) field.ErrorList {
	c, ok1 := obj.(*storagev1.CSIStorageCapacity)
	o, ok2 := old.(*storagev1.CSIStorageCapacity)
	if !ok1 || !ok2 {
		return nil
	}
	opts := metav1validation.LabelSelectorValidationOptions{
		AllowInvalidLabelValueInSelector: len(metav1validation.ValidateLabelSelector(o.NodeTopology, metav1validation.LabelSelectorValidationOptions{}, nil)) > 0,
	}
	errs := csiStorageCapacity(c, opts)
	if !apiequality.Semantic.DeepEqual(c.NodeTopology, o.NodeTopology) {
		errs = append(errs, field.Invalid(field.NewPath("nodeTopology"), c.NodeTopology, apimachineryvalidation.FieldImmutableErrorMsg))
	}
	if c.StorageClassName != o.StorageClassName {
		errs = append(errs, field.Invalid(field.NewPath("storageClassName"), c.StorageClassName, apimachineryvalidation.FieldImmutableErrorMsg))
	}
	return errs
}

// csiStorageCapacity checks the node topology selector, the class name (a
// DNS subdomain, so required) and that the capacity is not negative.
// maximumVolumeSize is not checked, as upstream.
func csiStorageCapacity(c *storagev1.CSIStorageCapacity, opts metav1validation.LabelSelectorValidationOptions) field.ErrorList {
	errs := metav1validation.ValidateLabelSelector(c.NodeTopology, opts, field.NewPath("nodeTopology"))
	errs = append(errs, dnsSubdomain(c.StorageClassName, field.NewPath("storageClassName"))...)
	if q := c.Capacity; q != nil && q.Cmp(resource.Quantity{}) < 0 {
		errs = append(errs, field.Invalid(field.NewPath("capacity"), q.String(), apimachineryvalidation.IsNegativeErrorMsg).WithOrigin("minimum"))
	}
	return errs
}

// csiStorageCapacityWarnings warns about deprecated node labels in
// nodeTopology, as upstream does on create and update.
func csiStorageCapacityWarnings(obj runtime.Object) []string {
	c, ok := obj.(*storagev1.CSIStorageCapacity)
	if !ok || c.NodeTopology == nil {
		return nil
	}
	var out []string
	p := field.NewPath("nodeTopology")
	for i, req := range c.NodeTopology.MatchExpressions {
		if msg, ok := deprecatedNodeLabels[req.Key]; ok {
			out = append(out, fmt.Sprintf("%s: %s is %s", p.Child("matchExpressions").Index(i).Child("key"), req.Key, msg))
		}
	}
	// Upstream walks the map in random order; skiff sorts it.
	for _, label := range slices.Sorted(maps.Keys(c.NodeTopology.MatchLabels)) {
		if msg, ok := deprecatedNodeLabels[label]; ok {
			out = append(out, fmt.Sprintf("%s: %s", p.Child("matchLabels").Child(label), msg))
		}
	}
	return out
}

// csiStorageCapacityTable is what `kubectl get csistoragecapacities`
// shows from upstream: NAME and CREATED AT. Upstream serves this resource
// with its default table, not with the printer it also has for it
// (NAME STORAGECLASSNAME CAPACITY), which is never wired.
var csiStorageCapacityTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
	},
	Row: func(obj runtime.Object) []interface{} {
		c, ok := obj.(*storagev1.CSIStorageCapacity)
		if !ok {
			return nil
		}
		return []interface{}{c.Name, c.CreationTimestamp.UTC().Format(time.RFC3339)}
	},
}
