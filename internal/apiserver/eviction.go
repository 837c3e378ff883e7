package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/storage"
)

var pdbGVR = schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}

// serveEviction serves POST pods/<name>/eviction: it deletes the pod unless
// that would violate the PodDisruptionBudget covering it, in which case it
// answers 429 as upstream does. An allowed eviction takes one disruption
// from the budget (status.disruptionsAllowed, status.disruptedPods) with a
// compare-and-swap before the pod is deleted, so concurrent evictions never
// overspend it.
func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	wr, err := readWrite(r)
	if err != nil {
		return err
	}
	obj, _, err := wr.decode(policyv1.SchemeGroupVersion.WithKind("Eviction"), &policyv1.Eviction{})
	if err != nil {
		return err
	}
	ev := obj.(*policyv1.Eviction)
	if ev.Name != "" && ev.Name != info.name {
		return nameMismatch(ev.Name, info.name)
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if wr.dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ctx := r.Context()
	// Admission sees the eviction as upstream's does: a create of the
	// pods/eviction subresource (NodeRestriction lets a node evict only
	// its own pods).
	req := &AdmissionRequest{Operation: Create, Resource: sv.res, Sub: "eviction", Namespace: info.namespace,
		Name: info.name, Obj: ev, DryRun: wr.dry}
	if err := s.admit(ctx, req); err != nil {
		return err
	}
	if err := s.validate(ctx, req); err != nil {
		return err
	}
	pod := &corev1.Pod{}
	if err := sv.store.Get(ctx, sv.key(info.namespace, info.name), "", pod); err != nil {
		return storageError(err, sv.groupResource(), info.name)
	}
	if !evictionIgnoresBudget(pod) {
		if err := s.spendDisruption(ctx, pod, len(opts.DryRun) > 0); err != nil {
			return err
		}
	}
	if len(opts.DryRun) == 0 {
		if opts, err = s.markDisruptionTarget(ctx, sv, info, opts); err != nil {
			return err
		}
	}
	if _, _, err := s.deleteObject(ctx, sv, info.namespace, info.name, opts); err != nil {
		return err
	}
	writeObject(w, http.StatusCreated, wr.format, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return nil
}

// evictionIgnoresBudget: a pod that has finished, has not started, or is
// already being deleted disrupts nothing (upstream's canIgnorePDB).
func evictionIgnoresBudget(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded ||
		p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodPending || p.Status.Phase == ""
}

// spendDisruption finds the one budget selecting pod and takes a disruption
// from it, or returns the 429 (or 500 for several budgets) upstream does.
func (s *Server) spendDisruption(ctx context.Context, pod *corev1.Pod, dry bool) error {
	pdbs, ok := s.lookup(pdbGVR)
	if !ok {
		return nil
	}
	list := &policyv1.PodDisruptionBudgetList{}
	if err := pdbs.store.List(ctx, pdbs.listPrefix(pod.Namespace), storage.ListOptions{}, list); err != nil {
		return storageError(err, pdbs.groupResource(), "")
	}
	var match []policyv1.PodDisruptionBudget
	for _, b := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		match = append(match, b)
	}
	switch len(match) {
	case 0:
		return nil
	case 1:
	default:
		return apierrors.NewInternalError(errors.New("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."))
	}
	name := match[0].Name
	out := &policyv1.PodDisruptionBudget{}
	err := pdbs.store.GuaranteedUpdate(ctx, pdbs.key(pod.Namespace, name), out, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		b := cur.(*policyv1.PodDisruptionBudget)
		spend, err := budgetAllows(b, pod)
		if err != nil {
			return nil, err
		}
		if dry || !spend {
			return nil, dryRunResult{obj: b}
		}
		b.Status.DisruptionsAllowed--
		if b.Status.DisruptedPods == nil {
			b.Status.DisruptedPods = map[string]metav1.Time{}
		}
		b.Status.DisruptedPods[pod.Name] = metav1.NewTime(time.Now())
		return b, nil
	})
	var dr dryRunResult
	if errors.As(err, &dr) {
		return nil
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	return storageError(err, pdbs.groupResource(), name)
}

// budgetAllows decides whether b lets pod go, and whether that spends one
// of its disruptions (upstream's eviction rules: an unhealthy pod goes
// without spending when the budget is met, or always under the AlwaysAllow
// unhealthyPodEvictionPolicy).
func budgetAllows(b *policyv1.PodDisruptionBudget, pod *corev1.Pod) (spend bool, err error) {
	if b.Status.ObservedGeneration < b.Generation {
		return false, tooManyRequests(fmt.Sprintf("The disruption budget %s is still being processed by the server.", b.Name))
	}
	if !podReady(pod) {
		if p := b.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
			return false, nil
		}
		if b.Status.CurrentHealthy >= b.Status.DesiredHealthy && b.Status.DesiredHealthy > 0 {
			return false, nil
		}
	}
	if b.Status.DisruptionsAllowed < 0 {
		return false, tooManyRequests("pdb disruptions allowed is negative")
	}
	if b.Status.DisruptionsAllowed == 0 {
		return false, tooManyRequests(fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", b.Name, b.Status.DesiredHealthy, b.Status.CurrentHealthy))
	}
	return true, nil
}

func tooManyRequests(cause string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	if err.ErrStatus.Details == nil {
		err.ErrStatus.Details = &metav1.StatusDetails{}
	}
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause, Message: cause}}
	return err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// markDisruptionTarget adds the condition DisruptionTarget=True (reason
// EvictionByEvictionAPI) to the pod's status before the eviction deletes
// it, as upstream's eviction does, so that a Job's podFailurePolicy can
// tell an eviction from a failure. The delete options' preconditions are
// checked against the pod first; a resourceVersion precondition is moved
// to the version this write made, since the eviction itself changed it.
func (s *Server) markDisruptionTarget(ctx context.Context, sv *served, info requestInfo, opts *metav1.DeleteOptions) (*metav1.DeleteOptions, error) {
	gr := sv.groupResource()
	out := &corev1.Pod{}
	err := sv.store.GuaranteedUpdate(ctx, sv.key(info.namespace, info.name), out, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != pod.UID {
				return nil, apierrors.NewConflict(gr, info.name, fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *p.UID, pod.UID))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != pod.ResourceVersion {
				return nil, apierrors.NewConflict(gr, info.name, fmt.Errorf("the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", *p.ResourceVersion, pod.ResourceVersion))
			}
		}
		setDisruptionTarget(&pod.Status, metav1.Now())
		return pod, nil
	})
	if err != nil {
		return nil, storageError(err, gr, info.name)
	}
	if p := opts.Preconditions; p != nil && p.ResourceVersion != nil && *p.ResourceVersion != "" {
		opts = opts.DeepCopy()
		rv := out.ResourceVersion
		opts.Preconditions.ResourceVersion = &rv
	}
	return opts, nil
}

// setDisruptionTarget sets DisruptionTarget=True with the eviction's
// reason and message, keeping its transition time when it was True.
func setDisruptionTarget(st *corev1.PodStatus, now metav1.Time) {
	c := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: now}
	for _, old := range st.Conditions {
		if old.Type == corev1.DisruptionTarget && old.Status == corev1.ConditionTrue {
			c.LastTransitionTime = old.LastTransitionTime
		}
	}
	setPodCondition(st, c)
}
