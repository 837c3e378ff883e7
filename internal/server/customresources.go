package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/conversion"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsinformers "k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions"
	apiextensionslisters "k8s.io/apiextensions-apiserver/pkg/client/listers/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	webhookutil "k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry/customresource"
)

// customResources serves the custom resources of every
// CustomResourceDefinition on this server: it watches the definitions,
// accepts their names (NamesAccepted, as upstream's naming controller),
// adds their resources to the API server (apiserver.Server.Extend) and
// marks them Established, and, when a definition is deleted, deletes its
// objects before it lets the definition go (upstream's finalizer
// controller). Every server runs it: each serves what the definitions
// say, and their status writes agree.
type customResources struct {
	api *apiserver.Server
	log *slog.Logger

	// synced is closed once every definition that existed at start is
	// served: /readyz waits for it, so that no client of a restarted
	// server sees its custom resources missing.
	synced   chan struct{}
	syncOnce sync.Once

	lister apiextensionslisters.CustomResourceDefinitionLister
	client apiextensionsclient.Interface
	dyn    dynamic.Interface
	queue  workqueue.TypedRateLimitingInterface[string]
	// conversions makes the conversion webhook clients of definitions
	// with strategy Webhook.
	conversions *conversion.CRConverterFactory
}

// newCustomResources returns the loop; its api is set once the server
// exists (the server's readiness checks name this loop's).
func newCustomResources(lg *slog.Logger) *customResources {
	return &customResources{log: lg, synced: make(chan struct{})}
}

// ready is /readyz's check "poststarthook/crd-informer-synced".
func (c *customResources) ready(context.Context) error {
	select {
	case <-c.synced:
		return nil
	default:
		return errors.New("custom resource definitions not yet served")
	}
}

// start watches the definitions through loopback until ctx ends.
// Conversion webhooks named by a service are reached through services.
func (c *customResources) start(ctx context.Context, wg *sync.WaitGroup, loopback *rest.Config, services webhookutil.ServiceResolver) error {
	var err error
	if c.conversions, err = conversion.NewCRConverterFactory(services, nil); err != nil {
		return err
	}
	if c.client, err = apiextensionsclient.NewForConfig(loopback); err != nil {
		return err
	}
	if c.dyn, err = dynamic.NewForConfig(loopback); err != nil {
		return err
	}
	factory := apiextensionsinformers.NewSharedInformerFactory(c.client, 0)
	inf := factory.Apiextensions().V1().CustomResourceDefinitions()
	c.lister = inf.Lister()
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "crd"})
	enqueue := func(obj any) {
		if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok {
			c.queue.Add(crd.Name)
		}
	}
	_, err = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			enqueue(obj)
		},
	})
	if err != nil {
		return err
	}
	factory.StartWithContext(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.queue.ShutDown()
		if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
			return
		}
		// Serve what exists before reporting ready; status comes after.
		crds, _ := c.lister.List(labels.Everything())
		for _, crd := range crds {
			if apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.NamesAccepted) {
				c.serve(crd, crd.DeletionTimestamp != nil)
			}
		}
		c.syncOnce.Do(func() { close(c.synced) })
		go func() {
			<-ctx.Done()
			c.queue.ShutDown()
		}()
		for c.next(ctx) {
		}
	}()
	return nil
}

func (c *customResources) next(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	requeue, err := c.sync(ctx, name)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn("custom resource definition", "name", name, "err", err)
		}
		c.queue.AddRateLimited(name)
	case requeue > 0:
		c.queue.Forget(name)
		c.queue.AddAfter(name, requeue)
	default:
		c.queue.Forget(name)
	}
	return true
}

// sync brings one definition's serving and status to what it says. It
// returns how soon to look again when waiting for its objects to go.
func (c *customResources) sync(ctx context.Context, name string) (time.Duration, error) {
	crd, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		if err := c.api.Extend(name, nil); err != nil {
			return 0, err
		}
		// Its names are free again: the group's other definitions may
		// take them now.
		c.requeueGroup(groupOf(name), name)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if crd.DeletionTimestamp != nil {
		// Its objects stay served while they are deleted; new ones are
		// refused, as upstream refuses them.
		if apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
			if err := c.serve(crd, true); err != nil {
				return 0, err
			}
		}
		return c.finalize(ctx, crd.DeepCopy())
	}
	crd = crd.DeepCopy()
	names, accepted, established := c.acceptNames(crd)
	if accepted.Status == apiextensionsv1.ConditionTrue || established.Status == apiextensionsv1.ConditionTrue {
		served := crd.DeepCopy()
		served.Status.AcceptedNames = names
		if err := c.serve(served, false); err != nil {
			return 0, err
		}
		if established.Status != apiextensionsv1.ConditionTrue {
			established = apiextensionsv1.CustomResourceDefinitionCondition{
				Type:    apiextensionsv1.Established,
				Status:  apiextensionsv1.ConditionTrue,
				Reason:  "InitialNamesAccepted",
				Message: "the initial names have been accepted",
			}
		}
	}
	before := crd.Status.DeepCopy()
	crd.Status.AcceptedNames = names
	apihelpers.SetCRDCondition(crd, accepted)
	apihelpers.SetCRDCondition(crd, established)
	if equality.Semantic.DeepEqual(before, &crd.Status) {
		return 0, nil
	}
	_, err = c.client.ApiextensionsV1().CustomResourceDefinitions().UpdateStatus(ctx, crd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return 0, nil // a newer version is on its way through the informer
	}
	return 0, err
}

// serve adds crd's resources to the API server; terminating ones refuse
// new objects.
func (c *customResources) serve(crd *apiextensionsv1.CustomResourceDefinition, terminating bool) error {
	var webhook runtime.ObjectConvertor
	if conv := crd.Spec.Conversion; conv != nil && conv.Strategy == apiextensionsv1.WebhookConverter {
		// Upstream's client: it sends ConversionReviews and checks what
		// comes back (uids, metadata the webhook may not change).
		_, unsafe, err := c.conversions.NewConverter(crd)
		if err != nil {
			return fmt.Errorf("conversion webhook of %s: %w", crd.Name, err)
		}
		webhook = unsafe
	}
	resources, err := customresource.Resources(crd, webhook)
	if err != nil {
		return fmt.Errorf("resources of %s: %w", crd.Name, err)
	}
	for _, res := range resources {
		res.Terminating = terminating
	}
	if err := c.api.Extend(crd.Name, resources); err != nil {
		return fmt.Errorf("serve %s: %w", crd.Name, err)
	}
	return nil
}

// acceptNames decides crd's accepted names against the other definitions
// of its group, as upstream's naming controller: a name another
// definition holds is refused and the accepted one kept, and Established
// stays what it was (Installing until first accepted).
func (c *customResources) acceptNames(crd *apiextensionsv1.CustomResourceDefinition) (apiextensionsv1.CustomResourceDefinitionNames, apiextensionsv1.CustomResourceDefinitionCondition, apiextensionsv1.CustomResourceDefinitionCondition) {
	resourceNames, kindNames := sets.New[string](), sets.New[string]()
	others, _ := c.lister.List(labels.Everything())
	for _, other := range others {
		if other.Name == crd.Name || other.Spec.Group != crd.Spec.Group {
			continue
		}
		n := other.Status.AcceptedNames
		resourceNames.Insert(n.Plural, n.Singular)
		resourceNames.Insert(n.ShortNames...)
		kindNames.Insert(n.Kind, n.ListKind)
	}
	want, have := crd.Spec.Names, crd.Status.AcceptedNames
	names := have
	accepted := apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionUnknown}
	refuse := func(reason string, err error) {
		accepted.Status, accepted.Reason, accepted.Message = apiextensionsv1.ConditionFalse, reason, err.Error()
	}
	take := func(want, have string, used sets.Set[string]) error {
		if want == have || !used.Has(want) {
			return nil
		}
		return fmt.Errorf("%q is already in use", want)
	}
	if err := take(want.Plural, have.Plural, resourceNames); err != nil {
		refuse("PluralConflict", err)
	} else {
		names.Plural = want.Plural
	}
	if err := take(want.Singular, have.Singular, resourceNames); err != nil {
		refuse("SingularConflict", err)
	} else {
		names.Singular = want.Singular
	}
	if !slices.Equal(want.ShortNames, have.ShortNames) {
		var errs []error
		for _, short := range want.ShortNames {
			if !slices.Contains(have.ShortNames, short) {
				if err := take(short, "", resourceNames); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if len(errs) > 0 {
			refuse("ShortNamesConflict", errors.Join(errs...))
		} else {
			names.ShortNames = want.ShortNames
		}
	}
	if err := take(want.Kind, have.Kind, kindNames); err != nil {
		refuse("KindConflict", err)
	} else {
		names.Kind = want.Kind
	}
	if err := take(want.ListKind, have.ListKind, kindNames); err != nil {
		refuse("ListKindConflict", err)
	} else {
		names.ListKind = want.ListKind
	}
	names.Categories = want.Categories
	if accepted.Status == apiextensionsv1.ConditionUnknown {
		accepted.Status, accepted.Reason, accepted.Message = apiextensionsv1.ConditionTrue, "NoConflicts", "no conflicts found"
	}
	established := apiextensionsv1.CustomResourceDefinitionCondition{
		Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionFalse,
		Reason: "NotAccepted", Message: "not all names are accepted",
	}
	if old := apihelpers.FindCRDCondition(crd, apiextensionsv1.Established); old != nil {
		established = *old
	}
	if established.Status != apiextensionsv1.ConditionTrue && accepted.Status == apiextensionsv1.ConditionTrue {
		established = apiextensionsv1.CustomResourceDefinitionCondition{
			Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionFalse,
			Reason: "Installing", Message: "the initial names have been accepted",
		}
	}
	return names, accepted, established
}

// finalize deletes the objects of a definition being deleted, then
// removes its finalizer so that the definition goes.
func (c *customResources) finalize(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) (time.Duration, error) {
	if !apihelpers.CRDHasFinalizer(crd, apiextensionsv1.CustomResourceCleanupFinalizer) {
		return 0, nil
	}
	version, err := apihelpers.GetCRDStorageVersion(crd)
	remaining := 0
	if err == nil && crd.Status.AcceptedNames.Plural != "" {
		gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: version, Resource: crd.Status.AcceptedNames.Plural}
		if remaining, err = c.deleteAll(ctx, gvr); err != nil {
			c.setTerminating(ctx, crd, "InstanceDeletionFailed", fmt.Sprintf("could not delete instances: %v", err))
			return 0, err
		}
	}
	if remaining > 0 {
		c.setTerminating(ctx, crd, "InstanceDeletionInProgress", fmt.Sprintf("CustomResource deletion is in progress: %d remaining", remaining))
		return 2 * time.Second, nil
	}
	apihelpers.SetCRDCondition(crd, apiextensionsv1.CustomResourceDefinitionCondition{
		Type: apiextensionsv1.Terminating, Status: apiextensionsv1.ConditionFalse,
		Reason: "InstanceDeletionCompleted", Message: "removed all instances",
	})
	apihelpers.CRDRemoveFinalizer(crd, apiextensionsv1.CustomResourceCleanupFinalizer)
	_, err = c.client.ApiextensionsV1().CustomResourceDefinitions().UpdateStatus(ctx, crd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil
	}
	return 0, err
}

// deleteAll deletes every object of gvr and returns how many are left
// (held by finalizers or graceful deletion).
func (c *customResources) deleteAll(ctx context.Context, gvr schema.GroupVersionResource) (int, error) {
	list, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil // not served: nothing stored under it
	}
	if err != nil {
		return 0, err
	}
	for _, item := range list.Items {
		if item.GetDeletionTimestamp() != nil {
			continue
		}
		err := c.dyn.Resource(gvr).Namespace(item.GetNamespace()).Delete(ctx, item.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	list, err = c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

func (c *customResources) setTerminating(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, reason, msg string) {
	cond := apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Terminating, Status: apiextensionsv1.ConditionTrue, Reason: reason, Message: msg}
	if old := apihelpers.FindCRDCondition(crd, apiextensionsv1.Terminating); old != nil && apihelpers.IsCRDConditionEquivalent(old, &cond) {
		return
	}
	cp := crd.DeepCopy()
	apihelpers.SetCRDCondition(cp, cond)
	if _, err := c.client.ApiextensionsV1().CustomResourceDefinitions().UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		c.log.Debug("custom resource definition status", "name", crd.Name, "err", err)
	}
}

// requeueGroup looks again at the definitions of group other than name.
func (c *customResources) requeueGroup(group, name string) {
	crds, _ := c.lister.List(labels.Everything())
	for _, crd := range crds {
		if crd.Spec.Group == group && crd.Name != name {
			c.queue.Add(crd.Name)
		}
	}
}

// groupOf is the group of a definition's name (<plural>.<group>).
func groupOf(name string) string {
	_, group, _ := strings.Cut(name, ".")
	return group
}
