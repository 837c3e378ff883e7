package storage

import (
	storagev1 "k8s.io/api/storage/v1"
	storagev1beta1 "k8s.io/api/storage/v1beta1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// isDefaultVACAnnotation marks a VolumeAttributesClass as the default for
// its driver; upstream's printer appends "(default)" for it.
const isDefaultVACAnnotation = "volumeattributesclass.alpha.kubernetes.io/is-default-class"

// validateVolumeAttributesClass requires a driver name that is a
// qualified name and at least one parameter, within the limits of a
// StorageClass's.
func validateVolumeAttributesClass(obj runtime.Object) field.ErrorList {
	c, ok := obj.(*storagev1.VolumeAttributesClass)
	if !ok {
		return nil
	}
	errs := provisioner(c.DriverName, field.NewPath("driverName"))
	return append(errs, parameters(c.Parameters, false, field.NewPath("parameters"))...)
}

// validateVolumeAttributesClassUpdate refuses a change of driverName or
// parameters, with upstream's handwritten messages (these fields have no
// declarative rules), then checks the new class as on create.
func validateVolumeAttributesClassUpdate(obj, old runtime.Object) field.ErrorList {
	c, ok1 := obj.(*storagev1.VolumeAttributesClass)
	o, ok2 := old.(*storagev1.VolumeAttributesClass)
	if !ok1 || !ok2 {
		return nil
	}
	var errs field.ErrorList
	if c.DriverName != o.DriverName {
		errs = append(errs, field.Forbidden(field.NewPath("driverName"), "updates to driverName are forbidden."))
	}
	if !apiequality.Semantic.DeepEqual(c.Parameters, o.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	return append(errs, validateVolumeAttributesClass(c)...)
}

// volumeAttributesClassTable is upstream's NAME DRIVERNAME AGE, NAME with
// " (default)" for a class annotated as its driver's default. The
// description is upstream's, taken from the v1beta1 type.
var volumeAttributesClassTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "DriverName", Type: "string", Description: storagev1beta1.VolumeAttributesClass{}.SwaggerDoc()["driverName"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		c, ok := obj.(*storagev1.VolumeAttributesClass)
		if !ok {
			return nil
		}
		name := c.Name
		if c.Annotations[isDefaultVACAnnotation] == "true" {
			name += " (default)"
		}
		return []interface{}{name, c.DriverName, registry.Age(c)}
	},
}
