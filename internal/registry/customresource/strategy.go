package customresource

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// strategy returns the version's registry.Strategy: upstream's custom
// resource strategy and status strategy.
func (v *version) strategy() registry.Strategy {
	return registry.Strategy{
		PrepareForCreate:       v.prepareForCreate,
		PrepareForUpdate:       v.prepareForUpdate,
		PrepareForStatusUpdate: v.prepareForStatusUpdate,
		Default: func(obj runtime.Object) {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				v.schema.applyDefaults(u)
			}
		},
		Validate:             v.validate,
		ValidateUpdate:       v.validateUpdate,
		ValidateStatusUpdate: v.validateStatusUpdate,
		// Upstream checks custom resource names as DNS-1123 subdomains.
		NameValidation:   registry.NameIsDNSSubdomain,
		WarningsOnCreate: func(obj runtime.Object) []string { return finalizerWarnings(obj, nil) },
		WarningsOnUpdate: finalizerWarnings,
	}
}

// prepareForCreate drops status when the status subresource is enabled
// (it is written only through /status) and sets generation 1.
func (v *version) prepareForCreate(_ context.Context, obj runtime.Object) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	if v.status {
		delete(u.Object, "status")
	}
	u.SetGeneration(1)
}

// prepareForUpdate keeps status as stored when the status subresource is
// enabled, and bumps generation when anything but metadata changed —
// status included when there is no status subresource, as upstream.
func (v *version) prepareForUpdate(_ context.Context, obj, old runtime.Object) {
	u, ok1 := obj.(*unstructured.Unstructured)
	o, ok2 := old.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return
	}
	if u.Object == nil {
		u.Object = map[string]interface{}{}
	}
	if v.status {
		if st, ok := o.Object["status"]; ok {
			u.Object["status"] = runtime.DeepCopyJSONValue(st)
		} else {
			delete(u.Object, "status")
		}
	}
	gen := o.GetGeneration()
	if !apiequality.Semantic.DeepEqual(withoutMetadata(u.Object), withoutMetadata(o.Object)) {
		gen++
	}
	u.SetGeneration(gen)
}

// withoutMetadata is a shallow copy of obj without its metadata.
func withoutMetadata(obj map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(obj))
	for k, val := range obj {
		if k != "metadata" {
			out[k] = val
		}
	}
	return out
}

// prepareForStatusUpdate keeps everything of old but status, and the
// managedFields the server has just computed for this write: upstream's
// status strategy resets metadata and spec alike.
func (v *version) prepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {
	u, ok1 := obj.(*unstructured.Unstructured)
	o, ok2 := old.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return
	}
	status, hasStatus := u.Object["status"]
	managedFields := u.GetManagedFields()
	u.Object = runtime.DeepCopyJSON(contentOf(o))
	u.SetManagedFields(managedFields)
	if hasStatus {
		u.Object["status"] = status
	} else {
		delete(u.Object, "status")
	}
}

// standardFinalizers are the finalizers Kubernetes itself defines, which
// need no domain.
var standardFinalizers = []string{
	metav1.FinalizerOrphanDependents,
	metav1.FinalizerDeleteDependents,
	string(corev1.FinalizerKubernetes),
}

// finalizerWarnings warns about the finalizers obj adds (to old's, when
// old is set) that are not qualified names or not domain-qualified, as
// upstream does for custom resources.
func finalizerWarnings(obj, old runtime.Object) []string {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	var had []string
	if o, ok := old.(*unstructured.Unstructured); ok {
		had = o.GetFinalizers()
	}
	added := map[string]bool{}
	for _, f := range u.GetFinalizers() {
		if !slices.Contains(had, f) {
			added[f] = true
		}
	}
	fldPath := field.NewPath("metadata", "finalizers").String()
	var warnings []string
	for _, f := range sortedKeys(added) {
		for _, msg := range validation.IsQualifiedName(f) {
			warnings = append(warnings, fmt.Sprintf("%s: %q: %s", fldPath, f, msg))
		}
		if strings.Contains(f, "/") || slices.Contains(standardFinalizers, f) {
			continue
		}
		if strings.Contains(f, ".") {
			warnings = append(warnings, fmt.Sprintf("%s: %q: prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers", fldPath, f))
		} else {
			warnings = append(warnings, fmt.Sprintf("%s: %q: prefer a domain-qualified finalizer name to avoid accidental conflicts with other finalizer writers", fldPath, f))
		}
	}
	return warnings
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
