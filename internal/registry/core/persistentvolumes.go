package core

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// pvBetaStorageClassAnnotation is the pre-storageClassName way of naming a
// class; printers still prefer it when present.
const pvBetaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

var (
	pvAccessModes = []string{
		string(corev1.ReadOnlyMany), string(corev1.ReadWriteMany), string(corev1.ReadWriteOnce), string(corev1.ReadWriteOncePod),
	}
	pvReclaimPolicies = []string{
		string(corev1.PersistentVolumeReclaimDelete), string(corev1.PersistentVolumeReclaimRecycle), string(corev1.PersistentVolumeReclaimRetain),
	}
	pvVolumeModes = []string{string(corev1.PersistentVolumeBlock), string(corev1.PersistentVolumeFilesystem)}
)

// pvNow is the clock of lastPhaseTransitionTime; tests replace it.
var pvNow = func() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }

// PersistentVolumes returns the descriptor of core/v1 persistentvolumes
// ("pv", cluster-scoped).
func PersistentVolumes() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "persistentvolumes",
		Singular:     "persistentvolume",
		Kind:         "PersistentVolume",
		ShortNames:   []string{"pv"},
		Namespaced:   false,
		New:          func() runtime.Object { return &corev1.PersistentVolume{} },
		NewList:      func() runtime.Object { return &corev1.PersistentVolumeList{} },
		Status:       true,
		Strategy: registry.Strategy{
			PrepareForCreate:       preparePVForCreate,
			PrepareForUpdate:       preparePVForUpdate,
			PrepareForStatusUpdate: preparePVForStatusUpdate,
			Default:                defaultPV,
			Validate:               validatePV,
			ValidateUpdate:         validatePVUpdate,
			ValidateStatusUpdate:   validatePVStatus,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Capacity", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]},
				{Name: "Access Modes", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]},
				{Name: "Reclaim Policy", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]},
				{Name: "Status", Type: "string", Description: corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]},
				{Name: "Claim", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]},
				{Name: "StorageClass", Type: "string", Description: "StorageClass of the pv"},
				{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pv"},
				{Name: "Reason", Type: "string", Description: corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]},
				registry.AgeColumn,
				{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]},
			},
			Row: pvRow,
		},
		Fields: func(obj runtime.Object) fields.Set {
			pv, ok := obj.(*corev1.PersistentVolume)
			if !ok {
				return fields.Set{}
			}
			s := metaFields(&pv.ObjectMeta, false)
			// Upstream keeps the legacy "name" selector for compatibility.
			s["name"] = pv.Name
			return s
		},
	}
}

func pvRow(obj runtime.Object) []interface{} {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return make([]interface{}, 11)
	}
	claim := ""
	if pv.Spec.ClaimRef != nil {
		claim = pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
	}
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	class := pv.Spec.StorageClassName
	if v, ok := pv.Annotations[pvBetaStorageClassAnnotation]; ok {
		class = v
	}
	return []interface{}{
		pv.Name,
		capacity.String(),
		pvAccessModesString(pv.Spec.AccessModes),
		string(pv.Spec.PersistentVolumeReclaimPolicy),
		phase,
		claim,
		class,
		pvOptionalString(pv.Spec.VolumeAttributesClassName),
		pv.Status.Reason,
		registry.Age(pv),
		pvOptionalString((*string)(pv.Spec.VolumeMode)),
	}
}

// pvOptionalString renders an optional string, "<unset>" when nil.
func pvOptionalString(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

// pvAccessModesString renders access modes as kubectl abbreviates them, in
// upstream's fixed order: RWO, ROX, RWX, RWOP.
func pvAccessModesString(modes []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"}, {corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"}, {corev1.ReadWriteOncePod, "RWOP"},
	} {
		if slices.Contains(modes, m.mode) {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

// preparePVForCreate resets status to phase Pending with the transition
// time set, as upstream does.
func preparePVForCreate(_ context.Context, obj runtime.Object) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	now := pvNow()
	pv.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending, LastPhaseTransitionTime: &now}
}

// preparePVForUpdate keeps status from old.
func preparePVForUpdate(_ context.Context, obj, old runtime.Object) {
	pv, ok1 := obj.(*corev1.PersistentVolume)
	oldPV, ok2 := old.(*corev1.PersistentVolume)
	if !ok1 || !ok2 {
		return
	}
	pv.Status = oldPV.Status
}

// preparePVForStatusUpdate keeps the spec and stamps
// lastPhaseTransitionTime when the phase changes.
func preparePVForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	pv, ok1 := obj.(*corev1.PersistentVolume)
	oldPV, ok2 := old.(*corev1.PersistentVolume)
	if !ok1 || !ok2 {
		return
	}
	if pv.Status.Phase != oldPV.Status.Phase {
		now := pvNow()
		pv.Status.LastPhaseTransitionTime = &now
	}
}

// defaultPV sets reclaim policy Retain, volume mode Filesystem and phase
// Pending when unset.
func defaultPV(obj runtime.Object) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		m := corev1.PersistentVolumeFilesystem
		pv.Spec.VolumeMode = &m
	}
}

// validatePV checks the main rules of upstream's persistent volume
// validation: access modes, a storage capacity, exactly one volume source
// (with its required fields for the common ones), reclaim policy, volume
// mode and class names.
func validatePV(obj runtime.Object) field.ErrorList {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return metaWrongType(obj, "v1.PersistentVolume")
	}
	spec := &pv.Spec
	specPath := field.NewPath("spec")
	errs := pvValidateAccessModes(spec.AccessModes, specPath.Child("accessModes"))

	capPath := specPath.Child("capacity")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(capPath, ""))
	} else if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(capPath, metaSortedKeys(spec.Capacity), []string{string(corev1.ResourceStorage)}))
	}
	for _, k := range metaSortedKeys(spec.Capacity) {
		errs = append(errs, metaPositiveQuantity(spec.Capacity[k], capPath.Key(string(k)))...)
	}
	if p := spec.PersistentVolumeReclaimPolicy; p != "" && !slices.Contains(pvReclaimPolicies, string(p)) {
		errs = append(errs, field.NotSupported(specPath.Child("persistentVolumeReclaimPolicy"), p, pvReclaimPolicies))
	}
	errs = append(errs, pvValidateVolumeMode(spec.VolumeMode, specPath.Child("volumeMode"))...)
	if spec.StorageClassName != "" {
		errs = append(errs, pvClassName(spec.StorageClassName, specPath.Child("storageClassName"))...)
	}
	if spec.VolumeAttributesClassName != nil {
		errs = append(errs, pvRequiredClassName(*spec.VolumeAttributesClassName, specPath.Child("volumeAttributesClassName"))...)
	}
	errs = append(errs, pvValidateSource(spec, specPath)...)
	return errs
}

// pvValidateSource requires exactly one volume source and checks the
// required fields of the common ones.
func pvValidateSource(spec *corev1.PersistentVolumeSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	src := reflect.ValueOf(spec.PersistentVolumeSource)
	n := 0
	for i := 0; i < src.NumField(); i++ {
		f := src.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		n++
		if n > 1 {
			name, _, _ := strings.Cut(src.Type().Field(i).Tag.Get("json"), ",")
			errs = append(errs, field.Forbidden(specPath.Child(name), "may not specify more than 1 volume type"))
		}
	}
	if n == 0 {
		return append(errs, field.Required(specPath, "must specify a volume type"))
	}
	s := &spec.PersistentVolumeSource
	switch {
	case s.HostPath != nil:
		if s.HostPath.Path == "" {
			errs = append(errs, field.Required(specPath.Child("hostPath", "path"), ""))
		}
	case s.Local != nil:
		if s.Local.Path == "" {
			errs = append(errs, field.Required(specPath.Child("local", "path"), ""))
		}
		if spec.NodeAffinity == nil || spec.NodeAffinity.Required == nil {
			errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	case s.NFS != nil:
		if s.NFS.Server == "" {
			errs = append(errs, field.Required(specPath.Child("nfs", "server"), ""))
		}
		if s.NFS.Path == "" {
			errs = append(errs, field.Required(specPath.Child("nfs", "path"), ""))
		} else if !strings.HasPrefix(s.NFS.Path, "/") {
			errs = append(errs, field.Invalid(specPath.Child("nfs", "path"), s.NFS.Path, "must be an absolute path"))
		}
	case s.CSI != nil:
		if s.CSI.Driver == "" {
			errs = append(errs, field.Required(specPath.Child("csi", "driver"), ""))
		}
		if s.CSI.VolumeHandle == "" {
			errs = append(errs, field.Required(specPath.Child("csi", "volumeHandle"), ""))
		}
	}
	return errs
}

// validatePVUpdate adds immutability: the volume source, volume mode, and
// node affinity once set.
func validatePVUpdate(obj, old runtime.Object) field.ErrorList {
	pv, ok1 := obj.(*corev1.PersistentVolume)
	oldPV, ok2 := old.(*corev1.PersistentVolume)
	if !ok1 || !ok2 {
		return metaWrongType(obj, "v1.PersistentVolume")
	}
	var errs field.ErrorList
	specPath := field.NewPath("spec")
	if !apiequality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, oldPV.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(specPath.Child("persistentvolumesource"), "spec.persistentvolumesource is forbidden once for an existing volume"))
	}
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(pv.Spec.VolumeMode, oldPV.Spec.VolumeMode, specPath.Child("volumeMode"))...)
	if oldPV.Spec.NodeAffinity != nil {
		errs = append(errs, apimachineryvalidation.ValidateImmutableField(pv.Spec.NodeAffinity, oldPV.Spec.NodeAffinity, specPath.Child("nodeAffinity"))...)
	}
	return append(errs, validatePV(obj)...)
}

// validatePVStatus checks the phase.
func validatePVStatus(obj, _ runtime.Object) field.ErrorList {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return metaWrongType(obj, "v1.PersistentVolume")
	}
	phases := []string{
		string(corev1.VolumeAvailable), string(corev1.VolumeBound), string(corev1.VolumeFailed),
		string(corev1.VolumePending), string(corev1.VolumeReleased),
	}
	if p := pv.Status.Phase; p != "" && !slices.Contains(phases, string(p)) {
		return field.ErrorList{field.NotSupported(field.NewPath("status", "phase"), p, phases)}
	}
	return nil
}

// pvValidateAccessModes requires at least one known access mode;
// ReadWriteOncePod may not be combined with others.
func pvValidateAccessModes(modes []corev1.PersistentVolumeAccessMode, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(modes) == 0 {
		errs = append(errs, field.Required(p, ""))
	}
	for _, m := range modes {
		if !slices.Contains(pvAccessModes, string(m)) {
			errs = append(errs, field.NotSupported(p, m, pvAccessModes))
		}
	}
	if slices.Contains(modes, corev1.ReadWriteOncePod) && len(modes) > 1 {
		errs = append(errs, field.Forbidden(p, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func pvValidateVolumeMode(m *corev1.PersistentVolumeMode, p *field.Path) field.ErrorList {
	if m != nil && !slices.Contains(pvVolumeModes, string(*m)) {
		return field.ErrorList{field.NotSupported(p, *m, pvVolumeModes)}
	}
	return nil
}

// pvClassName checks a storage or volume-attributes class name (a DNS
// subdomain).
func pvClassName(name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// pvRequiredClassName is pvClassName for a field that, when present, may
// not be empty.
func pvRequiredClassName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "an empty string is disallowed")}
	}
	return pvClassName(name, p)
}
