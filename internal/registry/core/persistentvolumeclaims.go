package core

import (
	"context"
	"fmt"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// PersistentVolumeClaims returns the descriptor of core/v1
// persistentvolumeclaims ("pvc").
func PersistentVolumeClaims() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "persistentvolumeclaims",
		Singular:     "persistentvolumeclaim",
		Kind:         "PersistentVolumeClaim",
		ShortNames:   []string{"pvc"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		NewList:      func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
		Status:       true,
		Strategy: registry.Strategy{
			Default:              defaultPVC,
			PrepareForCreate:     preparePVCForCreate,
			Validate:             validatePVC,
			ValidateUpdate:       validatePVCUpdate,
			ValidateStatusUpdate: validatePVCStatus,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Status", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"]},
				{Name: "Volume", Type: "string", Description: corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"]},
				{Name: "Capacity", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"]},
				{Name: "Access Modes", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"]},
				{Name: "StorageClass", Type: "string", Description: "StorageClass of the pvc"},
				{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pvc"},
				registry.AgeColumn,
				{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"]},
			},
			Row: pvcRow,
		},
		Fields: func(obj runtime.Object) fields.Set {
			pvc, ok := obj.(*corev1.PersistentVolumeClaim)
			if !ok {
				return fields.Set{}
			}
			s := metaFields(&pvc.ObjectMeta, true)
			// Upstream keeps the legacy "name" selector for compatibility.
			s["name"] = pvc.Name
			return s
		},
	}
}

// pvcRow shows capacity and access modes from status once the claim names
// a volume, as upstream does.
func pvcRow(obj runtime.Object) []interface{} {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return make([]interface{}, 9)
	}
	phase := string(pvc.Status.Phase)
	if pvc.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if pvc.Spec.VolumeName != "" {
		modes = pvAccessModesString(pvc.Status.AccessModes)
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
	}
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	}
	if v, ok := pvc.Annotations[pvBetaStorageClassAnnotation]; ok {
		class = v
	}
	return []interface{}{
		pvc.Name,
		phase,
		pvc.Spec.VolumeName,
		capacity,
		modes,
		class,
		pvOptionalString(pvc.Spec.VolumeAttributesClassName),
		registry.Age(pvc),
		pvOptionalString((*string)(pvc.Spec.VolumeMode)),
	}
}

// preparePVCForCreate drops the status a client sent and leaves phase
// Pending: upstream clears it too, and its defaulting when the claim is
// read back from storage shows it Pending.
func preparePVCForCreate(ctx context.Context, obj runtime.Object) {
	registry.DefaultPrepareForCreate(ctx, obj)
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		pvc.Status.Phase = corev1.ClaimPending
	}
}

// defaultPVC sets volume mode Filesystem and phase Pending when unset.
func defaultPVC(obj runtime.Object) {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if pvc.Status.Phase == "" {
		pvc.Status.Phase = corev1.ClaimPending
	}
	if pvc.Spec.VolumeMode == nil {
		m := corev1.PersistentVolumeFilesystem
		pvc.Spec.VolumeMode = &m
	}
}

// validatePVC checks the main rules of upstream's claim validation: access
// modes, a positive storage request, selector, volume mode, class names and
// data source references.
func validatePVC(obj runtime.Object) field.ErrorList {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return metaWrongType(obj, "v1.PersistentVolumeClaim")
	}
	spec := &pvc.Spec
	specPath := field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(specPath.Child("accessModes"), "at least 1 access mode is required"))
	} else {
		errs = append(errs, pvValidateAccessModes(spec.AccessModes, specPath.Child("accessModes"))...)
	}
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	}
	// Upstream reports the missing request at spec.resources[storage].
	storagePath := specPath.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else {
		errs = append(errs, metaPositiveQuantity(q, storagePath)...)
	}
	for name, l := range map[string]corev1.ResourceList{"requests": spec.Resources.Requests, "limits": spec.Resources.Limits} {
		for _, k := range metaSortedKeys(l) {
			errs = append(errs, metaNonNegativeQuantity(l[k], specPath.Child("resources", name).Key(string(k)))...)
		}
	}
	errs = append(errs, pvValidateVolumeMode(spec.VolumeMode, specPath.Child("volumeMode"))...)
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		errs = append(errs, pvClassName(*spec.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if spec.VolumeAttributesClassName != nil {
		errs = append(errs, pvRequiredClassName(*spec.VolumeAttributesClassName, specPath.Child("volumeAttributesClassName"))...)
	}
	if ds := spec.DataSource; ds != nil {
		errs = append(errs, pvcDataSourceRef(ds.Kind, ds.Name, ds.APIGroup, specPath.Child("dataSource"))...)
	}
	if ds := spec.DataSourceRef; ds != nil {
		errs = append(errs, pvcDataSourceRef(ds.Kind, ds.Name, ds.APIGroup, specPath.Child("dataSourceRef"))...)
	}
	return errs
}

// pvcDataSourceRef requires kind and name; a core kind must be a claim.
func pvcDataSourceRef(kind, name string, group *string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	}
	if (group == nil || *group == "") && kind != "" && kind != "PersistentVolumeClaim" {
		errs = append(errs, field.Invalid(p, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
	}
	return errs
}

// validatePVCUpdate enforces that the spec is immutable except: volumeName
// may be set once (binding), and for bound claims resources.requests
// (expansion; it may not drop to or below status.capacity) and
// volumeAttributesClassName.
func validatePVCUpdate(obj, old runtime.Object) field.ErrorList {
	pvc, ok1 := obj.(*corev1.PersistentVolumeClaim)
	oldPVC, ok2 := old.(*corev1.PersistentVolumeClaim)
	if !ok1 || !ok2 {
		return metaWrongType(obj, "v1.PersistentVolumeClaim")
	}
	var errs field.ErrorList
	newSpec, oldSpec := pvc.Spec.DeepCopy(), oldPVC.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	// A claim created with the beta annotation may gain the matching
	// storageClassName.
	if oldSpec.StorageClassName == nil && newSpec.StorageClassName != nil {
		if v, ok := oldPVC.Annotations[pvBetaStorageClassAnnotation]; ok && v == *newSpec.StorageClassName {
			oldSpec.StorageClassName = newSpec.StorageClassName
		}
	}
	if oldPVC.Status.Phase == corev1.ClaimBound {
		newSpec.Resources.Requests = oldSpec.Resources.Requests
		newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	}
	if !apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"),
			fmt.Sprintf("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n%s", cmp.Diff(oldSpec, newSpec))))
	}
	oldSize := oldPVC.Spec.Resources.Requests[corev1.ResourceStorage]
	newSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	statusSize := oldPVC.Status.Capacity[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 && newSize.Cmp(statusSize) <= 0 {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
	}
	return append(errs, validatePVC(obj)...)
}

// validatePVCStatus checks status access modes and capacity quantities.
func validatePVCStatus(obj, _ runtime.Object) field.ErrorList {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return metaWrongType(obj, "v1.PersistentVolumeClaim")
	}
	var errs field.ErrorList
	if len(pvc.Status.AccessModes) > 0 {
		errs = append(errs, pvValidateAccessModes(pvc.Status.AccessModes, field.NewPath("status", "accessModes"))...)
	}
	for _, k := range metaSortedKeys(pvc.Status.Capacity) {
		errs = append(errs, metaNonNegativeQuantity(pvc.Status.Capacity[k], field.NewPath("status", "capacity").Key(string(k)))...)
	}
	return errs
}
