// Package job is the Job controller (batch/v1): it runs a Job's pods to
// completion. It creates pods from the template up to parallelism (and, for
// an Indexed Job, one pod per completion index with the index in an
// annotation, a label, the hostname and JOB_COMPLETION_INDEX), counts
// succeeded and failed pods against completions and backoffLimit, enforces
// activeDeadlineSeconds and suspend, and reports status with upstream's
// conditions: SuccessCriteriaMet then Complete, FailureTarget then Failed
// (the terminal condition once no pod of the Job is still running).
//
// As upstream it also implements: the pod failure back-off (after n
// failures since the last success no pod is created for 10 s × 2^(n-1),
// capped at 10 min, from the last failure; per index with
// backoffLimitPerIndex), the Job requeued for when it ends; podFailurePolicy
// (FailJob, Ignore, Count and FailIndex rules on exit codes and pod
// conditions); backoffLimitPerIndex and maxFailedIndexes (failure counts
// in the job-index-failure-count annotations, status.failedIndexes);
// successPolicy; podReplacementPolicy; and adoption of orphan pods the
// selector matches and release of owned pods it no longer matches. A pod
// deleted before it succeeded counts as failed, as upstream counts it
// (with podReplacementPolicy Failed only once it has failed), unless the
// controller deleted it itself.
//
// Differs from upstream: skiff does not put the
// batch.kubernetes.io/job-tracking finalizer on pods nor use
// status.uncountedTerminatedPods. It counts each finished pod once from an
// in-memory ledger per Job (see ledger), which also keeps the final state
// of pods deleted before they were counted. A restarted controller cannot
// tell which finished pods status already counts: it takes the larger of
// status and the pods still present, so a pod that finished and was
// deleted while no controller ran may go uncounted, and pods that finished
// meanwhile count only beyond what status holds. The back-off is then
// seeded from the pods still present (upstream starts it from nothing).
// Likewise, with backoffLimitPerIndex an index's failure count outlives
// the deletion of its last failed pod only while the controller runs
// (upstream holds that pod with the finalizer until its replacement
// exists).
package job

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	// PodFailureBackoff and MaxPodFailureBackoff are the pod failure
	// back-off's first step and cap (default DefaultPodFailureBackoff
	// and MaxPodFailureBackoff, upstream's); tests shorten them.
	PodFailureBackoff    time.Duration
	MaxPodFailureBackoff time.Duration
}

// Controller is the Job controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int
	clock    clock.Clock
	// podFailureBackoff and maxPodFailureBackoff: see Options.
	podFailureBackoff    time.Duration
	maxPodFailureBackoff time.Duration

	jobs       batchlisters.JobLister
	jobsSynced cache.InformerSynced
	pods       cache.Indexer
	podsSynced cache.InformerSynced

	exp     *podset.Expectations
	ledgers ledgers
	queue   *reconcile.Queue
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
	if o.PodFailureBackoff <= 0 {
		o.PodFailureBackoff = DefaultPodFailureBackoff
	}
	if o.MaxPodFailureBackoff <= 0 {
		o.MaxPodFailureBackoff = MaxPodFailureBackoff
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

		podFailureBackoff:    o.PodFailureBackoff,
		maxPodFailureBackoff: o.MaxPodFailureBackoff,
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
	if err := podset.AddOrphanIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexer: %w", name, err)
	}
	c.pods = podInf.GetIndexer()
	c.podsSynced = podInf.HasSynced
	if _, err := podInf.AddEventHandler(c.podHandler()); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}
	return c, nil
}

// podHandler queues a pod's Job on every event (podset.Handler, which also
// counts the pod against expectations), hands the final state of a deleted
// pod to its Job's ledger so a failure is counted even when the pod is
// gone, and queues the Jobs that may adopt an orphan.
func (c *Controller) podHandler() cache.ResourceEventHandlerFuncs {
	owned := podset.Handler(gvk, c.exp, c.queue.Add)
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			owned.OnAdd(obj, false)
			if p, ok := obj.(*corev1.Pod); ok && metav1.GetControllerOf(p) == nil {
				c.enqueueMatching(p)
			}
		},
		UpdateFunc: func(old, obj any) {
			owned.OnUpdate(old, obj)
			o, ok1 := old.(*corev1.Pod)
			p, ok2 := obj.(*corev1.Pod)
			if ok1 && ok2 && metav1.GetControllerOf(p) == nil &&
				(metav1.GetControllerOf(o) != nil || !labels.Equals(o.Labels, p.Labels)) {
				c.enqueueMatching(p)
			}
		},
		DeleteFunc: func(obj any) {
			c.podDeleted(obj)
			owned.OnDelete(obj)
		},
	}
}

// podDeleted gives a deleted pod's final state to its Job's ledger.
func (c *Controller) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok || p == nil {
		return
	}
	key, ok := podset.OwnerKey(p, gvk)
	if !ok {
		return
	}
	if led := c.ledgers.lookup(key, metav1.GetControllerOf(p).UID); led != nil {
		led.podDeleted(p)
	}
}

// Start waits for the caches to sync, reconciles Jobs until ctx ends, and
// returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.jobsSynced, c.podsSynced)
}
