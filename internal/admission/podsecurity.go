package admission

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// PodSecurity is upstream's PodSecurity admission: it holds pods to the
// Pod Security Standards (privileged, baseline, restricted) that their
// namespace's pod-security.kubernetes.io/<mode>[-version] labels ask for.
//
//   - enforce: a pod that violates the level is refused (403);
//   - warn: the client is warned (a Warning header, which kubectl prints);
//   - audit: the request's audit record is annotated
//     (pod-security.kubernetes.io/audit-violations).
//
// Workload resources (Deployments, ReplicaSets, StatefulSets, DaemonSets,
// Jobs, CronJobs, ReplicationControllers, PodTemplates) are warned and
// audited for their pod template, never refused: their pods are. A
// namespace's labels must be valid (422), and raising its enforce level
// warns about the existing pods that would violate it.
//
// The checks and their versions are upstream's library
// (k8s.io/pod-security-admission/policy); this is the glue that upstream's
// admission package is for the kube-apiserver. The default policy is
// privileged for every mode, and nothing is exempt: upstream's
// AdmissionConfiguration (defaults, exempt users, namespaces and runtime
// classes) is not read.
type PodSecurity struct {
	// Namespaces is the namespaces store; NamespaceKey its key function.
	Namespaces   storage.Interface
	NamespaceKey func(name string) string
	// Pods is the pods store; PodPrefix the key prefix of one namespace's
	// pods (ending in "/").
	Pods      storage.Interface
	PodPrefix func(namespace string) string

	evaluator policy.Evaluator
	defaults  api.Policy
}

// Upstream's bounds on the pods a namespace label change looks at.
const (
	podSecurityMaxPodsToCheck  = 3000
	podSecurityPodCheckTimeout = time.Second
)

// NewPodSecurity returns the plugin with upstream's checks; the stores are
// set before the first request.
func NewPodSecurity() (*PodSecurity, error) {
	ev, err := policy.NewEvaluator(podSecurityChecks(), nil)
	if err != nil {
		return nil, fmt.Errorf("pod security checks: %w", err)
	}
	privileged := api.LevelVersion{Level: api.LevelPrivileged, Version: api.LatestVersion()}
	return &PodSecurity{evaluator: ev, defaults: api.Policy{Enforce: privileged, Audit: privileged, Warn: privileged}}, nil
}

// sysctlsSince137 are the sysctls that baseline allows from policy
// version 1.37 on.
var sysctlsSince137 = map[string]bool{"net.ipv4.tcp_slow_start_after_idle": true, "net.ipv4.tcp_notsent_lowat": true}

// podSecurityChecks are upstream's checks. The library's 1.37 release
// needs etcd 3.7 (through k8s.io/apiserver), so an earlier one serves
// while skiff embeds etcd 3.6; the one thing it lacks of 1.37's policy,
// the two sysctls baseline allows since, is added here as a 1.37 version
// of the sysctls check. With a library that has it, the checks are the
// library's alone.
func podSecurityChecks() []policy.Check {
	checks := policy.DefaultChecks()
	v137 := api.MajorMinorVersion(1, 37)
	for i, c := range checks {
		if c.ID != "sysctls" || len(c.Versions) == 0 {
			continue
		}
		last := c.Versions[len(c.Versions)-1]
		if !last.MinimumVersion.Older(v137) {
			break
		}
		c.Versions = append(slices.Clip(c.Versions), policy.VersionedCheck{MinimumVersion: v137,
			CheckPod: func(meta *metav1.ObjectMeta, spec *corev1.PodSpec) policy.CheckResult {
				if spec.SecurityContext == nil {
					return last.CheckPod(meta, spec)
				}
				sc := *spec.SecurityContext
				sc.Sysctls = slices.DeleteFunc(slices.Clone(sc.Sysctls), func(s corev1.Sysctl) bool { return sysctlsSince137[s.Name] })
				without := *spec
				without.SecurityContext = &sc
				return last.CheckPod(meta, &without)
			}})
		checks[i] = c
	}
	return checks
}

// ignoredPodSubresources are the pod subresources that cannot change what
// the policy looks at; any other (ephemeralcontainers, resize) is checked,
// as upstream.
var ignoredPodSubresources = map[string]bool{
	"exec": true, "attach": true, "binding": true, "eviction": true, "log": true,
	"portforward": true, "proxy": true, "status": true,
}

// podControllers are the resources with a pod template, as upstream's
// DefaultPodSpecExtractor lists them.
var podControllers = map[schema.GroupResource]bool{
	{Resource: "replicationcontrollers"}:      true,
	{Resource: "podtemplates"}:                true,
	{Group: "apps", Resource: "replicasets"}:  true,
	{Group: "apps", Resource: "deployments"}:  true,
	{Group: "apps", Resource: "statefulsets"}: true,
	{Group: "apps", Resource: "daemonsets"}:   true,
	{Group: "batch", Resource: "jobs"}:        true,
	{Group: "batch", Resource: "cronjobs"}:    true,
}

func (p *PodSecurity) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Create && req.Operation != apiserver.Update {
		return nil
	}
	gr := schema.GroupResource{Group: req.Resource.GroupVersion.Group, Resource: req.Resource.Name}
	switch {
	case gr == namespacesGR:
		return p.admitNamespace(ctx, req)
	case gr == schema.GroupResource{Resource: "pods"}:
		return p.admitPod(ctx, req, gr)
	case podControllers[gr]:
		p.admitController(ctx, req, gr)
	}
	return nil
}

// admitNamespace refuses invalid pod security labels, and warns about the
// existing pods that a stricter enforce level finds in violation.
func (p *PodSecurity) admitNamespace(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Sub != "" {
		return nil
	}
	ns, ok := req.Obj.(*corev1.Namespace)
	if !ok {
		return apierrors.NewBadRequest("failed to decode namespace")
	}
	newPolicy, newErrs := api.PolicyToEvaluate(ns.Labels, p.defaults)
	invalid := func() error {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Namespace"}, ns.Name, newErrs)
	}
	if req.Operation == apiserver.Create {
		if len(newErrs) > 0 {
			return invalid()
		}
		return nil
	}
	old, ok := req.Old.(*corev1.Namespace)
	if !ok {
		return apierrors.NewBadRequest("failed to decode old namespace")
	}
	oldPolicy, oldErrs := api.PolicyToEvaluate(old.Labels, p.defaults)
	// Labels already invalid and unchanged in their errors do not block
	// other updates of the namespace.
	if len(newErrs) > 0 && (len(oldErrs) == 0 || !reflect.DeepEqual(newErrs, oldErrs)) {
		return invalid()
	}
	// Existing pods are checked only when the enforce level becomes
	// stricter, or its version changes, to anything but privileged.
	if newPolicy.Enforce == oldPolicy.Enforce || newPolicy.Enforce.Level == api.LevelPrivileged ||
		(newPolicy.Enforce.Version == oldPolicy.Enforce.Version && api.CompareLevels(newPolicy.Enforce.Level, oldPolicy.Enforce.Level) < 1) {
		return nil
	}
	for _, w := range p.checkExistingPods(ctx, ns.Name, newPolicy.Enforce) {
		apiserver.AddWarning(ctx, w)
	}
	return nil
}

// checkExistingPods returns upstream's warnings for the pods of a
// namespace that violate a new enforce level: one per distinct violation,
// naming the first pod (by name) and how many others share it. It looks at
// no more than podSecurityMaxPodsToCheck pods, one per controller first,
// and for no longer than podSecurityPodCheckTimeout (or half what is left
// of the request).
func (p *PodSecurity) checkExistingPods(ctx context.Context, namespace string, enforce api.LevelVersion) []string {
	timeout := podSecurityPodCheckTimeout
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline)/2 < timeout {
		timeout = time.Until(deadline) / 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	list := &corev1.PodList{}
	if err := p.Pods.List(ctx, p.PodPrefix(namespace), storage.ListOptions{ResourceVersion: "0"}, list); err != nil {
		return []string{"failed to list pods while checking new PodSecurity enforce level"}
	}
	pods := prioritizePods(list.Items)
	total := len(pods)
	if len(pods) > podSecurityMaxPodsToCheck {
		pods = pods[:podSecurityMaxPodsToCheck]
	}
	type seen struct {
		first string
		count int
	}
	byViolation := map[string]*seen{}
	var violations []string
	checked := len(pods)
	for i, pod := range pods {
		r := policy.AggregateCheckResults(p.evaluator.EvaluatePod(enforce, &pod.ObjectMeta, &pod.Spec))
		if !r.Allowed {
			v := r.ForbiddenReason()
			s, ok := byViolation[v]
			if !ok {
				s = &seen{first: pod.Name}
				byViolation[v] = s
				violations = append(violations, v)
			} else if pod.Name < s.first {
				s.first = pod.Name
			}
			s.count++
		}
		if ctx.Err() != nil {
			checked = i + 1
			break
		}
	}
	var warnings []string
	if checked < total {
		warnings = append(warnings, fmt.Sprintf("new PodSecurity enforce level only checked against the first %d of %d existing pods", checked, total))
	}
	if len(violations) > 0 {
		warnings = append(warnings, fmt.Sprintf("existing pods in namespace %q violate the new PodSecurity enforce level %q", namespace, enforce.String()))
	}
	for i, v := range violations {
		s := byViolation[v]
		switch s.count {
		case 1:
			violations[i] = fmt.Sprintf("%s: %s", s.first, v)
		case 2:
			violations[i] = fmt.Sprintf("%s (and 1 other pod): %s", s.first, v)
		default:
			violations[i] = fmt.Sprintf("%s (and %d other pods): %s", s.first, s.count-1, v)
		}
	}
	sort.Strings(violations)
	return append(warnings, violations...)
}

// prioritizePods puts first the pods without a controller and one pod of
// each controller, then the other pods of controllers already seen: the
// pods of one controller tend to violate alike.
func prioritizePods(items []corev1.Pod) []*corev1.Pod {
	var first, rest []*corev1.Pod
	controllers := map[types.UID]bool{}
	for i := range items {
		pod := &items[i]
		ref := metav1.GetControllerOfNoCopy(pod)
		switch {
		case ref == nil:
			first = append(first, pod)
		case controllers[ref.UID]:
			rest = append(rest, pod)
		default:
			controllers[ref.UID] = true
			first = append(first, pod)
		}
	}
	return append(first, rest...)
}

// admitPod holds a pod to its namespace's policy: refused when it
// violates the enforce level.
func (p *PodSecurity) admitPod(ctx context.Context, req *apiserver.AdmissionRequest, gr schema.GroupResource) error {
	if ignoredPodSubresources[req.Sub] {
		return nil
	}
	ns, err := p.namespace(ctx, req.Namespace)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("failed to lookup namespace %q", req.Namespace))
	}
	nsPolicy, nsErrs := api.PolicyToEvaluate(ns.Labels, p.defaults)
	if len(nsErrs) == 0 && nsPolicy.FullyPrivileged() {
		apiserver.AnnotateAudit(ctx, api.AuditAnnotationPrefix+api.EnforcedPolicyAnnotationKey,
			api.LevelVersion{Level: api.LevelPrivileged, Version: api.LatestVersion()}.String())
		return nil
	}
	pod, ok := req.Obj.(*corev1.Pod)
	if !ok {
		return apierrors.NewBadRequest("failed to decode pod")
	}
	if req.Operation == apiserver.Update {
		old, ok := req.Old.(*corev1.Pod)
		if !ok {
			return apierrors.NewBadRequest("failed to decode old pod")
		}
		if !significantPodUpdate(pod, old) {
			return nil
		}
	}
	return p.evaluate(ctx, nsPolicy, nsErrs.ToAggregate(), &pod.ObjectMeta, &pod.Spec, gr, req.Name, true)
}

// admitController warns and audits a workload for its pod template. It
// never refuses: a namespace it cannot read is an audit annotation.
func (p *PodSecurity) admitController(ctx context.Context, req *apiserver.AdmissionRequest, gr schema.GroupResource) {
	if req.Sub != "" {
		return
	}
	ns, err := p.namespace(ctx, req.Namespace)
	if err != nil {
		apiserver.AnnotateAudit(ctx, api.AuditAnnotationPrefix+"error", fmt.Sprintf("failed to lookup namespace %q: %v", req.Namespace, err))
		return
	}
	nsPolicy, nsErrs := api.PolicyToEvaluate(ns.Labels, p.defaults)
	if len(nsErrs) == 0 && nsPolicy.Warn.Level == api.LevelPrivileged && nsPolicy.Audit.Level == api.LevelPrivileged {
		return
	}
	meta, spec := podTemplate(req.Obj)
	if meta == nil && spec == nil {
		return
	}
	_ = p.evaluate(ctx, nsPolicy, nsErrs.ToAggregate(), meta, spec, gr, req.Name, false)
}

// evaluate checks a pod or pod template against the namespace's policy:
// the enforce level (when enforce is set) refuses, the audit level
// annotates, the warn level warns a request that is not refused.
func (p *PodSecurity) evaluate(ctx context.Context, nsPolicy api.Policy, nsErr error, meta *metav1.ObjectMeta, spec *corev1.PodSpec,
	gr schema.GroupResource, name string, enforce bool) error {
	annotate := func(key, value string) { apiserver.AnnotateAudit(ctx, api.AuditAnnotationPrefix+key, value) }
	if nsErr != nil {
		annotate("error", fmt.Sprintf("Failed to parse policy: %v", nsErr))
	}
	results := map[api.LevelVersion]policy.AggregateCheckResult{}
	result := func(lv api.LevelVersion) policy.AggregateCheckResult {
		r, ok := results[lv]
		if !ok {
			r = policy.AggregateCheckResults(p.evaluator.EvaluatePod(lv, meta, spec))
			results[lv] = r
		}
		return r
	}
	var refused error
	if enforce {
		annotate(api.EnforcedPolicyAnnotationKey, nsPolicy.Enforce.String())
		if r := result(nsPolicy.Enforce); !r.Allowed {
			refused = apierrors.NewForbidden(gr, name, fmt.Errorf("violates PodSecurity %q: %s", nsPolicy.Enforce.String(), r.ForbiddenDetail()))
		}
	}
	if r := result(nsPolicy.Audit); !r.Allowed {
		annotate(api.AuditViolationsAnnotationKey, fmt.Sprintf("would violate PodSecurity %q: %s", nsPolicy.Audit.String(), r.ForbiddenDetail()))
	}
	// A refused request is not warned as well.
	if refused == nil {
		if r := result(nsPolicy.Warn); !r.Allowed {
			apiserver.AddWarning(ctx, fmt.Sprintf("would violate PodSecurity %q: %s", nsPolicy.Warn.String(), r.ForbiddenDetail()))
		}
	}
	return refused
}

// namespace reads a namespace: from the cache, then, on a miss, from etcd
// (a namespace created a moment ago).
func (p *PodSecurity) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	err := p.Namespaces.Get(ctx, p.NamespaceKey(name), "0", ns)
	if errors.Is(err, storage.ErrNotFound) {
		err = p.Namespaces.Get(ctx, p.NamespaceKey(name), "", ns)
	}
	return ns, err
}

// podTemplate returns a workload's pod template (nil, nil when it has
// none).
func podTemplate(obj runtime.Object) (*metav1.ObjectMeta, *corev1.PodSpec) {
	var t *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *corev1.PodTemplate:
		t = &o.Template
	case *corev1.ReplicationController:
		t = o.Spec.Template
	case *appsv1.ReplicaSet:
		t = &o.Spec.Template
	case *appsv1.Deployment:
		t = &o.Spec.Template
	case *appsv1.StatefulSet:
		t = &o.Spec.Template
	case *appsv1.DaemonSet:
		t = &o.Spec.Template
	case *batchv1.Job:
		t = &o.Spec.Template
	case *batchv1.CronJob:
		t = &o.Spec.JobTemplate.Spec.Template
	}
	if t == nil {
		return nil, nil
	}
	return &t.ObjectMeta, &t.Spec
}

// significantPodUpdate says whether a pod update can change what the
// policy looks at: as upstream, a container added or removed, an image
// changed, or an ephemeral container added or changed (the rest of a pod's
// spec is immutable).
func significantPodUpdate(pod, old *corev1.Pod) bool {
	if len(pod.Spec.Containers) != len(old.Spec.Containers) || len(pod.Spec.InitContainers) != len(old.Spec.InitContainers) {
		return true
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Image != old.Spec.Containers[i].Image {
			return true
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Image != old.Spec.InitContainers[i].Image {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		found := false
		for _, oc := range old.Spec.EphemeralContainers {
			if oc.Name == c.Name {
				found = true
				if oc.Image != c.Image {
					return true
				}
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}
