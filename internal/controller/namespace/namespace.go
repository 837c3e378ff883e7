// Package namespace is the namespace controller: when a namespace is being
// deleted it deletes everything in it, pods first and the rest once the
// pods are gone (upstream's OrderedNamespaceDeletion), reports progress in
// the namespace's deletion conditions as upstream does, then removes the
// "kubernetes" finalizer so that the API server deletes the namespace
// itself. It is a client of the API like any other controller.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Controller finalizes namespaces being deleted.
type Controller struct {
	client  kubernetes.Interface
	dynamic dynamic.Interface
	log     *slog.Logger
}

// New builds a controller from a client configuration.
func New(cfg *rest.Config) (*Controller, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Controller{client: cs, dynamic: dc, log: slog.Default().With("controller", "namespace")}, nil
}

// Start runs the controller until ctx ends and returns after its workers
// have exited.
func (c *Controller) Start(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.client, 0)
	inf := factory.Core().V1().Namespaces().Informer()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace", MetricsProvider: reconcile.MetricsProvider})
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			queue.Add(ns.Name)
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return err
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	defer queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	lister := factory.Core().V1().Namespaces().Lister()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			name, quit := queue.Get()
			if quit {
				return
			}
			ns, err := lister.Get(name)
			if err == nil && ns.DeletionTimestamp != nil {
				remaining, err := c.finalize(ctx, ns)
				switch {
				case err != nil:
					c.log.Warn("finalizing namespace", "namespace", name, "err", err)
					queue.AddRateLimited(name)
				case remaining:
					queue.AddAfter(name, time.Second)
				default:
					queue.Forget(name)
				}
			}
			queue.Done(name)
		}
	}()
	<-ctx.Done()
	queue.ShutDown()
	<-done
	return nil
}

// podsGVR is deleted before everything else.
var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// resource is one namespaced resource the controller empties.
type resource struct {
	gvr schema.GroupVersionResource
	// deleteCollection and list say which verbs it serves; without
	// deletecollection its objects are listed and deleted one by one.
	deleteCollection, list bool
}

// finalize deletes the namespace's content, pods first as upstream's
// OrderedNamespaceDeletion does: while any pod remains (pods shutting
// down, finalizers pending) nothing else is deleted, so that a pod never
// outlives the Secrets, ConfigMaps and ServiceAccounts it uses (KEP 5080).
// Each pass writes the namespace's deletion conditions, as upstream does.
// It reports whether objects remain; when none do, it removes the
// kubernetes finalizer.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) (bool, error) {
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return false, nil
	}
	lists, err := c.client.Discovery().ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return false, fmt.Errorf("discovery: %w", err)
	}
	r := &report{discoveryErr: err, remaining: map[schema.GroupVersionResource]int{}, finalizers: map[string]int{}}
	var resources []resource
	hasPods := false
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			r.parseErr = err
			continue
		}
		for _, ar := range list.APIResources {
			if !slices.Contains(ar.Verbs, "delete") || strings.Contains(ar.Name, "/") {
				continue
			}
			res := resource{gvr: gv.WithResource(ar.Name), deleteCollection: slices.Contains(ar.Verbs, "deletecollection"), list: slices.Contains(ar.Verbs, "list")}
			if res.gvr == podsGVR {
				hasPods = true
				resources = slices.Insert(resources, 0, res)
				continue
			}
			resources = append(resources, res)
		}
	}
	for i, res := range resources {
		c.empty(ctx, ns.Name, res, r)
		if i == 0 && hasPods && r.remaining[podsGVR] > 0 {
			break // the rest waits for the pods to be gone
		}
		r.countRemaining = true
	}
	if updated, err := c.writeConditions(ctx, ns, r); err != nil {
		c.log.Warn("updating namespace conditions", "namespace", ns.Name, "err", err)
	} else {
		ns = updated
	}
	if len(r.deleteErrs) > 0 {
		return false, errors.Join(r.deleteErrs...)
	}
	for _, n := range r.remaining {
		if n > 0 {
			return true, nil
		}
	}
	next := ns.DeepCopy()
	next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

// empty deletes every object of res in namespace and records in r what
// is left, and the finalizers holding it.
func (c *Controller) empty(ctx context.Context, namespace string, res resource, r *report) {
	ri := c.dynamic.Resource(res.gvr).Namespace(namespace)
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	fail := func(verb string, err error) {
		r.deleteErrs = append(r.deleteErrs, fmt.Errorf("%s %s: %w", verb, res.gvr.GroupResource(), err))
	}
	ignorable := func(err error) bool {
		return err == nil || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err)
	}
	switch {
	case res.deleteCollection:
		if err := ri.DeleteCollection(ctx, opts, metav1.ListOptions{}); !ignorable(err) {
			fail("deleting", err)
			return
		}
	case res.list:
		items, err := ri.List(ctx, metav1.ListOptions{})
		if !ignorable(err) {
			fail("listing", err)
			return
		}
		for _, it := range items.Items {
			if it.GetDeletionTimestamp() != nil {
				continue
			}
			if err := ri.Delete(ctx, it.GetName(), opts); !ignorable(err) {
				fail("deleting", err)
				return
			}
		}
	default:
		return
	}
	if !res.list {
		return
	}
	left, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		if !ignorable(err) {
			fail("listing", err)
		}
		return
	}
	if len(left.Items) == 0 {
		return
	}
	r.remaining[res.gvr] = len(left.Items)
	for _, it := range left.Items {
		for _, f := range it.GetFinalizers() {
			r.finalizers[f]++
		}
	}
}

// writeConditions updates the namespace's deletion conditions from r when
// they changed, and returns the namespace as it now is.
func (c *Controller) writeConditions(ctx context.Context, ns *corev1.Namespace, r *report) (*corev1.Namespace, error) {
	conds, changed := conditions(ns.Status.Conditions, r, metav1.Now())
	if !changed {
		return ns, nil
	}
	next := ns.DeepCopy()
	next.Status.Conditions = conds
	updated, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return updated, nil
}
