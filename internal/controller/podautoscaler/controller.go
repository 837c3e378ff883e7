package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "horizontalpodautoscaling"

// Options tune the controller. Zero fields take upstream's defaults.
type Options struct {
	// SyncPeriod is how often each HPA is looked at
	// (--horizontal-pod-autoscaler-sync-period, default 15s).
	SyncPeriod time.Duration
	// Config is the decision tuning; each zero field takes its
	// DefaultConfig value (so a tolerance of exactly 0 cannot be asked
	// for: give a tiny one).
	Config Config
	// Workers is the number of HPAs synced at once
	// (--concurrent-horizontal-pod-autoscaler-syncs, default 5).
	Workers int
	// Clock tells the time (default the real clock); tests inject a fake.
	Clock clock.Clock
}

func (o Options) withDefaults() Options {
	def := DefaultConfig()
	if o.SyncPeriod <= 0 {
		o.SyncPeriod = 15 * time.Second
	}
	if o.Config.Tolerance == 0 {
		o.Config.Tolerance = def.Tolerance
	}
	if o.Config.CPUInitializationPeriod == 0 {
		o.Config.CPUInitializationPeriod = def.CPUInitializationPeriod
	}
	if o.Config.InitialReadinessDelay == 0 {
		o.Config.InitialReadinessDelay = def.InitialReadinessDelay
	}
	if o.Config.DownscaleStabilizationWindow == 0 {
		o.Config.DownscaleStabilizationWindow = def.DownscaleStabilizationWindow
	}
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Controller is the HorizontalPodAutoscaler controller.
type Controller struct {
	client   kubernetes.Interface
	metrics  MetricsClient
	scales   scale.ScalesGetter
	mapper   meta.RESTMapper
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options

	hpas   autoscalinglisters.HorizontalPodAutoscalerLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	queue  *reconcile.Queue

	mu        sync.Mutex
	histories map[string]*hpaHistory
}

// hpaHistory is the History of one HPA object; a new object of the same
// name (another UID) starts afresh.
type hpaHistory struct {
	uid types.UID
	*History
}

// NewForConfig builds the controller with its clients made from cfg: the
// resource metrics API client, and the scale client over a RESTMapper
// read from discovery.
func NewForConfig(cfg *rest.Config, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Controller, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s: rest config is required", name)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: discovery client: %w", name, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(dc))
	// scale.NewForConfig writes to the config it is given.
	scales, err := scale.NewForConfig(rest.CopyConfig(cfg), mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(dc))
	if err != nil {
		return nil, fmt.Errorf("%s: scale client: %w", name, err)
	}
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics client: %w", name, err)
	}
	return New(client, NewMetricsClient(mc), scales, mapper, factory, recorder, opts)
}

// New builds the controller and registers its HPA and Pod informers on
// factory. mapper resolves spec.scaleTargetRef's kind to the resource
// whose scale subresource scales reads and writes; when it can be reset
// (meta.ResettableRESTMapper), a kind it does not know makes it read
// discovery again.
func New(client kubernetes.Interface, metrics MetricsClient, scales scale.ScalesGetter, mapper meta.RESTMapper,
	factory informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Controller, error) {
	if client == nil || metrics == nil || scales == nil || mapper == nil || factory == nil {
		return nil, fmt.Errorf("%s: client, metrics, scales, mapper and informer factory are required", name)
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{
		client:    client,
		metrics:   metrics,
		scales:    scales,
		mapper:    mapper,
		recorder:  recorder,
		log:       slog.Default().With("controller", name),
		opts:      opts.withDefaults(),
		histories: map[string]*hpaHistory{},
	}
	c.queue = reconcile.New(name, c.sync)

	hpaInf := factory.Autoscaling().V2().HorizontalPodAutoscalers()
	podInf := factory.Core().V1().Pods()
	c.hpas, c.pods = hpaInf.Lister(), podInf.Lister()
	c.synced = []cache.InformerSynced{hpaInf.Informer().HasSynced, podInf.Informer().HasSynced}
	if _, err := hpaInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.queue.Enqueue,
		// Our own status writes come back as updates; syncing on them
		// would loop at the speed of the API. A spec change is synced at
		// once, anything else at the next period.
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*autoscalingv2.HorizontalPodAutoscaler)
			n, ok2 := cur.(*autoscalingv2.HorizontalPodAutoscaler)
			if ok1 && ok2 && apiequality.Semantic.DeepEqual(o.Spec, n.Spec) {
				return
			}
			c.queue.Enqueue(cur)
		},
		DeleteFunc: c.queue.Enqueue,
	}); err != nil {
		return nil, fmt.Errorf("%s: hpa handler: %w", name, err)
	}
	return c, nil
}

// Start waits for the HPA and Pod caches to sync, syncs HPAs until ctx
// ends, and returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.opts.Workers, "syncPeriod", c.opts.SyncPeriod)
	return c.queue.Run(ctx, c.opts.Workers, c.synced...)
}

// historyFor returns the History of the HPA object key and uid name.
func (c *Controller) historyFor(key string, uid types.UID) *History {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.histories[key]
	if !ok || h.uid != uid {
		h = &hpaHistory{uid: uid, History: NewHistory(c.opts.Config.DownscaleStabilizationWindow)}
		c.histories[key] = h
	}
	return h.History
}

func (c *Controller) hasHistory(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.histories[key]
	return ok
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.histories, key)
}

// sync looks at one HPA: it decides and writes the target's scale and
// then the HPA's status, and queues the HPA again a sync period later. A
// failure to read the target or its metrics is reported in the status
// and events and waits for the next period, as upstream; a failed write
// is returned, so the queue retries it sooner.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, n, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.hpas.HorizontalPodAutoscalers(ns).Get(n)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("hpa %s: %w", key, err)
	}
	c.queue.AddAfter(key, c.opts.SyncPeriod)

	hpa := shared.DeepCopy()
	err = c.reconcile(ctx, key, hpa)
	gen := hpa.Generation
	hpa.Status.ObservedGeneration = &gen
	if apiequality.Semantic.DeepEqual(shared.Status, hpa.Status) {
		return err
	}
	if _, uerr := c.client.AutoscalingV2().HorizontalPodAutoscalers(ns).UpdateStatus(ctx, hpa, metav1.UpdateOptions{}); uerr != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedUpdateStatus", uerr.Error())
		err = errors.Join(err, fmt.Errorf("hpa %s: update status: %w", key, uerr))
	}
	return err
}

// reconcile decides the target's replica count, writes it, and fills in
// hpa.Status (but for observedGeneration). It returns only the errors
// worth a retry before the next period: a failed scale update.
func (c *Controller) reconcile(ctx context.Context, key string, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	now := c.opts.Clock.Now()
	st := &hpa.Status
	cond := func(t autoscalingv2.HorizontalPodAutoscalerConditionType, s corev1.ConditionStatus, reason, msg string) {
		setCondition(st, autoscalingv2.HorizontalPodAutoscalerCondition{Type: t, Status: s, Reason: reason, Message: msg}, now)
	}
	ref := hpa.Spec.ScaleTargetRef
	target := fmt.Sprintf("%s/%s/%s", ref.Kind, hpa.Namespace, ref.Name)
	log := c.log.With("hpa", key, "target", target)

	gr, sc, err := c.getScale(ctx, hpa)
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		cond(autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale",
			"the HPA controller was unable to get the target's current scale: "+err.Error())
		log.Info("failed to get scale", "err", err)
		return nil
	}
	cond(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale",
		"the HPA controller was able to get the target's current scale")

	current := sc.Spec.Replicas
	h := c.historyFor(key, hpa.UID)
	h.Seed(current, now)

	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}
	var (
		desired  int32
		reason   string
		statuses []autoscalingv2.MetricStatus
		rescale  = true
	)
	switch {
	case current == 0 && minReplicas != 0:
		rescale = false
		cond(autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled",
			"scaling is disabled since the replica count of the target is zero")
	case current > hpa.Spec.MaxReplicas:
		desired, reason = hpa.Spec.MaxReplicas, "Current number of replicas above Spec.MaxReplicas"
	case current < minReplicas:
		desired, reason = minReplicas, "Current number of replicas below Spec.MinReplicas"
	default:
		p, ok, err := c.metricsReplicas(ctx, hpa, sc, now, cond)
		statuses = p.statuses
		if !ok {
			st.CurrentReplicas, st.CurrentMetrics = current, statuses
			c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", err.Error())
			log.Info("failed to compute desired replicas", "err", err)
			return nil
		}
		if err != nil {
			// Some metric failed, but the others call for at least the
			// current count: they are acted on.
			log.Info("some metrics failed", "err", err)
		}
		switch {
		case p.replicas > current:
			reason = p.metric + " above target"
		case p.replicas < current:
			reason = "All metrics below target"
		}
		d := h.Normalize(Proposal{
			CurrentReplicas: current,
			DesiredReplicas: p.replicas,
			MinReplicas:     minReplicas,
			MaxReplicas:     hpa.Spec.MaxReplicas,
			Behavior:        hpa.Spec.Behavior,
		}, now)
		setCondition(st, d.AbleToScale, now)
		setCondition(st, d.ScalingLimited, now)
		desired = d.Replicas
		rescale = desired != current
	}

	if rescale {
		sc.Spec.Replicas = desired
		if _, err := c.scales.Scales(hpa.Namespace).Update(ctx, gr, sc, metav1.UpdateOptions{}); err != nil {
			c.recorder.Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, reason, err)
			cond(autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale",
				"the HPA controller was unable to update the target scale: "+err.Error())
			st.CurrentReplicas, st.CurrentMetrics = current, statuses
			return fmt.Errorf("hpa %s: rescale %s: %w", key, target, err)
		}
		cond(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale",
			fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired))
		c.recorder.Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, reason)
		h.RecordScale(hpa.Spec.Behavior, current, desired, now)
		log.Info("rescaled", "from", current, "to", desired, "reason", reason)
		t := metav1.NewTime(now)
		st.LastScaleTime = &t
	} else {
		desired = current
	}
	st.CurrentReplicas, st.DesiredReplicas, st.CurrentMetrics = current, desired, statuses
	return nil
}

// getScale reads the scale subresource of hpa's target, trying each
// resource its kind maps to. A kind the mapper does not know makes it
// read discovery again once (a CRD may have been added since).
func (c *Controller) getScale(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler) (schema.GroupResource, *autoscalingv1.Scale, error) {
	ref := hpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupResource{}, nil, err
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
	mappings, err := c.mapper.RESTMappings(gk)
	if meta.IsNoMatchError(err) {
		if r, ok := c.mapper.(meta.ResettableRESTMapper); ok {
			r.Reset()
			mappings, err = c.mapper.RESTMappings(gk)
		}
	}
	if err != nil {
		return schema.GroupResource{}, nil, err
	}
	first := fmt.Errorf("no resource for kind %s", gk)
	for i, m := range mappings {
		gr := m.Resource.GroupResource()
		sc, err := c.scales.Scales(hpa.Namespace).Get(ctx, gr, ref.Name, metav1.GetOptions{})
		if err == nil {
			return gr, sc, nil
		}
		if i == 0 {
			first = err
		}
	}
	return schema.GroupResource{}, nil, first
}

// proposal is the largest replica count the HPA's metrics propose, the
// metric that proposes it, and the status of each metric that worked.
type proposal struct {
	replicas int32
	metric   string
	statuses []autoscalingv2.MetricStatus
}

// condFunc sets one of the HPA's conditions.
type condFunc func(t autoscalingv2.HorizontalPodAutoscalerConditionType, s corev1.ConditionStatus, reason, msg string)

// defaultMetrics are what the API defaults an HPA without metrics to:
// 80% cpu utilization.
var defaultMetrics = []autoscalingv2.MetricSpec{{
	Type: autoscalingv2.ResourceMetricSourceType,
	Resource: &autoscalingv2.ResourceMetricSource{
		Name:   corev1.ResourceCPU,
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo[int32](80)},
	},
}}

func ptrTo[T any](v T) *T { return &v }

// metricsReplicas computes every metric's proposal and returns the
// largest, with upstream's rules for failures: err describes the failed
// metrics, if any, and ok is false when the proposal is not to be used,
// because every metric failed or because the rest propose fewer replicas
// than the target has (a failed metric might have asked for more). It
// sets the ScalingActive condition.
func (c *Controller) metricsReplicas(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, sc *autoscalingv1.Scale,
	now time.Time, cond condFunc) (p proposal, ok bool, err error) {
	selector, err := c.selector(hpa, sc.Status.Selector, cond)
	if err != nil {
		return proposal{}, false, err
	}
	pods, err := c.pods.Pods(hpa.Namespace).List(selector)
	if err != nil {
		return proposal{}, false, fmt.Errorf("unable to get pods while calculating replica count: %w", err)
	}
	specs := hpa.Spec.Metrics
	if len(specs) == 0 {
		specs = defaultMetrics
	}
	in := metricInput{hpa: hpa, current: sc.Spec.Replicas, selector: selector, pods: pods, now: now}
	var (
		first  *metricError
		failed int
		have   bool
	)
	for _, spec := range specs {
		r, merr := c.metricReplicas(ctx, &in, spec)
		if merr != nil {
			c.recorder.Event(hpa, corev1.EventTypeWarning, merr.reason, merr.cause.Error())
			if first == nil {
				first = merr
			}
			failed++
			continue
		}
		p.statuses = append(p.statuses, r.status)
		if !have || r.replicas > p.replicas {
			p.replicas, p.metric, have = r.replicas, r.metric, true
		}
	}
	if failed > 0 {
		err = fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", failed, len(specs), first.err)
		if failed == len(specs) || p.replicas < sc.Spec.Replicas {
			cond(autoscalingv2.ScalingActive, corev1.ConditionFalse, first.reason,
				"the HPA was unable to compute the replica count: "+first.cause.Error())
			return p, false, err
		}
	}
	cond(autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound",
		"the HPA was able to successfully calculate a replica count from "+p.metric)
	return p, true, err
}

// selector parses the target's scale selector, which the pods and their
// metrics are found by.
func (c *Controller) selector(hpa *autoscalingv2.HorizontalPodAutoscaler, s string, cond condFunc) (labels.Selector, error) {
	if s == "" {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "SelectorRequired", "selector is required")
		cond(autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector")
		return nil, errors.New("selector is required")
	}
	sel, err := labels.Parse(s)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		c.recorder.Event(hpa, corev1.EventTypeWarning, "InvalidSelector", msg)
		cond(autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", msg)
		return nil, errors.New(msg)
	}
	return sel, nil
}

// metricInput is what every metric of one sync is computed from. The
// pods' usage is read from the metrics API once per sync, when the first
// resource metric needs it (upstream reads it once per metric).
type metricInput struct {
	hpa      *autoscalingv2.HorizontalPodAutoscaler
	current  int32
	selector labels.Selector
	pods     []*corev1.Pod
	now      time.Time

	fetched  bool
	usage    []PodUsage
	usageErr error
}

func (c *Controller) podUsage(ctx context.Context, in *metricInput) ([]PodUsage, error) {
	if !in.fetched {
		in.fetched = true
		in.usage, in.usageErr = c.metrics.PodUsage(ctx, in.hpa.Namespace, in.selector)
		switch {
		case in.usageErr != nil:
			in.usageErr = fmt.Errorf("unable to fetch metrics from resource metrics API: %w", in.usageErr)
		case len(in.usage) == 0:
			in.usageErr = errNoUsage
		}
	}
	return in.usage, in.usageErr
}

// metricResult is what one metric proposes.
type metricResult struct {
	replicas int32
	// metric names the metric in the SuccessfulRescale reason and the
	// ValidMetricFound message, in upstream's words.
	metric string
	status autoscalingv2.MetricStatus
}

// metricError is a failed metric: reason is that of its event and of the
// ScalingActive condition, cause their message, err its part in the
// FailedComputeMetricsReplicas event.
type metricError struct {
	reason string
	cause  error
	err    error
}

// metricReplicas computes one metric's proposal.
//
// Pods, Object and External metrics are not served: skiff has no custom
// or external metrics API. Such a metric fails the way upstream's does
// when custom.metrics.k8s.io (or external.metrics.k8s.io) is not
// registered, with the same reasons (FailedGetPodsMetric,
// FailedGetObjectMetric, FailedGetExternalMetric), so ScalingActive turns
// False with a message that names the missing API, and the other metrics
// still count.
func (c *Controller) metricReplicas(ctx context.Context, in *metricInput, spec autoscalingv2.MetricSpec) (metricResult, *metricError) {
	ns := in.hpa.Namespace
	switch spec.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		if m, ok := ResourceMetricFor(spec); ok {
			return c.resourceReplicas(ctx, in, m)
		}
	case autoscalingv2.PodsMetricSourceType:
		if spec.Pods != nil {
			cause := fmt.Errorf("unable to get metric %s: unable to fetch metrics from custom metrics API: %w", spec.Pods.Metric.Name, ErrCustomMetricsNotServed)
			return metricResult{}, &metricError{reason: "FailedGetPodsMetric", cause: cause, err: fmt.Errorf("failed to get pods metric value: %w", cause)}
		}
	case autoscalingv2.ObjectMetricSourceType:
		if o := spec.Object; o != nil {
			// Upstream's message puts its arguments out of order; this one
			// reads as it was meant to.
			cause := fmt.Errorf("unable to get metric %s on %s %s/%s: unable to fetch metrics from custom metrics API: %w",
				o.Metric.Name, o.DescribedObject.Kind, ns, o.DescribedObject.Name, ErrCustomMetricsNotServed)
			return metricResult{}, &metricError{reason: "FailedGetObjectMetric", cause: cause, err: fmt.Errorf("failed to get object metric value: %w", cause)}
		}
	case autoscalingv2.ExternalMetricSourceType:
		if e := spec.External; e != nil {
			sel := "<none>"
			if e.Metric.Selector != nil {
				sel = metav1.FormatLabelSelector(e.Metric.Selector)
			}
			cause := fmt.Errorf("unable to get external metric %s/%s/%s: unable to fetch metrics from external metrics API: %w",
				ns, e.Metric.Name, sel, ErrExternalMetricsNotServed)
			return metricResult{}, &metricError{reason: "FailedGetExternalMetric", cause: cause,
				err: fmt.Errorf("failed to get %s external metric value: %w", e.Metric.Name, cause)}
		}
	default:
		err := fmt.Errorf("unknown metric source type %q", spec.Type)
		return metricResult{}, &metricError{reason: "InvalidMetricSourceType", cause: err, err: err}
	}
	// Validation rejects a metric without the source its type names.
	err := fmt.Errorf("metric source of type %q is missing", spec.Type)
	return metricResult{}, &metricError{reason: "InvalidMetricSourceType", cause: err, err: err}
}

// resourceReplicas computes the proposal of a Resource or
// ContainerResource metric, with upstream's messages.
func (c *Controller) resourceReplicas(ctx context.Context, in *metricInput, m ResourceMetric) (metricResult, *metricError) {
	container := m.Container != ""
	fail := func(cause error) (metricResult, *metricError) {
		if container {
			return metricResult{}, &metricError{reason: "FailedGetContainerResourceMetric", cause: cause,
				err: fmt.Errorf("failed to get %s container metric value: %w", m.Container, cause)}
		}
		return metricResult{}, &metricError{reason: "FailedGetResourceMetric", cause: cause,
			err: fmt.Errorf("failed to get %s resource metric value: %w", m.Name, cause)}
	}
	var what string
	switch {
	case m.Target.AverageValue != nil:
		what = "usage"
	case m.Target.AverageUtilization != nil:
		what = "utilization"
	default:
		// ResourceReplicas says what is wrong with the target.
		_, err := c.opts.Config.ResourceReplicas(ResourceInput{Metric: m}, in.now)
		return fail(err)
	}
	wrap := func(err error) error { return fmt.Errorf("failed to get %s %s: %w", m.Name, what, err) }

	usage, err := c.podUsage(ctx, in)
	if err == nil {
		var s map[string]Sample
		if s, err = samples(usage, m, in.hpa.Namespace); err == nil {
			var rec ResourceRecommendation
			rec, err = c.opts.Config.ResourceReplicas(ResourceInput{
				CurrentReplicas: in.current,
				Metric:          m,
				Pods:            in.pods,
				Usage:           s,
				Tolerances:      c.opts.Config.Tolerances(in.hpa.Spec.Behavior),
			}, in.now)
			if err != nil {
				return fail(wrap(err))
			}
			return resourceResult(m, rec), nil
		}
	}
	return fail(wrap(fmt.Errorf("unable to get metrics for resource %s: %w", m.Name, err)))
}

// resourceResult is a resource metric's proposal, with the name upstream
// gives the metric and the status it reports.
func resourceResult(m ResourceMetric, rec ResourceRecommendation) metricResult {
	current := autoscalingv2.MetricValueStatus{
		AverageUtilization: rec.Utilization,
		AverageValue:       resource.NewMilliQuantity(rec.AverageValue, resource.DecimalSI),
	}
	r := metricResult{replicas: rec.Replicas, metric: fmt.Sprintf("%s resource", m.Name)}
	if m.Container == "" {
		r.status = autoscalingv2.MetricStatus{
			Type:     autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: m.Name, Current: current},
		}
		if rec.Utilization != nil {
			r.metric = fmt.Sprintf("%s resource utilization (percentage of request)", m.Name)
		}
		return r
	}
	r.status = autoscalingv2.MetricStatus{
		Type:              autoscalingv2.ContainerResourceMetricSourceType,
		ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{Name: m.Name, Container: m.Container, Current: current},
	}
	if rec.Utilization != nil {
		r.metric = fmt.Sprintf("%s container resource utilization (percentage of request)", m.Name)
	}
	return r
}

// setCondition sets the condition of c's type in st to c, keeping its
// lastTransitionTime unless its status changes (or it is new), when it
// becomes now.
func setCondition(st *autoscalingv2.HorizontalPodAutoscalerStatus, c autoscalingv2.HorizontalPodAutoscalerCondition, now time.Time) {
	for i := range st.Conditions {
		old := &st.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		*old = c
		return
	}
	c.LastTransitionTime = metav1.NewTime(now)
	st.Conditions = append(st.Conditions, c)
}
