package namespace

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// report is what one pass over a terminating namespace's content found.
type report struct {
	// discoveryErr is a partial discovery failure (the pass went on with
	// the groups that answered).
	discoveryErr error
	// parseErr is a group version that did not parse.
	parseErr error
	// deleteErrs are the failures to delete or list a resource's objects.
	deleteErrs []error
	// remaining counts the objects left per resource, and finalizers the
	// objects left per finalizer they carry.
	remaining  map[schema.GroupVersionResource]int
	finalizers map[string]int
	// countRemaining: the pass went past the pods, so remaining and
	// finalizers are totals. While pods remain upstream reports neither,
	// and neither does this controller.
	countRemaining bool
}

// conditionTypes are the namespace conditions this controller owns, in
// upstream's order; each is always present once the namespace has been
// processed, False with an "ok" reason when nothing is wrong.
var conditionTypes = []corev1.NamespaceConditionType{
	corev1.NamespaceDeletionDiscoveryFailure,
	corev1.NamespaceDeletionGVParsingFailure,
	corev1.NamespaceDeletionContentFailure,
	corev1.NamespaceContentRemaining,
	corev1.NamespaceFinalizersRemaining,
}

// okConditions are upstream's reasons and messages for the False
// variants.
var okConditions = map[corev1.NamespaceConditionType][2]string{
	corev1.NamespaceDeletionDiscoveryFailure: {"ResourcesDiscovered", "All resources successfully discovered"},
	corev1.NamespaceDeletionGVParsingFailure: {"ParsedGroupVersions", "All legacy kube types successfully parsed"},
	corev1.NamespaceDeletionContentFailure:   {"ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
	corev1.NamespaceContentRemaining:         {"ContentRemoved", "All content successfully removed"},
	corev1.NamespaceFinalizersRemaining:      {"ContentHasNoFinalizers", "All content-preserving finalizers finished"},
}

// failing returns the True conditions r calls for, with upstream's
// reasons and messages.
func (r *report) failing() map[corev1.NamespaceConditionType][2]string {
	out := map[corev1.NamespaceConditionType][2]string{}
	if r.discoveryErr != nil {
		out[corev1.NamespaceDeletionDiscoveryFailure] = [2]string{"DiscoveryFailed", r.discoveryErr.Error()}
	}
	if r.parseErr != nil {
		out[corev1.NamespaceDeletionGVParsingFailure] = [2]string{"GroupVersionParsingFailed", r.parseErr.Error()}
	}
	if len(r.deleteErrs) > 0 {
		msgs := make([]string, 0, len(r.deleteErrs))
		for _, e := range r.deleteErrs {
			msgs = append(msgs, e.Error())
		}
		sort.Strings(msgs)
		out[corev1.NamespaceDeletionContentFailure] = [2]string{"ContentDeletionFailed",
			fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(msgs), strings.Join(msgs, ", "))}
	}
	if !r.countRemaining {
		return out
	}
	var left []string
	for gvr, n := range r.remaining {
		if n > 0 {
			left = append(left, fmt.Sprintf("%s.%s has %d resource instances", gvr.Resource, gvr.Group, n))
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		out[corev1.NamespaceContentRemaining] = [2]string{"SomeResourcesRemain", "Some resources are remaining: " + strings.Join(left, ", ")}
	}
	var byFinalizer []string
	for f, n := range r.finalizers {
		if n > 0 {
			byFinalizer = append(byFinalizer, fmt.Sprintf("%s in %d resource instances", f, n))
		}
	}
	if len(byFinalizer) > 0 {
		sort.Strings(byFinalizer)
		out[corev1.NamespaceFinalizersRemaining] = [2]string{"SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + strings.Join(byFinalizer, ", ")}
	}
	return out
}

// conditions returns the namespace's conditions after a pass that found
// r: every owned type set, True where r fails it and False otherwise; a
// condition's transition time changes only with its status. Conditions of
// other types are kept. It reports whether anything changed.
func conditions(old []corev1.NamespaceCondition, r *report, now metav1.Time) ([]corev1.NamespaceCondition, bool) {
	out := slices.Clone(old)
	failing := r.failing()
	changed := false
	for _, t := range conditionTypes {
		want := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now}
		rm, ok := failing[t]
		if ok {
			want.Status = corev1.ConditionTrue
		} else {
			rm = okConditions[t]
		}
		want.Reason, want.Message = rm[0], rm[1]
		i := slices.IndexFunc(out, func(c corev1.NamespaceCondition) bool { return c.Type == t })
		switch {
		case i < 0:
			out = append(out, want)
			changed = true
		case out[i].Status != want.Status:
			out[i] = want
			changed = true
		case out[i].Reason != want.Reason || out[i].Message != want.Message:
			out[i].Reason, out[i].Message = want.Reason, want.Message
			changed = true
		}
	}
	return out, changed
}
