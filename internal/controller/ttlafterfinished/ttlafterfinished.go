// Package ttlafterfinished is the TTL-after-finished controller: it deletes
// a Job (with propagation Background, so the garbage collector removes its
// pods) spec.ttlSecondsAfterFinished after the Job finished, that is after
// its completionTime or, lacking one, the lastTransitionTime of its Complete
// or Failed condition. A Job that is not yet due is requeued for the moment
// it expires.
package ttlafterfinished

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "ttl-after-finished"

// Options tune the controller.
type Options struct {
	// Workers is the number of Jobs handled at once (default 5).
	Workers int
	// Clock tells the time (default the real clock); tests inject a fake.
	Clock clock.Clock
}

// Controller is the TTL-after-finished controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int
	clock    clock.Clock

	jobs   batchlisters.JobLister
	synced cache.InformerSynced
	queue  *reconcile.Queue
}

// New builds the controller and registers its Job informer handler on
// factory. Only Jobs with ttlSecondsAfterFinished are queued.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", name), workers: o.Workers, clock: o.Clock}
	c.queue = reconcile.New(name, c.sync)
	inf := factory.Batch().V1().Jobs()
	c.jobs = inf.Lister()
	c.synced = inf.Informer().HasSynced
	enqueue := func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.Spec.TTLSecondsAfterFinished != nil && j.DeletionTimestamp == nil {
			c.queue.Enqueue(j)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: job handler: %w", name, err)
	}
	return c, nil
}

// Start waits for the Job cache to sync, handles Jobs until ctx ends, and
// returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced)
}

// expiry returns when a finished Job with a TTL expires: ttl after its
// completionTime, or after its Complete/Failed condition's
// lastTransitionTime when it has no completionTime (a failed Job). ok is
// false when the Job has no TTL or no True Complete or Failed condition.
func expiry(j *batchv1.Job) (at time.Time, ok bool) {
	if j == nil || j.Spec.TTLSecondsAfterFinished == nil {
		return time.Time{}, false
	}
	var finishedAt time.Time
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			finishedAt, ok = c.LastTransitionTime.Time, true
			break
		}
	}
	if !ok {
		return time.Time{}, false
	}
	if j.Status.CompletionTime != nil {
		finishedAt = j.Status.CompletionTime.Time
	}
	return finishedAt.Add(time.Duration(*j.Spec.TTLSecondsAfterFinished) * time.Second), true
}

// sync deletes the Job if its TTL has passed, or requeues it for when it
// will have.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, n, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	j, err := c.jobs.Jobs(ns).Get(n)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", key, err)
	}
	if j.DeletionTimestamp != nil {
		return nil
	}
	at, ok := expiry(j)
	if !ok {
		return nil
	}
	if left := at.Sub(c.clock.Now()); left > 0 {
		c.queue.AddAfter(key, left)
		return nil
	}
	// The preconditions make the delete fail (409) if the Job changed since
	// the cache saw it, e.g. a new TTL; the retry then judges the new one.
	uid, rv := j.UID, j.ResourceVersion
	policy := metav1.DeletePropagationBackground
	err = c.client.BatchV1().Jobs(ns).Delete(ctx, n, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("job %s: delete: %w", key, err)
	}
	c.log.Info("deleted finished job", "job", key)
	return nil
}
