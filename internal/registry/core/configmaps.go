package core

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// metaMaxDataSize is the ceiling on the summed size of a config map's or a
// secret's values (1 MiB), upstream's MaxSecretSize.
const metaMaxDataSize = 1 * 1024 * 1024

// ConfigMaps returns the descriptor of core/v1 configmaps ("cm").
func ConfigMaps() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "configmaps",
		Singular:     "configmap",
		Kind:         "ConfigMap",
		ShortNames:   []string{"cm"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:      func() runtime.Object { return &corev1.ConfigMapList{} },
		Strategy: registry.Strategy{
			Validate:       validateConfigMap,
			ValidateUpdate: validateConfigMapUpdate,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Data", Type: "string", Description: corev1.ConfigMap{}.SwaggerDoc()["data"]},
				registry.AgeColumn,
			},
			Row: func(obj runtime.Object) []interface{} {
				cm, ok := obj.(*corev1.ConfigMap)
				if !ok {
					return []interface{}{"", int64(0), ""}
				}
				return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), registry.Age(cm)}
			},
		},
	}
}

// validateConfigMap checks keys (IsConfigMapKey, and no key in both data
// and binaryData) and the 1 MiB ceiling on the values.
func validateConfigMap(obj runtime.Object) field.ErrorList {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return metaWrongType(obj, "v1.ConfigMap")
	}
	var errs field.ErrorList
	total := 0
	for _, k := range metaSortedKeys(cm.Data) {
		p := field.NewPath("data").Key(k)
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(p, k, msg))
		}
		if _, dup := cm.BinaryData[k]; dup {
			errs = append(errs, field.Invalid(p, k, "duplicate of key present in binaryData"))
		}
		total += len(cm.Data[k])
	}
	for _, k := range metaSortedKeys(cm.BinaryData) {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, msg))
		}
		total += len(cm.BinaryData[k])
	}
	if total > metaMaxDataSize {
		// Upstream reports this at the root path (rendered "[]"); skiff names
		// data, where the bulk normally is.
		errs = append(errs, field.TooLong(field.NewPath("data"), "", metaMaxDataSize))
	}
	return errs
}

// validateConfigMapUpdate adds immutability: once immutable is true it
// stays true and data and binaryData may not change.
func validateConfigMapUpdate(obj, old runtime.Object) field.ErrorList {
	cm, ok1 := obj.(*corev1.ConfigMap)
	oldCM, ok2 := old.(*corev1.ConfigMap)
	if !ok1 || !ok2 {
		return metaWrongType(obj, "v1.ConfigMap")
	}
	var errs field.ErrorList
	if oldCM.Immutable != nil && *oldCM.Immutable {
		if cm.Immutable == nil || !*cm.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(cm.Data, oldCM.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(cm.BinaryData, oldCM.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
		}
	}
	return append(errs, validateConfigMap(obj)...)
}
