package flowcontrol

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Run follows the stored FlowSchemas and PriorityLevelConfigurations
// through client (the server's loopback: the controller is a client of
// the API like any other) and reconfigures c whenever they change; it
// writes each FlowSchema's Dangling condition. It blocks until ctx ends
// and returns after its informers have stopped. Until the informers have
// synced, the mandatory configuration is in force.
func (c *Controller) Run(ctx context.Context, client kubernetes.Interface) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	defer factory.Shutdown()
	fcv1 := factory.Flowcontrol().V1()
	plInformer, fsInformer := fcv1.PriorityLevelConfigurations(), fcv1.FlowSchemas()
	changed := make(chan struct{}, 1)
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(changed) },
		UpdateFunc: func(any, any) { signal(changed) },
		DeleteFunc: func(any) { signal(changed) },
	}
	if _, err := plInformer.Informer().AddEventHandler(poke); err != nil {
		return fmt.Errorf("flowcontrol informer: %w", err)
	}
	if _, err := fsInformer.Informer().AddEventHandler(poke); err != nil {
		return fmt.Errorf("flowcontrol informer: %w", err)
	}
	factory.StartWithContext(ctx)
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return ctx.Err()
		}
	}
	signal(changed)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		pls, err := plInformer.Lister().List(labels.Everything())
		if err != nil {
			return err
		}
		fss, err := fsInformer.Lister().List(labels.Everything())
		if err != nil {
			return err
		}
		for _, fs := range c.Configure(pls, fss) {
			_, err := client.FlowcontrolV1().FlowSchemas().UpdateStatus(ctx, fs, metav1.UpdateOptions{FieldManager: "api-priority-and-fairness-config-consumer-v1"})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
				// A conflict or a deletion brings an event that
				// reconsiders it; anything else is logged and retried
				// with the next change.
				c.cfg.Logger.Warn("flowschema status not written", "flowschema", fs.Name, "err", err)
			}
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
