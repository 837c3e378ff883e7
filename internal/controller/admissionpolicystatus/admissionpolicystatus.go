// Package admissionpolicystatus is upstream's ValidatingAdmissionPolicy
// status controller: it type-checks each policy's CEL expressions against
// the schemas of the kinds the policy matches (and of its paramKind), as
// served in the API server's OpenAPI v3, and writes the warnings to
// status.typeChecking with status.observedGeneration. The checking is
// upstream's (k8s.io/apiserver's TypeChecker); the loop is skiff's.
package admissionpolicystatus

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	admissionlisters "k8s.io/client-go/listers/admissionregistration/v1"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's name, upstream's.
const Name = "validatingadmissionpolicy-status"

// Controller is the ValidatingAdmissionPolicy status controller.
type Controller struct {
	client   kubernetes.Interface
	log      *slog.Logger
	checker  *validating.TypeChecker
	policies admissionlisters.ValidatingAdmissionPolicyLister
	synced   cache.InformerSynced
	queue    *reconcile.Queue
}

// New builds the controller on factory's policy informer; client writes
// the status and reads discovery and the OpenAPI schemas.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	c := &Controller{
		client: client,
		log:    slog.Default().With("controller", Name),
		checker: &validating.TypeChecker{
			SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: client.Discovery()},
			// The checker resets the mapper when a kind is not found: a
			// CRD created after the policy is seen on the next check.
			RestMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery())),
		},
	}
	c.queue = reconcile.New(Name, c.sync)
	inf := factory.Admissionregistration().V1().ValidatingAdmissionPolicies()
	c.policies = inf.Lister()
	c.synced = inf.Informer().HasSynced
	if _, err := inf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: policy handler: %w", Name, err)
	}
	return c, nil
}

// Start handles policies until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting")
	return c.queue.Run(ctx, 1, c.synced)
}

// sync type-checks a policy whose status does not yet speak of its
// generation, and writes the result.
func (c *Controller) sync(ctx context.Context, key string) error {
	p, err := c.policies.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("policy %s: %w", key, err)
	}
	if p.Status.ObservedGeneration >= p.Generation && p.Status.TypeChecking != nil {
		return nil
	}
	warnings := c.checker.Check(p)
	p = p.DeepCopy()
	p.Status.ObservedGeneration = p.Generation
	p.Status.TypeChecking = &admissionregistrationv1.TypeChecking{ExpressionWarnings: slices.Clip(warnings)}
	_, err = c.client.AdmissionregistrationV1().ValidatingAdmissionPolicies().UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: Name + "-controller"})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // deleted, or a newer version is on its way through the informer
	}
	if err != nil {
		return fmt.Errorf("policy %s: status: %w", key, err)
	}
	return nil
}
