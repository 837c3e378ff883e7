// Package cronjob is the CronJob controller (batch/v1): at each time a
// CronJob's schedule (standard cron, in spec.timeZone) comes due it creates
// a Job named "<cronjob>-<minutes since epoch>" from jobTemplate, honouring
// suspend, startingDeadlineSeconds and concurrencyPolicy (Allow, Forbid,
// Replace); it keeps status.active, lastScheduleTime and lastSuccessfulTime,
// deletes finished Jobs beyond successfulJobsHistoryLimit and
// failedJobsHistoryLimit, and requeues each CronJob for its next schedule
// time. Time comes from an injectable clock.
//
// Differs from upstream: missed schedules are not counted, so there is no
// TooManyMissedTimes warning (only the most recent missed time runs, as
// upstream), and Jobs are found by controller reference only.
package cronjob

import (
	"context"
	"fmt"
	"log/slog"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "cronjob"

// indexByController is this package's index on the shared Job informer.
const indexByController = "cronjob.skiff.io/controller-uid"

var gvk = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Options tune the controller.
type Options struct {
	// Workers is the number of CronJobs reconciled at once (default 5).
	Workers int
	// Clock tells the time (default the real clock); tests inject a fake.
	Clock clock.Clock
}

// Controller is the CronJob controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int
	clock    clock.Clock

	cronJobs       batchlisters.CronJobLister
	cronJobsSynced cache.InformerSynced
	jobs           cache.Indexer
	jobsSynced     cache.InformerSynced
	queue          *reconcile.Queue
}

// New builds the controller and registers its CronJob and Job informers
// (with a Job index by controller UID) and handlers on factory.
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

	cjInf := factory.Batch().V1().CronJobs()
	c.cronJobs = cjInf.Lister()
	c.cronJobsSynced = cjInf.Informer().HasSynced
	if _, err := cjInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: cronjob handler: %w", name, err)
	}

	jobInf := factory.Batch().V1().Jobs().Informer()
	if err := jobInf.AddIndexers(cache.Indexers{indexByController: indexJobByController}); err != nil {
		return nil, fmt.Errorf("%s: job indexer: %w", name, err)
	}
	c.jobs = jobInf.GetIndexer()
	c.jobsSynced = jobInf.HasSynced
	enqueueOwner := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		j, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == gvk.Kind && ref.APIVersion == gvk.GroupVersion().String() {
			c.queue.Add(j.Namespace + "/" + ref.Name)
		}
	}
	if _, err := jobInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueOwner,
		UpdateFunc: func(_, obj any) { enqueueOwner(obj) },
		DeleteFunc: enqueueOwner,
	}); err != nil {
		return nil, fmt.Errorf("%s: job handler: %w", name, err)
	}
	return c, nil
}

// Start waits for the caches to sync, reconciles CronJobs until ctx ends,
// and returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.cronJobsSynced, c.jobsSynced)
}

func indexJobByController(obj any) ([]string, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(j); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}
