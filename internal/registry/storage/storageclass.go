package storage

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// The annotations that mark a StorageClass the cluster's default; the
// beta one is still honoured.
const (
	isDefaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	isDefaultClassBetaAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

var (
	reclaimPolicies    = []string{string(corev1.PersistentVolumeReclaimDelete), string(corev1.PersistentVolumeReclaimRetain)}
	volumeBindingModes = []string{string(storagev1.VolumeBindingImmediate), string(storagev1.VolumeBindingWaitForFirstConsumer)}
)

// defaultStorageClass applies upstream's v1 defaults: reclaimPolicy
// Delete, volumeBindingMode Immediate.
func defaultStorageClass(obj runtime.Object) {
	sc, ok := obj.(*storagev1.StorageClass)
	if !ok {
		return
	}
	setDefault(&sc.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete)
	setDefault(&sc.VolumeBindingMode, storagev1.VolumeBindingImmediate)
}

func validateStorageClass(obj runtime.Object) field.ErrorList {
	sc, ok := obj.(*storagev1.StorageClass)
	if !ok {
		return nil
	}
	errs := provisioner(sc.Provisioner, field.NewPath("provisioner"))
	errs = append(errs, parameters(sc.Parameters, true, field.NewPath("parameters"))...)
	// Defaulting has set both; a nil one is not reported, as upstream's
	// declarative rules mark them optional.
	if p := sc.ReclaimPolicy; p != nil && *p != "" && !slices.Contains(reclaimPolicies, string(*p)) {
		errs = append(errs, field.NotSupported(field.NewPath("reclaimPolicy"), p, reclaimPolicies))
	}
	mp := field.NewPath("volumeBindingMode")
	switch m := sc.VolumeBindingMode; {
	case m == nil:
		errs = append(errs, field.Required(mp, ""))
	case !slices.Contains(volumeBindingModes, string(*m)):
		errs = append(errs, field.NotSupported(mp, m, volumeBindingModes))
	}
	return append(errs, allowedTopologies(sc.AllowedTopologies, field.NewPath("allowedTopologies"))...)
}

// validateStorageClassUpdate checks the new class as on create, then that
// provisioner, parameters, reclaimPolicy and volumeBindingMode are
// unchanged.
func validateStorageClassUpdate(obj, old runtime.Object) field.ErrorList {
	sc, ok1 := obj.(*storagev1.StorageClass)
	o, ok2 := old.(*storagev1.StorageClass)
	if !ok1 || !ok2 {
		return nil
	}
	errs := validateStorageClass(sc)
	if sc.Provisioner != o.Provisioner {
		errs = append(errs, immutable(field.NewPath("provisioner")))
	}
	if !apiequality.Semantic.DeepEqual(sc.Parameters, o.Parameters) {
		errs = append(errs, immutable(field.NewPath("parameters")))
	}
	if !apiequality.Semantic.DeepEqual(sc.ReclaimPolicy, o.ReclaimPolicy) {
		errs = append(errs, immutable(field.NewPath("reclaimPolicy")))
	}
	if !apiequality.Semantic.DeepEqual(sc.VolumeBindingMode, o.VolumeBindingMode) {
		errs = append(errs, immutable(field.NewPath("volumeBindingMode")))
	}
	return errs
}

// allowedTopologies checks each term's expressions (values required and
// unique, keys label names and unique in the term) and that no two terms
// are the same.
//
// Upstream compares each term with the ones before it in a list that
// starts with one nil entry per term, and nil equals empty there: so a
// term without expressions is reported as a Duplicate once per term in
// the list, and again for each empty term before it. skiff keeps that.
func allowedTopologies(terms []corev1.TopologySelectorTerm, p *field.Path) field.ErrorList {
	if len(terms) == 0 {
		return nil
	}
	var errs field.ErrorList
	seen := make([]map[string]sets.Set[string], len(terms))
	for i, term := range terms {
		tp := p.Index(i)
		exprs, termErrs := topologySelectorTerm(term, tp)
		errs = append(errs, termErrs...)
		for _, s := range seen {
			if apiequality.Semantic.DeepEqual(exprs, s) {
				errs = append(errs, field.Duplicate(tp.Child("matchLabelExpressions"), ""))
			}
		}
		seen = append(seen, exprs)
	}
	return errs
}

// topologySelectorTerm checks one term and returns its expressions as
// key -> values, for comparing terms.
func topologySelectorTerm(term corev1.TopologySelectorTerm, p *field.Path) (map[string]sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	exprs := map[string]sets.Set[string]{}
	ep := p.Child("matchLabelExpressions")
	for i, req := range term.MatchLabelExpressions {
		rp := ep.Index(i)
		vp := rp.Child("values")
		values := sets.New[string]()
		if len(req.Values) == 0 {
			errs = append(errs, field.Required(vp, ""))
		}
		for j, v := range req.Values {
			if values.Has(v) {
				errs = append(errs, field.Duplicate(vp.Index(j), v))
			}
			values.Insert(v)
		}
		errs = append(errs, metav1validation.ValidateLabelName(req.Key, rp.Child("key"))...)
		if _, dup := exprs[req.Key]; dup {
			errs = append(errs, field.Duplicate(rp.Child("key"), req.Key))
		}
		exprs[req.Key] = values
	}
	return exprs, errs
}

// storageClassWarnings warns about deprecated node labels in
// allowedTopologies, as upstream does on create and update.
func storageClassWarnings(obj runtime.Object) []string {
	sc, ok := obj.(*storagev1.StorageClass)
	if !ok {
		return nil
	}
	var out []string
	for i, term := range sc.AllowedTopologies {
		for j, req := range term.MatchLabelExpressions {
			if msg, ok := deprecatedNodeLabels[req.Key]; ok {
				p := field.NewPath("allowedTopologies").Index(i).Child("matchLabelExpressions").Index(j).Child("key")
				out = append(out, fmt.Sprintf("%s: %s", p, msg))
			}
		}
	}
	return out
}

// storageClassTable is upstream's NAME PROVISIONER RECLAIMPOLICY
// VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE. NAME has " (default)"
// appended when the class is annotated as the default.
var storageClassTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Provisioner", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["provisioner"]},
		{Name: "ReclaimPolicy", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]},
		{Name: "VolumeBindingMode", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]},
		{Name: "AllowVolumeExpansion", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		sc, ok := obj.(*storagev1.StorageClass)
		if !ok {
			return nil
		}
		name := sc.Name
		if sc.Annotations[isDefaultClassAnnotation] == "true" || sc.Annotations[isDefaultClassBetaAnnotation] == "true" {
			name += " (default)"
		}
		reclaim := string(corev1.PersistentVolumeReclaimDelete)
		if sc.ReclaimPolicy != nil {
			reclaim = string(*sc.ReclaimPolicy)
		}
		binding := string(storagev1.VolumeBindingImmediate)
		if sc.VolumeBindingMode != nil {
			binding = string(*sc.VolumeBindingMode)
		}
		expansion := false
		if sc.AllowVolumeExpansion != nil {
			expansion = *sc.AllowVolumeExpansion
		}
		return []interface{}{name, sc.Provisioner, reclaim, binding, expansion, registry.Age(sc)}
	},
}
