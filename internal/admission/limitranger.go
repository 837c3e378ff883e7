package admission

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// limitRangerAnnotation records on a pod which defaults LimitRanger set.
const limitRangerAnnotation = "kubernetes.io/limit-ranger"

// LimitRanger is upstream's LimitRanger admission plugin, over the
// LimitRange objects of the write's namespace. Admit (mutating) gives the
// containers and init containers of a new pod the Container limits'
// default (limits) and defaultRequest (requests) for every resource they
// do not state, and records what it set in the kubernetes.io/limit-ranger
// annotation. Validate (validating) refuses, with 403 Forbidden and
// upstream's messages, a new pod whose containers or whole pod fall
// outside a Container or Pod limit's min, max or maxLimitRequestRatio, and
// a new or updated PersistentVolumeClaim whose storage request falls
// outside a PersistentVolumeClaim limit's min or max.
//
// LimitRanges are read from the watch cache; when it holds none for the
// namespace, from a live read remembered for 30 seconds, as upstream.
type LimitRanger struct {
	// Ranges is the limitranges store, Prefix its list prefix; a
	// namespace's limit ranges are under Prefix+namespace+"/".
	Ranges storage.Interface
	Prefix string

	// now is time.Now; tests replace it.
	now  func() time.Time
	live liveLookup[*corev1.LimitRange]
}

var pvcsGR = schema.GroupResource{Resource: "persistentvolumeclaims"}

// Admit applies the defaults of the namespace's limit ranges to a new pod.
func (l *LimitRanger) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	pod, ok := req.Obj.(*corev1.Pod)
	if !ok || !l.applies(req) {
		return nil
	}
	ranges, err := l.namespaceRanges(ctx, req)
	if err != nil {
		return err
	}
	for _, lr := range ranges {
		applyLimitRangeDefaults(lr, pod)
	}
	return nil
}

// Validate returns the validating half: the min, max and ratio checks.
func (l *LimitRanger) Validate() apiserver.Admission {
	return apiserver.AdmissionFunc(l.validate)
}

func (l *LimitRanger) validate(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if !l.applies(req) {
		return nil
	}
	var check func(*corev1.LimitRange) error
	gr := podsGR
	switch obj := req.Obj.(type) {
	case *corev1.Pod:
		check = func(lr *corev1.LimitRange) error { return validatePodLimits(lr, obj) }
	case *corev1.PersistentVolumeClaim:
		gr = pvcsGR
		check = func(lr *corev1.LimitRange) error { return validateClaimLimits(lr, obj) }
	default:
		return nil
	}
	ranges, err := l.namespaceRanges(ctx, req)
	if err != nil {
		return err
	}
	for _, lr := range ranges {
		if err := check(lr); err != nil {
			return writeForbidden(gr, req, err)
		}
	}
	return nil
}

// applies reports whether LimitRanger looks at the write: a pod create
// or resize, or a PersistentVolumeClaim create or update, of the object
// itself, not of one already being deleted.
func (l *LimitRanger) applies(req *apiserver.AdmissionRequest) bool {
	if l.Ranges == nil || req.Namespace == "" || req.Resource.GroupVersion.Group != "" {
		return false
	}
	// An in-place resize (pods/resize) is checked as upstream does.
	resize := req.Sub == "resize" && req.Resource.Name == "pods" && req.Operation == apiserver.Update
	if req.Sub != "" && !resize {
		return false
	}
	switch req.Resource.Name {
	case "pods":
		if req.Operation != apiserver.Create && !resize {
			return false
		}
	case "persistentvolumeclaims":
		if req.Operation != apiserver.Create && req.Operation != apiserver.Update {
			return false
		}
	default:
		return false
	}
	if req.Old != nil {
		if m, err := meta.Accessor(req.Old); err == nil && m.GetDeletionTimestamp() != nil {
			return false
		}
	}
	return true
}

// namespaceRanges returns the limit ranges of the request's namespace
// from the watch cache, or, when it holds none, from a live read
// remembered for liveTTL (a limit range created a moment ago may not be
// in the cache yet).
func (l *LimitRanger) namespaceRanges(ctx context.Context, req *apiserver.AdmissionRequest) ([]*corev1.LimitRange, error) {
	prefix := l.Prefix + req.Namespace + "/"
	items := func(list *corev1.LimitRangeList) []*corev1.LimitRange {
		out := make([]*corev1.LimitRange, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out
	}
	list := &corev1.LimitRangeList{}
	if err := l.Ranges.List(ctx, prefix, storage.ListOptions{ResourceVersion: "0"}, list); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("limit ranges of namespace %q: %w", req.Namespace, err))
	}
	if len(list.Items) > 0 {
		return items(list), nil
	}
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	ranges, err := l.live.get(req.Namespace, now, func() ([]*corev1.LimitRange, error) {
		live := &corev1.LimitRangeList{}
		if err := l.Ranges.List(ctx, prefix, storage.ListOptions{}, live); err != nil {
			return nil, err
		}
		return items(live), nil
	})
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("limit ranges of namespace %q: %w", req.Namespace, err))
	}
	return ranges, nil
}

// applyLimitRangeDefaults sets, in every container and init container of
// pod, the requests and limits lr's Container limits default that the
// container does not state, and annotates the pod with what it set
// (upstream's text: "LimitRanger plugin set: cpu, memory request for
// container app; cpu limit for init container setup").
func applyLimitRangeDefaults(lr *corev1.LimitRange, pod *corev1.Pod) {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	for _, item := range lr.Spec.Limits {
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		maps.Copy(requests, item.DefaultRequest)
		maps.Copy(limits, item.Default)
	}
	var notes []string
	merge := func(c *corev1.Container, what string) {
		set := func(dst *corev1.ResourceList, defaults corev1.ResourceList) []string {
			var out []string
			for name, q := range defaults {
				if _, ok := (*dst)[name]; ok {
					continue
				}
				if *dst == nil {
					*dst = corev1.ResourceList{}
				}
				(*dst)[name] = q.DeepCopy()
				out = append(out, string(name))
			}
			slices.Sort(out)
			return out
		}
		setLimits := set(&c.Resources.Limits, limits)
		setRequests := set(&c.Resources.Requests, requests)
		if len(setRequests) > 0 {
			notes = append(notes, fmt.Sprintf("%s request for %s %s", strings.Join(setRequests, ", "), what, c.Name))
		}
		if len(setLimits) > 0 {
			notes = append(notes, fmt.Sprintf("%s limit for %s %s", strings.Join(setLimits, ", "), what, c.Name))
		}
	}
	for i := range pod.Spec.Containers {
		merge(&pod.Spec.Containers[i], "container")
	}
	for i := range pod.Spec.InitContainers {
		merge(&pod.Spec.InitContainers[i], "init container")
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[limitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
}

// validatePodLimits checks pod against lr's Container limits (each
// container and init container) and Pod limits (the pod's effective
// requests and limits). All violations are reported, as upstream's
// aggregate.
func validatePodLimits(lr *corev1.LimitRange, pod *corev1.Pod) error {
	var errs []error
	for _, item := range lr.Spec.Limits {
		switch item.Type {
		case corev1.LimitTypeContainer:
			for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
				for _, c := range cs {
					errs = append(errs, checkLimitItem(item, c.Resources.Requests, c.Resources.Limits)...)
				}
			}
		case corev1.LimitTypePod:
			errs = append(errs, checkLimitItem(item, podRequests(pod), podLimits(pod))...)
		}
	}
	return utilerrors.NewAggregate(errs)
}

// checkLimitItem checks requests and limits against item's min, max and
// maxLimitRequestRatio, resources in name order.
func checkLimitItem(item corev1.LimitRangeItem, requests, limits corev1.ResourceList) []error {
	var errs []error
	kind := string(item.Type)
	for _, name := range slices.Sorted(maps.Keys(item.Min)) {
		if err := minConstraint(kind, name, item.Min[name], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(item.Max)) {
		if err := maxConstraint(kind, name, item.Max[name], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(item.MaxLimitRequestRatio)) {
		if err := ratioConstraint(kind, name, item.MaxLimitRequestRatio[name], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// validateClaimLimits checks a claim's requests against lr's
// PersistentVolumeClaim limits: min and max of the request.
func validateClaimLimits(lr *corev1.LimitRange, pvc *corev1.PersistentVolumeClaim) error {
	var errs []error
	for _, item := range lr.Spec.Limits {
		if item.Type != corev1.LimitTypePersistentVolumeClaim {
			continue
		}
		kind := string(item.Type)
		requests := pvc.Spec.Resources.Requests
		for _, name := range slices.Sorted(maps.Keys(item.Min)) {
			if err := minConstraint(kind, name, item.Min[name], requests, nil); err != nil {
				errs = append(errs, err)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(item.Max)) {
			if err := maxRequestConstraint(kind, name, item.Max[name], requests); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return utilerrors.NewAggregate(errs)
}

// enforcedValues returns request, limit and enforced as milli-units when all
// three fit, else as units (upstream compares the same way, so that
// fractional cpu compares exactly and huge memory does not overflow).
func enforcedValues(request, limit, enforced resource.Quantity) (int64, int64, int64) {
	r, l, e := request.Value(), limit.Value(), enforced.Value()
	if r <= resource.MaxMilliValue && l <= resource.MaxMilliValue && e <= resource.MaxMilliValue {
		return request.MilliValue(), limit.MilliValue(), enforced.MilliValue()
	}
	return r, l, e
}

func minConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	r, l, e := enforcedValues(req, lim, enforced)
	switch {
	case !hasReq:
		return fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", name, kind, enforced.String())
	case r < e:
		return fmt.Errorf("minimum %s usage per %s is %s, but request is %s", name, kind, enforced.String(), req.String())
	case hasLim && l < e:
		return fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", name, kind, enforced.String(), lim.String())
	}
	return nil
}

func maxConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	r, l, e := enforcedValues(req, lim, enforced)
	switch {
	case !hasLim:
		return fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", name, kind, enforced.String())
	case l > e:
		return fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", name, kind, enforced.String(), lim.String())
	case hasReq && r > e:
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, kind, enforced.String(), req.String())
	}
	return nil
}

// maxRequestConstraint is max for a claim, which has requests only.
func maxRequestConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests corev1.ResourceList) error {
	req, hasReq := requests[name]
	r, _, e := enforcedValues(req, resource.Quantity{}, enforced)
	switch {
	case !hasReq:
		return fmt.Errorf("maximum %s usage per %s is %s.  No request is specified", name, kind, enforced.String())
	case r > e:
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, kind, enforced.String(), req.String())
	}
	return nil
}

func ratioConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	r, l, _ := enforcedValues(req, lim, enforced)
	if !hasReq || r == 0 {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, kind, enforced.String())
	}
	if !hasLim || l == 0 {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", name, kind, enforced.String())
	}
	ratio := float64(l) / float64(r)
	observed, allowed := ratio, float64(enforced.Value())
	if enforced.Value() <= resource.MaxMilliValue {
		observed, allowed = ratio*1000, float64(enforced.MilliValue())
	}
	if observed > allowed {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, kind, enforced.String(), ratio)
	}
	return nil
}

// podRequests is the pod's effective requests: the sum over containers
// and sidecars (restartable init containers), or the largest init
// container's need with the sidecars started before it, whichever is
// larger; pod-level cpu and memory requests win.
func podRequests(pod *corev1.Pod) corev1.ResourceList {
	return podResources(pod, func(r corev1.ResourceRequirements) corev1.ResourceList { return r.Requests })
}

// podLimits is podRequests for limits.
func podLimits(pod *corev1.Pod) corev1.ResourceList {
	return podResources(pod, func(r corev1.ResourceRequirements) corev1.ResourceList { return r.Limits })
}

func podResources(pod *corev1.Pod, of func(corev1.ResourceRequirements) corev1.ResourceList) corev1.ResourceList {
	total := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		addResources(total, of(c.Resources))
	}
	sidecars, initMax := corev1.ResourceList{}, corev1.ResourceList{}
	for _, c := range pod.Spec.InitContainers {
		need := corev1.ResourceList{}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addResources(total, of(c.Resources))
			addResources(sidecars, of(c.Resources))
			addResources(need, sidecars)
		} else {
			addResources(need, of(c.Resources))
			addResources(need, sidecars)
		}
		for name, q := range need {
			if cur, ok := initMax[name]; !ok || q.Cmp(cur) > 0 {
				initMax[name] = q.DeepCopy()
			}
		}
	}
	for name, q := range initMax {
		if cur, ok := total[name]; !ok || q.Cmp(cur) > 0 {
			total[name] = q.DeepCopy()
		}
	}
	if pod.Spec.Resources != nil {
		for name, q := range of(*pod.Spec.Resources) {
			if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
				total[name] = q.DeepCopy()
			}
		}
	}
	return total
}

func addResources(dst, src corev1.ResourceList) {
	for name, q := range src {
		cur := dst[name].DeepCopy()
		cur.Add(q)
		dst[name] = cur
	}
}
