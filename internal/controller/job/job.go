// Package job is the Job controller (batch/v1): it runs a Job's pods to
// completion. It creates pods from the template up to parallelism (and, for
// an Indexed Job, one pod per completion index with the index in an
// annotation, a label, the hostname and JOB_COMPLETION_INDEX), counts
// succeeded and failed pods against completions and backoffLimit, enforces
// activeDeadlineSeconds and suspend, and reports status with upstream's
// conditions: SuccessCriteriaMet then Complete, FailureTarget then Failed
// (the terminal condition once no pod of the Job is still running).
//
// Differs from upstream: skiff counts finished pods from the pods still
// present (status.succeeded/failed never go down, so a deleted finished pod
// is not forgotten, but a pod deleted before the controller saw it finish
// is not counted) instead of tracking them with the
// batch.kubernetes.io/job-tracking finalizer and uncountedTerminatedPods.
// podFailurePolicy, successPolicy, backoffLimitPerIndex and
// podReplacementPolicy are not implemented, and orphan pods matching a
// manual selector are not adopted.
package job

import (
	"context"
	"fmt"
	"log/slog"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/podset"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "job"

var gvk = batchv1.SchemeGroupVersion.WithKind("Job")

// Options tune the controller.
type Options struct {
	// Workers is the number of Jobs reconciled at once (default 5).
	Workers int
	// Clock tells the time (default the real clock); tests inject a fake.
	Clock clock.Clock
}

// Controller is the Job controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int
	clock    clock.Clock

	jobs       batchlisters.JobLister
	jobsSynced cache.InformerSynced
	pods       cache.Indexer
	podsSynced cache.InformerSynced

	exp   *podset.Expectations
	queue *reconcile.Queue
}

// New builds the controller and registers its Job and Pod informers (with a
// pod index by controller UID) and event handlers on factory. The caller
// starts the factory; Start waits for it to sync.
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
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      slog.Default().With("controller", name),
		workers:  o.Workers,
		clock:    o.Clock,
		exp:      podset.NewExpectations(),
	}
	c.queue = reconcile.New(name, c.sync)

	jobInf := factory.Batch().V1().Jobs()
	c.jobs = jobInf.Lister()
	c.jobsSynced = jobInf.Informer().HasSynced
	if _, err := jobInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: job handler: %w", name, err)
	}

	podInf := factory.Core().V1().Pods().Informer()
	if err := podset.AddControllerUIDIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexer: %w", name, err)
	}
	c.pods = podInf.GetIndexer()
	c.podsSynced = podInf.HasSynced
	if _, err := podInf.AddEventHandler(podset.Handler(gvk, c.exp, c.queue.Add)); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}
	return c, nil
}

// Start waits for the caches to sync, reconciles Jobs until ctx ends, and
// returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.jobsSynced, c.podsSynced)
}
