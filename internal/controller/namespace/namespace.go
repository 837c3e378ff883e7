// Package namespace is the namespace controller: when a namespace is being
// deleted it deletes everything in it, then removes the "kubernetes"
// finalizer so that the API server deletes the namespace itself. It is a
// client of the API like any other controller.
package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

// finalize deletes the namespace's content. It reports whether objects
// remain (pods shutting down, finalizers pending); when none do, it removes
// the kubernetes finalizer.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) (bool, error) {
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return false, nil
	}
	lists, err := c.client.Discovery().ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return false, fmt.Errorf("discovery: %w", err)
	}
	remaining := false
	bg := metav1.DeletePropagationBackground
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "deletecollection") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			ri := c.dynamic.Resource(gv.WithResource(r.Name)).Namespace(ns.Name)
			err := ri.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
				return false, fmt.Errorf("deleting %s: %w", r.Name, err)
			}
			left, err := ri.List(ctx, metav1.ListOptions{Limit: 1})
			if err != nil {
				return false, fmt.Errorf("listing %s: %w", r.Name, err)
			}
			if len(left.Items) > 0 {
				remaining = true
			}
		}
	}
	if remaining {
		return true, nil
	}
	next := ns.DeepCopy()
	next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return false, err
}
