package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/controller/resourcequota"
	"github.com/skiff-io/skiff/internal/storage"
)

// ResourceQuota is upstream's ResourceQuota admission plugin: a write that
// would take a namespace past the hard limits of one of its quotas is
// refused with 403 Forbidden ("exceeded quota: ..."), and an admitted one
// is charged to status.used of every quota it matches, before it is
// stored, so that writes racing one another cannot all slip under a limit
// that only one of them fits. The charge is a compare-and-swap on the
// quota that checks the limit again against the quota as stored (a
// conflicting charge re-reads and re-checks, a bounded number of times).
//
// It measures objects with the quota controller's own functions
// (resourcequota.ObjectUsage): what the controller counts is what
// admission charges. A write later refused (by a validator after this one,
// or by storage) leaves its charge until the controller recomputes the
// quota, as upstream; that is why it runs last among the validators.
// Deletes are not admitted: the controller returns their usage.
//
// Writes handled, as upstream's evaluators: creates of every namespaced
// resource quota measures (resourcequota.Measures; not events, say, which
// upstream ignores too); updates of services
// and persistentvolumeclaims; updates of pods that change whether the pod
// is in the Terminating scope. Pods' resources cannot change on update
// (skiff does not serve pods/resize).
type ResourceQuota struct {
	// Quotas is the resourcequotas store, Prefix its list prefix; a
	// namespace's quotas are under Prefix+namespace+"/".
	Quotas storage.Interface
	Prefix string

	// now is time.Now; tests replace it.
	now func() time.Time
	// live remembers, per namespace, a live read of its quotas made when
	// the watch cache showed none.
	live liveLookup[*corev1.ResourceQuota]
}

// quotaCharges bounds the compare-and-swap attempts of one charge.
const quotaCharges = 5

func (q *ResourceQuota) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if q.Quotas == nil || req.Namespace == "" || !req.Resource.Namespaced {
		return nil
	}
	// pods/resize changes what a pod uses; other subresources do not.
	if req.Sub != "" && (req.Sub != "resize" || req.Resource.Name != "pods" || req.Resource.GroupVersion.Group != "") {
		return nil
	}
	gr := schema.GroupResource{Group: req.Resource.GroupVersion.Group, Resource: req.Resource.Name}
	if !resourcequota.Measures(gr) || !quotaHandles(req, gr) {
		return nil
	}
	quotas, err := q.namespaceQuotas(ctx, req.Namespace)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("resource quotas of namespace %q: %w", req.Namespace, err))
	}
	if len(quotas) == 0 {
		return nil
	}
	now := q.clock()
	charges, err := quotaCheck(quotas, gr, req.Obj, req.Old, now)
	if err != nil {
		return writeForbidden(gr, req, err)
	}
	if req.DryRun {
		return nil
	}
	for _, c := range charges {
		if err := q.charge(ctx, req.Namespace, c); err != nil {
			var refused *quotaRefusal
			if errors.As(err, &refused) {
				return writeForbidden(gr, req, refused)
			}
			return err
		}
	}
	return nil
}

func (q *ResourceQuota) clock() time.Time {
	if q.now != nil {
		return q.now()
	}
	return time.Now()
}

// quotaHandles reports whether the write can change quota usage, as
// upstream's evaluators' Handles.
func quotaHandles(req *apiserver.AdmissionRequest, gr schema.GroupResource) bool {
	switch req.Operation {
	case apiserver.Create:
		return true
	case apiserver.Update:
		switch gr {
		case schema.GroupResource{Resource: "services"}, schema.GroupResource{Resource: "persistentvolumeclaims"}:
			return true
		case schema.GroupResource{Resource: "pods"}:
			if req.Sub == "resize" {
				return true
			}
			p, ok1 := req.Obj.(*corev1.Pod)
			o, ok2 := req.Old.(*corev1.Pod)
			return ok1 && ok2 && resourcequota.IsTerminating(p) != resourcequota.IsTerminating(o)
		}
	}
	return false
}

// writeForbidden is upstream's admission.NewForbidden: 403 on the object, named
// by the request, or else by the object's name or generateName.
func writeForbidden(gr schema.GroupResource, req *apiserver.AdmissionRequest, err error) error {
	name := req.Name
	if name == "" {
		name = "Unknown"
		if m, merr := meta.Accessor(req.Obj); merr == nil {
			if m.GetName() != "" {
				name = m.GetName()
			} else if m.GetGenerateName() != "" {
				name = m.GetGenerateName()
			}
		}
	}
	return apierrors.NewForbidden(gr, name, err)
}

// quotaRefusal is why a write does not fit a quota: its text is the
// Forbidden message.
type quotaRefusal struct{ msg string }

func (r *quotaRefusal) Error() string { return r.msg }

func refuse(format string, args ...any) error {
	return &quotaRefusal{msg: fmt.Sprintf(format, args...)}
}

// quotaCharge is the usage one admitted write adds to one quota.
type quotaCharge struct {
	quota string
	usage corev1.ResourceList
}

// quotaCheck decides a write (obj, and old on update) of a gr object
// against the namespace's quotas at now, as upstream's CheckRequest: every
// matching quota must bound only resources the pod states ("failed
// quota"), know their usage ("status unknown") and have room for the
// write's usage ("exceeded quota"). It returns the charges to make.
func quotaCheck(quotas []*corev1.ResourceQuota, gr schema.GroupResource, obj, old runtime.Object, now time.Time) ([]quotaCharge, error) {
	var out []quotaCharge
	for _, quota := range quotas {
		if !resourcequota.Matches(quota, gr, obj) {
			continue
		}
		restricted := resourcequota.MatchingResources(quota, gr)
		if pod, ok := obj.(*corev1.Pod); ok {
			if err := resourcequota.Constraints(restricted, pod); err != nil {
				return nil, refuse("failed quota: %s: %v", quota.Name, err)
			}
		}
		var unknown []string
		for _, name := range restricted {
			if _, ok := quota.Status.Used[name]; !ok {
				unknown = append(unknown, string(name))
			}
		}
		if len(unknown) > 0 {
			return nil, refuse("status unknown for quota: %s, resources: %s", quota.Name, strings.Join(unknown, ","))
		}
		delta := writeUsage(quota, gr, obj, old, now)
		if len(delta) == 0 {
			continue
		}
		if _, err := addUsage(quota, delta); err != nil {
			return nil, err
		}
		out = append(out, quotaCharge{quota: quota.Name, usage: delta})
	}
	return out, nil
}

// writeUsage is what the write adds to quota: obj's usage, less old's
// where old was counted by the quota (an update), never below zero.
func writeUsage(quota *corev1.ResourceQuota, gr schema.GroupResource, obj, old runtime.Object, now time.Time) corev1.ResourceList {
	usage := resourcequota.ObjectUsage(quota, gr, obj, now)
	if old == nil || !resourcequota.Matches(quota, gr, old) {
		return usage
	}
	prev := resourcequota.ObjectUsage(quota, gr, old, now)
	out := corev1.ResourceList{}
	for name, q := range usage {
		d := q.DeepCopy()
		if p, ok := prev[name]; ok {
			d.Sub(p)
		}
		if d.Sign() > 0 {
			out[name] = d
		}
	}
	return out
}

// addUsage returns quota's status.used with delta added, or the refusal
// when that passes a hard limit: upstream's message, listing the
// resources over their limit with what was requested, used and allowed.
func addUsage(quota *corev1.ResourceQuota, delta corev1.ResourceList) (corev1.ResourceList, error) {
	used := quota.Status.Used.DeepCopy()
	if used == nil {
		used = corev1.ResourceList{}
	}
	var exceeded []corev1.ResourceName
	for name, d := range delta {
		hard, ok := quota.Status.Hard[name]
		if !ok {
			continue
		}
		n := used[name].DeepCopy()
		n.Add(d)
		used[name] = n
		if n.Cmp(hard) > 0 {
			exceeded = append(exceeded, name)
		}
	}
	if len(exceeded) > 0 {
		slices.Sort(exceeded)
		return nil, refuse("exceeded quota: %s, requested: %s, used: %s, limited: %s", quota.Name,
			printResources(delta, exceeded), printResources(quota.Status.Used, exceeded), printResources(quota.Status.Hard, exceeded))
	}
	return used, nil
}

// printResources prints names (sorted) of l as upstream's prettyPrint:
// "cpu=600m,memory=1Gi"; names l lacks are left out.
func printResources(l corev1.ResourceList, names []corev1.ResourceName) string {
	var parts []string
	for _, n := range names {
		if q, ok := l[n]; ok {
			parts = append(parts, string(n)+"="+q.String())
		}
	}
	return strings.Join(parts, ",")
}

// charge adds c to the quota's status.used with compare-and-swap, checking
// the limits again against the quota as stored: a charge that raced
// another re-reads, up to quotaCharges times. A quota deleted meanwhile
// is not charged.
func (q *ResourceQuota) charge(ctx context.Context, namespace string, c quotaCharge) error {
	attempts := 0
	err := q.Quotas.GuaranteedUpdate(ctx, q.Prefix+namespace+"/"+c.quota, nil, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		attempts++
		if attempts > quotaCharges {
			return nil, apierrors.NewConflict(schema.GroupResource{Resource: "resourcequotas"}, c.quota,
				errors.New("too many concurrent updates of the quota; try again"))
		}
		quota, ok := cur.(*corev1.ResourceQuota)
		if !ok {
			return nil, fmt.Errorf("resource quota %s/%s: unexpected type %T", namespace, c.quota, cur)
		}
		used, err := addUsage(quota, c.usage)
		if err != nil {
			return nil, err
		}
		quota.Status.Used = used
		return quota, nil
	})
	switch {
	case err == nil, errors.Is(err, storage.ErrNotFound):
		return nil
	case apierrors.IsConflict(err):
		return err
	}
	var refused *quotaRefusal
	if errors.As(err, &refused) {
		return err
	}
	return apierrors.NewInternalError(fmt.Errorf("charging resource quota %s/%s: %w", namespace, c.quota, err))
}

// namespaceQuotas returns the namespace's quotas from the watch cache.
// When the cache holds none, a quota created a moment ago may not have
// reached it yet: then, as upstream, a live (consistent) read of the
// namespace's quotas is made and remembered for liveTTL, so that a
// namespace without quotas costs one read per liveTTL, not one per write.
func (q *ResourceQuota) namespaceQuotas(ctx context.Context, namespace string) ([]*corev1.ResourceQuota, error) {
	prefix := q.Prefix + namespace + "/"
	list := &corev1.ResourceQuotaList{}
	if err := q.Quotas.List(ctx, prefix, storage.ListOptions{ResourceVersion: "0"}, list); err != nil {
		return nil, err
	}
	if len(list.Items) > 0 {
		return quotaItems(list), nil
	}
	return q.live.get(namespace, q.clock(), func() ([]*corev1.ResourceQuota, error) {
		live := &corev1.ResourceQuotaList{}
		if err := q.Quotas.List(ctx, prefix, storage.ListOptions{}, live); err != nil {
			return nil, err
		}
		return quotaItems(live), nil
	})
}

// quotaItems returns list's items. They may be shared with the watch
// cache: read-only.
func quotaItems(list *corev1.ResourceQuotaList) []*corev1.ResourceQuota {
	out := make([]*corev1.ResourceQuota, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out
}

// liveTTL is how long a live read of a namespace's quotas (or limit
// ranges) stands in for the cache, and liveEntries how many namespaces are
// remembered: upstream's 30 s, and a bound on memory.
const (
	liveTTL     = 30 * time.Second
	liveEntries = 1000
)

// liveLookup remembers live reads of a namespace's objects for liveTTL.
// The zero value is ready to use; it is safe for concurrent use.
// Concurrent misses of one namespace may each read; the last read is
// remembered.
type liveLookup[T any] struct {
	mu      sync.Mutex
	entries map[string]liveEntry[T]
}

type liveEntry[T any] struct {
	expiry time.Time
	items  []T
}

// get returns the namespace's remembered items if younger than liveTTL at
// now, else those read returns, remembered.
func (l *liveLookup[T]) get(namespace string, now time.Time, read func() ([]T, error)) ([]T, error) {
	l.mu.Lock()
	e, ok := l.entries[namespace]
	l.mu.Unlock()
	if ok && now.Before(e.expiry) {
		return e.items, nil
	}
	items, err := read()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string]liveEntry[T]{}
	}
	if len(l.entries) >= liveEntries {
		for ns, e := range l.entries {
			if !now.Before(e.expiry) {
				delete(l.entries, ns)
			}
		}
		for ns := range l.entries {
			if len(l.entries) < liveEntries {
				break
			}
			delete(l.entries, ns)
		}
	}
	l.entries[namespace] = liveEntry[T]{expiry: now.Add(liveTTL), items: items}
	return items, nil
}
