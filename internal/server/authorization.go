package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	rbacinformers "k8s.io/client-go/informers/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/authorizer/node"
	"github.com/skiff-io/skiff/internal/authorizer/rbac"
)

// Authorization modes (--authorization-mode, a comma-separated list).
const (
	ModeAlwaysAllow = "AlwaysAllow"
	ModeAlwaysDeny  = "AlwaysDeny"
	ModeNode        = "Node"
	ModeRBAC        = "RBAC"
)

// authorization is the server's authorizer and what keeps it fed: with
// RBAC, informers over the loopback on the four rbac.authorization.k8s.io
// kinds; with Node, informers on pods and persistent volumes that keep the
// Node authorizer's graph; in every mode the controller that aggregates
// ClusterRoles. In every mode the bootstrap roles and bindings are
// reconciled at start, so that the charts and tools that expect them find
// them.
type authorization struct {
	modes []string
	rbac  *rbac.Authorizer // nil unless RBAC is among the modes
	node  *node.Authorizer // nil unless Node is among the modes

	bootstrapped, synced atomic.Bool
	// loaded is closed once ready passes: the components the server runs
	// start after it, so that their first requests are not refused for
	// a binding the authorizer has not read yet.
	loaded     chan struct{}
	loadedOnce sync.Once
}

// parseModes reads --authorization-mode as upstream does: a
// comma-separated list of known modes, each at most once.
func parseModes(s string) ([]string, error) {
	var modes, errs []string
	seen := map[string]bool{}
	dup := false
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		switch m {
		case ModeAlwaysAllow, ModeAlwaysDeny, ModeNode, ModeRBAC:
		default:
			errs = append(errs, fmt.Sprintf("authorization-mode %q is not a valid mode", m))
		}
		dup = dup || seen[m]
		seen[m] = true
		modes = append(modes, m)
	}
	if len(modes) == 0 {
		errs = append(errs, "at least one authorization-mode must be passed")
	}
	if dup {
		errs = append(errs, fmt.Sprintf("authorization-mode %q has mode specified more than once", modes))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("--authorization-mode: %s", strings.Join(errs, "; "))
	}
	return modes, nil
}

func newAuthorization(mode string) (*authorization, error) {
	modes, err := parseModes(mode)
	if err != nil {
		return nil, err
	}
	a := &authorization{modes: modes, loaded: make(chan struct{})}
	for _, m := range modes {
		switch m {
		case ModeAlwaysAllow:
			slog.Default().Warn("authorization is off: every authenticated user may do everything", "authorization-mode", mode)
		case ModeRBAC:
			a.rbac = rbac.New()
		case ModeNode:
			a.node = node.New()
		}
	}
	return a, nil
}

// authorizer is what the API server asks: the modes in order, as
// upstream's union authorizer (the first that allows wins; none of ours
// denies outright), behind upstream's privileged-group authorizer, which
// allows system:masters before any mode is asked: the server's own
// components must work before the informers have synced.
func (a *authorization) authorizer() apiserver.Authorizer {
	if len(a.modes) == 1 && a.modes[0] == ModeAlwaysAllow {
		return apiserver.AlwaysAllow{}
	}
	u := union{privileged{}}
	for _, m := range a.modes {
		switch m {
		case ModeAlwaysAllow:
			u = append(u, apiserver.AlwaysAllow{})
		case ModeAlwaysDeny:
			u = append(u, alwaysDeny{})
		case ModeRBAC:
			u = append(u, rbacAuthorizer{a.rbac})
		case ModeNode:
			u = append(u, nodeAuthorizer{a.node})
		}
	}
	return u
}

// admission refuses, in RBAC mode, a Role or binding that would grant what
// its author does not hold (escalation prevention).
func (a *authorization) admission() apiserver.Admission {
	return apiserver.AdmissionFunc(func(ctx context.Context, req *apiserver.AdmissionRequest) error {
		if a.rbac == nil || req.Resource.GroupVersion.Group != rbacv1.GroupName || req.Sub != "" ||
			(req.Operation != apiserver.Create && req.Operation != apiserver.Update) {
			return nil
		}
		if req.Operation == apiserver.Update && grantsSame(req.Obj, req.Old) {
			return nil // labels, owners, finalizers: nothing granted changes
		}
		u, ok := apiserver.UserFrom(ctx)
		if !ok {
			return nil // the server's own writes carry no request user
		}
		ru := rbacUser(u)
		var err error
		switch o := req.Obj.(type) {
		case *rbacv1.ClusterRole:
			err = a.rbac.ConfirmRole(ctx, ru, "", o.Name, o.Rules, o.AggregationRule != nil)
		case *rbacv1.Role:
			err = a.rbac.ConfirmRole(ctx, ru, req.Namespace, o.Name, o.Rules, false)
		case *rbacv1.ClusterRoleBinding:
			err = a.rbac.ConfirmBinding(ctx, ru, o.RoleRef, "")
		case *rbacv1.RoleBinding:
			err = a.rbac.ConfirmBinding(ctx, ru, o.RoleRef, req.Namespace)
		}
		if errors.Is(err, rbac.ErrEscalation) {
			gr := schema.GroupResource{Group: rbacv1.GroupName, Resource: req.Resource.Name}
			return apierrors.NewForbidden(gr, req.Name, err)
		}
		return err
	})
}

// grantsSame reports whether an update of a role or binding leaves what
// it grants as it was.
func grantsSame(obj, old any) bool {
	switch o := obj.(type) {
	case *rbacv1.ClusterRole:
		p, ok := old.(*rbacv1.ClusterRole)
		return ok && reflect.DeepEqual(o.Rules, p.Rules) && reflect.DeepEqual(o.AggregationRule, p.AggregationRule)
	case *rbacv1.Role:
		p, ok := old.(*rbacv1.Role)
		return ok && reflect.DeepEqual(o.Rules, p.Rules)
	case *rbacv1.ClusterRoleBinding:
		p, ok := old.(*rbacv1.ClusterRoleBinding)
		return ok && o.RoleRef == p.RoleRef && reflect.DeepEqual(o.Subjects, p.Subjects)
	case *rbacv1.RoleBinding:
		p, ok := old.(*rbacv1.RoleBinding)
		return ok && o.RoleRef == p.RoleRef && reflect.DeepEqual(o.Subjects, p.Subjects)
	}
	return false
}

// start reconciles the bootstrap policy and, in RBAC mode, runs the
// informers and the aggregation controller until ctx ends.
func (a *authorization) start(ctx context.Context, wg *sync.WaitGroup, loopback *rest.Config) error {
	cfg := rest.CopyConfig(loopback)
	cfg.UserAgent = "skiff-rbac"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if err := reconcileBootstrapPolicy(ctx, cs); err != nil {
				slog.Default().Debug("bootstrap RBAC policy not reconciled yet", "err", err)
				return false, nil
			}
			a.bootstrapped.Store(true)
			return true, nil
		})
	}()
	// The aggregation controller runs in every mode, so that admin, edit
	// and view show their rules; the authorizer's state only under RBAC.
	factory := informers.NewSharedInformerFactory(cs, 0)
	r := factory.Rbac().V1()
	agg := newAggregator(cs, r.ClusterRoles().Lister().List)
	handle(r.ClusterRoles().Informer(),
		func(o any) {
			if a.rbac != nil {
				a.rbac.PutClusterRole(o.(*rbacv1.ClusterRole))
			}
			agg.poke()
		},
		func(o any) {
			if a.rbac != nil {
				a.rbac.DeleteClusterRole(o.(*rbacv1.ClusterRole).Name)
			}
			agg.poke()
		})
	synced := []cache.InformerSynced{r.ClusterRoles().Informer().HasSynced}
	if a.rbac != nil {
		synced = append(synced, a.feedBindings(r)...)
	}
	if a.node != nil {
		synced = append(synced, a.feedGraph(factory)...)
	}
	factory.StartWithContext(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer factory.Shutdown()
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			return
		}
		a.synced.Store(true)
		go a.waitLoaded(ctx)
		agg.run(ctx)
	}()
	return nil
}

// ready is the "poststarthook/rbac/bootstrap-roles" readiness check: the
// default policy is in place and the authorizer has read every role and
// binding, those of the policy included.
func (a *authorization) ready(context.Context) error {
	select {
	case <-a.loaded:
		return nil
	default:
		return errors.New("RBAC policy not loaded yet")
	}
}

// waitLoaded closes loaded once the bootstrap policy is reconciled and the
// informers have delivered it: the informers may have synced before the
// policy was written, so the RBAC authorizer is asked, until it agrees,
// for what the server's components do first (each takes its Lease).
func (a *authorization) waitLoaded(ctx context.Context) {
	probes := []rbac.Attributes{
		leaseProbe(rbac.UserKubeScheduler, "kube-scheduler"),
		leaseProbe(rbac.UserKubeController, "kube-controller-manager"),
	}
	_ = wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if !a.bootstrapped.Load() {
			return false, nil
		}
		for _, p := range probes {
			if a.rbac == nil {
				break
			}
			if ok, _, _ := a.rbac.Authorize(ctx, p); !ok {
				return false, nil
			}
		}
		a.loadedOnce.Do(func() { close(a.loaded) })
		return true, nil
	})
}

func leaseProbe(user, lease string) rbac.Attributes {
	return rbac.Attributes{User: &rbac.User{Name: user, Groups: []string{rbac.GroupAuthenticated}},
		Verb: "get", Namespace: "kube-system", APIGroup: "coordination.k8s.io", APIVersion: "v1",
		Resource: "leases", Name: lease, ResourceRequest: true}
}

// feedBindings keeps the RBAC authorizer's Roles and bindings as the
// informers see them.
func (a *authorization) feedBindings(r rbacinformers.Interface) []cache.InformerSynced {
	handle(r.Roles().Informer(),
		func(o any) { a.rbac.PutRole(o.(*rbacv1.Role)) },
		func(o any) { x := o.(*rbacv1.Role); a.rbac.DeleteRole(x.Namespace, x.Name) })
	handle(r.ClusterRoleBindings().Informer(),
		func(o any) { a.rbac.PutClusterRoleBinding(o.(*rbacv1.ClusterRoleBinding)) },
		func(o any) { a.rbac.DeleteClusterRoleBinding(o.(*rbacv1.ClusterRoleBinding).Name) })
	handle(r.RoleBindings().Informer(),
		func(o any) { a.rbac.PutRoleBinding(o.(*rbacv1.RoleBinding)) },
		func(o any) { x := o.(*rbacv1.RoleBinding); a.rbac.DeleteRoleBinding(x.Namespace, x.Name) })
	return []cache.InformerSynced{r.Roles().Informer().HasSynced, r.ClusterRoleBindings().Informer().HasSynced, r.RoleBindings().Informer().HasSynced}
}

// feedGraph keeps the Node authorizer's graph as the pod and persistent
// volume informers see them. The graph holds only pods bound to a node, so
// the pods are watched with spec.nodeName!="": creating a pod costs no
// event here, binding it arrives as its addition. They are cached without
// their status and managed fields: the graph reads only their specs.
func (a *authorization) feedGraph(factory informers.SharedInformerFactory) []cache.InformerSynced {
	pods := factory.InformerFor(&corev1.Pod{}, func(cs kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewFilteredPodInformer(cs, metav1.NamespaceAll, resync, cache.Indexers{}, func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		})
	})
	_ = pods.SetTransform(func(o any) (any, error) {
		if p, ok := o.(*corev1.Pod); ok {
			p.ManagedFields = nil
			p.Status = corev1.PodStatus{}
		}
		return o, nil
	})
	handle(pods,
		func(o any) { a.node.PutPod(o.(*corev1.Pod)) },
		func(o any) { p := o.(*corev1.Pod); a.node.DeletePod(p.Namespace, p.Name) })
	pvs := factory.Core().V1().PersistentVolumes().Informer()
	handle(pvs,
		func(o any) { a.node.PutPV(o.(*corev1.PersistentVolume)) },
		func(o any) { a.node.DeletePV(o.(*corev1.PersistentVolume).Name) })
	return []cache.InformerSynced{pods.HasSynced, pvs.HasSynced}
}

// handle sends an informer's events to put and del, unwrapping
// tombstones.
func handle(inf cache.SharedIndexInformer, put, del func(obj any)) {
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    put,
		UpdateFunc: func(_, obj any) { put(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			del(obj)
		},
	})
}

// privileged is upstream's privileged-group authorizer: system:masters
// may do everything; everyone else is left to the modes.
type privileged struct{}

func isMaster(u *apiserver.User) bool {
	return u != nil && slices.Contains(u.Groups, rbac.SystemMasters)
}

func (privileged) Authorize(_ context.Context, a apiserver.Attributes) (bool, string, error) {
	return isMaster(a.User), "", nil
}

// alwaysDeny is upstream's AlwaysDeny mode: no opinion, with a reason.
type alwaysDeny struct{}

func (alwaysDeny) Authorize(context.Context, apiserver.Attributes) (bool, string, error) {
	return false, "Everything is forbidden.", nil
}

func (alwaysDeny) RulesFor(context.Context, *apiserver.User, string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	return nil, nil, false, nil
}

// union asks each authorizer in turn: the first that allows decides. A
// request none allows is refused with every reason given, one a line, and
// the errors met on the way, as upstream's union authorizer.
type union []apiserver.Authorizer

func (u union) Authorize(ctx context.Context, a apiserver.Attributes) (bool, string, error) {
	var reasons []string
	var errs []error
	for _, z := range u {
		ok, reason, err := z.Authorize(ctx, a)
		if ok {
			return true, reason, nil
		}
		if reason != "" {
			reasons = append(reasons, reason)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return false, strings.Join(reasons, "\n"), errors.Join(errs...)
}

// RulesFor lists what every member can list; the list is incomplete when
// a member cannot list its rules. system:masters may do everything.
func (u union) RulesFor(ctx context.Context, user *apiserver.User, namespace string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	if isMaster(user) {
		return apiserver.AlwaysAllow{}.RulesFor(ctx, user, namespace)
	}
	var (
		rules      []authorizationv1.ResourceRule
		nonRes     []authorizationv1.NonResourceRule
		incomplete bool
		errs       []error
	)
	for _, z := range u {
		if _, ok := z.(privileged); ok {
			continue
		}
		l, ok := z.(apiserver.RuleLister)
		if !ok {
			incomplete = true
			continue
		}
		r, n, inc, err := l.RulesFor(ctx, user, namespace)
		rules, nonRes = append(rules, r...), append(nonRes, n...)
		incomplete = incomplete || inc
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rules, nonRes, incomplete, errors.Join(errs...)
}

// rbacAuthorizer adapts the RBAC authorizer to the API server's interface.
type rbacAuthorizer struct{ a *rbac.Authorizer }

func rbacUser(u *apiserver.User) *rbac.User {
	return &rbac.User{Name: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}
}

func rbacAttributes(a apiserver.Attributes) rbac.Attributes {
	return rbac.Attributes{
		User: rbacUser(a.User), Verb: a.Verb, Namespace: a.Namespace, APIGroup: a.APIGroup,
		APIVersion: a.APIVersion, Resource: a.Resource, Subresource: a.Subresource, Name: a.Name,
		Path: a.Path, ResourceRequest: a.ResourceRequest, LabelSelector: a.LabelSelector,
		FieldSelector: a.FieldSelector,
	}
}

func (r rbacAuthorizer) Authorize(ctx context.Context, a apiserver.Attributes) (bool, string, error) {
	if a.User == nil {
		return false, "", nil
	}
	return r.a.Authorize(ctx, rbacAttributes(a))
}

func (r rbacAuthorizer) RulesFor(ctx context.Context, u *apiserver.User, namespace string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	return r.a.RulesFor(ctx, rbacUser(u), namespace)
}

// nodeAuthorizer adapts the Node authorizer to the API server's interface.
type nodeAuthorizer struct{ a *node.Authorizer }

func (n nodeAuthorizer) Authorize(ctx context.Context, a apiserver.Attributes) (bool, string, error) {
	if a.User == nil {
		return false, "", nil
	}
	return n.a.Authorize(ctx, rbacAttributes(a))
}

func (n nodeAuthorizer) RulesFor(ctx context.Context, u *apiserver.User, namespace string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	return n.a.RulesFor(ctx, rbacUser(u), namespace)
}

// reconcileBootstrapPolicy creates upstream's default ClusterRoles and
// ClusterRoleBindings, then its default Roles and RoleBindings, when they
// are missing, and restores those whose autoupdate annotation is "true"
// when they differ (an aggregated role's rules are the aggregation
// controller's, not compared here).
func reconcileBootstrapPolicy(ctx context.Context, cs kubernetes.Interface) error {
	roles := cs.RbacV1().ClusterRoles()
	for _, want := range rbac.ClusterRoles() {
		have, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := roles.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("clusterrole %s: %w", want.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("clusterrole %s: %w", want.Name, err)
		}
		if !autoupdate(have.Annotations) {
			continue
		}
		sameRules := want.AggregationRule != nil || reflect.DeepEqual(have.Rules, want.Rules)
		if sameRules && reflect.DeepEqual(have.AggregationRule, want.AggregationRule) && hasAll(have.Labels, want.Labels) {
			continue
		}
		upd := have.DeepCopy()
		if want.AggregationRule == nil {
			upd.Rules = want.Rules
		}
		upd.AggregationRule = want.AggregationRule
		upd.Labels = merged(upd.Labels, want.Labels)
		if _, err := roles.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("clusterrole %s: %w", want.Name, err)
		}
	}
	bindings := cs.RbacV1().ClusterRoleBindings()
	for _, want := range rbac.ClusterRoleBindings() {
		have, err := bindings.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := bindings.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("clusterrolebinding %s: %w", want.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("clusterrolebinding %s: %w", want.Name, err)
		}
		if !autoupdate(have.Annotations) || (reflect.DeepEqual(have.Subjects, want.Subjects) && have.RoleRef == want.RoleRef) {
			continue
		}
		if have.RoleRef != want.RoleRef {
			// roleRef cannot change: the binding is made again.
			if err := bindings.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("clusterrolebinding %s: %w", want.Name, err)
			}
			if _, err := bindings.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("clusterrolebinding %s: %w", want.Name, err)
			}
			continue
		}
		upd := have.DeepCopy()
		upd.Subjects = want.Subjects
		if _, err := bindings.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("clusterrolebinding %s: %w", want.Name, err)
		}
	}
	return reconcileBootstrapRoles(ctx, cs)
}

// reconcileBootstrapRoles does for the default Roles and RoleBindings
// (rbac.Roles, rbac.RoleBindings) what reconcileBootstrapPolicy does for
// the cluster-wide ones. Their namespaces are the bootstrap's to create:
// until they exist this fails, and the caller tries again.
func reconcileBootstrapRoles(ctx context.Context, cs kubernetes.Interface) error {
	for _, want := range rbac.Roles() {
		roles := cs.RbacV1().Roles(want.Namespace)
		have, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := roles.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("role %s/%s: %w", want.Namespace, want.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("role %s/%s: %w", want.Namespace, want.Name, err)
		}
		if !autoupdate(have.Annotations) || (reflect.DeepEqual(have.Rules, want.Rules) && hasAll(have.Labels, want.Labels)) {
			continue
		}
		upd := have.DeepCopy()
		upd.Rules = want.Rules
		upd.Labels = merged(upd.Labels, want.Labels)
		if _, err := roles.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("role %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	for _, want := range rbac.RoleBindings() {
		bindings := cs.RbacV1().RoleBindings(want.Namespace)
		have, err := bindings.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := bindings.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("rolebinding %s/%s: %w", want.Namespace, want.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("rolebinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		if !autoupdate(have.Annotations) || (reflect.DeepEqual(have.Subjects, want.Subjects) && have.RoleRef == want.RoleRef) {
			continue
		}
		if have.RoleRef != want.RoleRef {
			// roleRef cannot change: the binding is made again.
			if err := bindings.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("rolebinding %s/%s: %w", want.Namespace, want.Name, err)
			}
			if _, err := bindings.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("rolebinding %s/%s: %w", want.Namespace, want.Name, err)
			}
			continue
		}
		upd := have.DeepCopy()
		upd.Subjects = want.Subjects
		if _, err := bindings.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("rolebinding %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	return nil
}

func autoupdate(annotations map[string]string) bool {
	return annotations[rbacv1.AutoUpdateAnnotationKey] != "false"
}

func hasAll(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func merged(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range have {
		out[k] = v
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// aggregator keeps every ClusterRole with an aggregationRule holding the
// rules of the ClusterRoles its selectors match. It is level-triggered: a
// poke (any ClusterRole changed) makes it recompute every aggregated role
// from the informer's cache and write those that differ.
type aggregator struct {
	cs    kubernetes.Interface
	list  func(labels.Selector) ([]*rbacv1.ClusterRole, error)
	pokes chan struct{}
}

func newAggregator(cs kubernetes.Interface, list func(labels.Selector) ([]*rbacv1.ClusterRole, error)) *aggregator {
	return &aggregator{cs: cs, list: list, pokes: make(chan struct{}, 1)}
}

func (g *aggregator) poke() {
	select {
	case g.pokes <- struct{}{}:
	default:
	}
}

// run reconciles on every poke until ctx ends; a failed pass is retried.
func (g *aggregator) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		if err := g.reconcile(ctx); err != nil && ctx.Err() == nil {
			slog.Default().Info("aggregating cluster roles, retrying", "err", err)
			retry.Reset(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-g.pokes:
		case <-retry.C:
		}
	}
}

func (g *aggregator) reconcile(ctx context.Context) error {
	all, err := g.list(labels.Everything())
	if err != nil {
		return err
	}
	var errs []string
	for _, cr := range all {
		if cr.AggregationRule == nil {
			continue
		}
		rules, ok, err := rbac.AggregatedRules(cr, all)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", cr.Name, err))
			continue
		}
		if !ok || equalRules(cr.Rules, rules) {
			continue
		}
		upd := cr.DeepCopy()
		upd.Rules = rules
		if _, err := g.cs.RbacV1().ClusterRoles().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", cr.Name, err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
