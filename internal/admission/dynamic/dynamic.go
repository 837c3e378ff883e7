// Package dynamic is the admission that the cluster's own objects
// configure, upstream's "dynamic admission control": the webhooks of
// MutatingWebhookConfigurations and ValidatingWebhookConfigurations, and
// MutatingAdmissionPolicies and ValidatingAdmissionPolicies with their
// bindings.
//
// It runs upstream's plugins for them (k8s.io/apiserver's
// MutatingAdmissionPolicy, MutatingAdmissionWebhook,
// ValidatingAdmissionWebhook and ValidatingAdmissionPolicy): matching by
// rules, matchPolicy, selectors and CEL matchConditions, the
// AdmissionReview calls with their TLS, timeouts and failurePolicy, and
// the CEL of the policies (with its runtime cost budget) and their
// patches (apply configurations merged by structured-merge-diff, JSON
// patches) are theirs, so that webhooks and policies behave, and fail, in
// upstream's words. What is skiff's: the informers that read the
// configurations through the server's loopback client, the service
// resolution, the authorizer the CEL sees, the type information the
// apply configurations merge by (mutatingpolicy.go), the reinvocation of
// the mutating phase, and where in the server's write pipeline the two
// phases run (apiserver.DynamicAdmission).
package dynamic

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/initializer"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/mutating"
	validatingwebhook "k8s.io/apiserver/pkg/admission/plugin/webhook/validating"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	webhookutil "k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/discovery/cached/memory"
	dynamicclient "k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// readyWait is how long a write waits at start for the plugins to be
// started before it is refused.
const readyWait = 10 * time.Second

// Admission is the dynamic admission of one API server: New, then Start
// once the server serves; writes before Start wait for it.
//
// Upstream's plugins are built when the first configuration or policy
// appears: their CEL environments cost an idle server about 10 MiB that
// a cluster without any webhook or policy need not pay. Until then every
// write is admitted at the cost of an atomic load.
type Admission struct {
	started  chan struct{}
	services clusterIPResolver
	chain    atomic.Pointer[chain]
	once     sync.Once
}

// chain is upstream's plugins, built: or err, which then refuses every
// write rather than let it pass unchecked.
type chain struct {
	mutating   []admission.MutationInterface
	validating []admission.ValidationInterface
	err        error
}

var _ apiserver.DynamicAdmission = (*Admission)(nil)

// wantsAuthorizer and wantsServiceResolver are what some of the plugins
// take beyond upstream's generic initializer.
type (
	wantsAuthorizer interface {
		SetUnconditionalAuthorizer(authorizer.UnconditionalAuthorizer)
	}
	wantsServiceResolver interface {
		SetServiceResolver(webhookutil.ServiceResolver)
	}
)

// plugin is one of upstream's plugins before it starts.
type plugin interface {
	admission.Interface
	admission.InitializationValidator
}

// New returns the dynamic admission; it admits nothing until Start.
func New() (*Admission, error) {
	return &Admission{started: make(chan struct{})}, nil
}

// Start reads the configurations and policies through loopback, and
// builds upstream's plugins once one exists. authz answers the CEL's
// authorizer checks; types gives the mutating policies the structure of
// the built-in kinds (nil: they read all kinds from /openapi/v3).
func (a *Admission) Start(ctx context.Context, loopback *rest.Config, authz apiserver.Authorizer, types TypeConverters) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	dyn, err := dynamicclient.NewForConfig(loopback)
	if err != nil {
		return err
	}
	mapper := &refreshingMapper{DeferredDiscoveryRESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))}
	return a.start(ctx, client, dyn, mapper, authz, types)
}

// start is Start with the clients made.
func (a *Admission) start(ctx context.Context, client kubernetes.Interface, dyn dynamicclient.Interface, mapper meta.RESTMapper,
	authz apiserver.Authorizer, types TypeConverters) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	a.services = clusterIPResolver{services.Lister()}
	build := func() {
		a.once.Do(func() {
			c := newChain(ctx, client, dyn, factory, mapper, authz, a.services, types)
			// The plugins' own informers (configurations, namespaces).
			factory.StartWithContext(ctx)
			a.chain.Store(c)
		})
	}
	regs := factory.Admissionregistration().V1()
	watched := []cache.SharedIndexInformer{
		regs.MutatingWebhookConfigurations().Informer(), regs.ValidatingWebhookConfigurations().Informer(),
		regs.ValidatingAdmissionPolicies().Informer(), regs.ValidatingAdmissionPolicyBindings().Informer(),
		regs.MutatingAdmissionPolicies().Informer(), regs.MutatingAdmissionPolicyBindings().Informer(),
	}
	synced := []cache.InformerSynced{services.Informer().HasSynced}
	for _, inf := range watched {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(any) { build() }}); err != nil {
			return err
		}
		synced = append(synced, inf.HasSynced)
	}
	factory.StartWithContext(ctx)
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			return
		}
		// What exists at start is in force before the first write is
		// admitted.
		for _, inf := range watched {
			if len(inf.GetStore().ListKeys()) > 0 {
				build()
			}
		}
		close(a.started)
	}()
	return nil
}

// newChain builds upstream's plugins on factory.
func newChain(ctx context.Context, client kubernetes.Interface, dyn dynamicclient.Interface, factory informers.SharedInformerFactory,
	mapper meta.RESTMapper, authz apiserver.Authorizer, services clusterIPResolver, types TypeConverters) *chain {
	mp := newMutatingPolicies(types)
	mw, err := mutating.NewMutatingWebhook(nil)
	if err != nil {
		return &chain{err: err}
	}
	vw, err := validatingwebhook.NewValidatingAdmissionWebhook(nil)
	if err != nil {
		return &chain{err: err}
	}
	vap, err := validating.NewPlugin(nil)
	if err != nil {
		return &chain{err: err}
	}
	plugins := initializer.New(client, dyn, factory, nil, utilfeature.DefaultFeatureGate, nil, ctx.Done(), mapper)
	for _, p := range []plugin{mp, mw, vw, vap} {
		plugins.Initialize(p)
		if w, ok := p.(wantsAuthorizer); ok {
			w.SetUnconditionalAuthorizer(unconditional{authz})
		}
		if w, ok := p.(wantsServiceResolver); ok {
			w.SetServiceResolver(services)
		}
		if err := p.ValidateInitialization(); err != nil {
			return &chain{err: fmt.Errorf("admission plugin %T: %w", p, err)}
		}
	}
	// Upstream's order: the policies, then the webhooks, in both phases.
	return &chain{
		mutating:   []admission.MutationInterface{mp, mw},
		validating: []admission.ValidationInterface{vap, vw},
	}
}

// Admit runs the MutatingAdmissionPolicies, then calls the mutating
// webhooks. When one changed the object after another had run, the two
// run once more, as upstream reinvokes its mutating chain: then only a
// policy or webhook with reinvocationPolicy IfNeeded runs again (each
// plugin keeps that account in the request's reinvocation context).
// skiff's built-in plugins, which run before, are not called again.
func (a *Admission) Admit(ctx context.Context, attrs admission.Attributes, o admission.ObjectInterfaces) error {
	c, err := a.current(ctx, attrs)
	if c == nil || err != nil {
		return err
	}
	if err := c.admit(ctx, attrs, o); err != nil {
		return err
	}
	if rc := attrs.GetReinvocationContext(); rc.ShouldReinvoke() {
		rc.SetIsReinvoke()
		return c.admit(ctx, attrs, o)
	}
	return nil
}

// admit runs each mutating plugin that handles the operation, in order.
func (c *chain) admit(ctx context.Context, attrs admission.Attributes, o admission.ObjectInterfaces) error {
	for _, m := range c.mutating {
		if !m.Handles(attrs.GetOperation()) {
			continue
		}
		if err := m.Admit(ctx, attrs, o); err != nil {
			return err
		}
	}
	return nil
}

// Validate runs the ValidatingAdmissionPolicies, then calls the
// validating webhooks.
func (a *Admission) Validate(ctx context.Context, attrs admission.Attributes, o admission.ObjectInterfaces) error {
	c, err := a.current(ctx, attrs)
	if c == nil || err != nil {
		return err
	}
	for _, v := range c.validating {
		if !v.Handles(attrs.GetOperation()) {
			continue
		}
		if err := v.Validate(ctx, attrs, o); err != nil {
			return err
		}
	}
	return nil
}

// Active reports whether a write must be admitted here: before Start has
// read the configurations (Admit and Validate then wait for it), or once
// a configuration or policy has existed.
func (a *Admission) Active() bool {
	select {
	case <-a.started:
		return a.chain.Load() != nil
	default:
		return true
	}
}

// Services resolves a webhook's service reference to the address its
// calls go to, for the other webhook clients of the server (CRD
// conversion). Valid after Start.
func (a *Admission) Services() webhookutil.ServiceResolver { return a.services }

// current returns the plugins once started: nil while no configuration or
// policy has ever existed.
func (a *Admission) current(ctx context.Context, attrs admission.Attributes) (*chain, error) {
	if err := a.wait(ctx, attrs); err != nil {
		return nil, err
	}
	c := a.chain.Load()
	if c != nil && c.err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("dynamic admission: %w", c.err))
	}
	return c, nil
}

// wait holds a write that comes before Start, for a while.
func (a *Admission) wait(ctx context.Context, attrs admission.Attributes) error {
	select {
	case <-a.started:
		return nil
	default:
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-a.started:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return admission.NewForbidden(attrs, fmt.Errorf("not yet ready to handle request"))
	}
}

// clusterIPResolver sends a webhook's calls to its Service's cluster IP,
// as upstream's API server does unless told to route to endpoints: the
// node's proxy carries them on to a ready pod.
type clusterIPResolver struct{ services corelisters.ServiceLister }

func (r clusterIPResolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	svc, err := r.services.Services(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return &url.URL{Scheme: "https", Host: net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port)))}, nil
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, "":
	default:
		return nil, fmt.Errorf("unsupported service type %q", svc.Spec.Type)
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		return nil, fmt.Errorf(`cannot route to service with ClusterIP "None"`)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			return &url.URL{Scheme: "https", Host: net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port)))}, nil
		}
	}
	return nil, fmt.Errorf("no service port %d found for service %q", port, svc.Name)
}

// unconditional is the server's authorizer as upstream's CEL asks it
// (authorizer.group(...).resource(...).check(verb)).
type unconditional struct{ authz apiserver.Authorizer }

func (u unconditional) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	var usr *apiserver.User
	if info := a.GetUser(); info != nil {
		usr = &apiserver.User{Name: info.GetName(), UID: info.GetUID(), Groups: info.GetGroups(), Extra: info.GetExtra()}
	}
	allowed, reason, err := u.authz.Authorize(ctx, apiserver.Attributes{
		User: usr, Verb: a.GetVerb(), Namespace: a.GetNamespace(), APIGroup: a.GetAPIGroup(), APIVersion: a.GetAPIVersion(),
		Resource: a.GetResource(), Subresource: a.GetSubresource(), Name: a.GetName(), Path: a.GetPath(),
		ResourceRequest: a.IsResourceRequest(),
	})
	switch {
	case err != nil:
		return authorizer.DecisionNoOpinion, reason, err
	case allowed:
		return authorizer.DecisionAllow, reason, nil
	}
	return authorizer.DecisionDeny, reason, nil
}

// refreshingMapper reads discovery again when a policy's paramKind names
// a kind it has not seen (a CRD created after the server started), at
// most once a second.
type refreshingMapper struct {
	*restmapper.DeferredDiscoveryRESTMapper
	mu    sync.Mutex
	reset time.Time
}

func (m *refreshingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	mapping, err := m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	if meta.IsNoMatchError(err) && m.refresh() {
		return m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	}
	return mapping, err
}

func (m *refreshingMapper) KindFor(resource schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	gvk, err := m.DeferredDiscoveryRESTMapper.KindFor(resource)
	if meta.IsNoMatchError(err) && m.refresh() {
		return m.DeferredDiscoveryRESTMapper.KindFor(resource)
	}
	return gvk, err
}

func (m *refreshingMapper) refresh() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.reset) < time.Second {
		return false
	}
	m.reset = time.Now()
	m.DeferredDiscoveryRESTMapper.Reset()
	return true
}
