package podautoscaler

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Errors callers may branch on; the texts are upstream's, which users see
// in the ScalingActive condition.
var (
	// ErrNoPods: the target's selector matched no pod.
	ErrNoPods = errors.New("no pods returned by selector while calculating replica count")
	// ErrNoMetrics: no ready pod has a sample.
	ErrNoMetrics = errors.New("did not receive metrics for targeted pods (pods might be unready)")

	// ErrCustomMetricsNotServed fails every Pods and Object metric: skiff
	// serves no custom metrics API. The text is the one upstream's client
	// gives when that API is not registered.
	ErrCustomMetricsNotServed = errors.New("no custom metrics API (custom.metrics.k8s.io) registered")
	// ErrExternalMetricsNotServed fails every External metric: skiff
	// serves no external metrics API. (Upstream's client reports the 404
	// of the missing API; this says which API is missing.)
	ErrExternalMetricsNotServed = errors.New("no external metrics API (external.metrics.k8s.io) registered")

	// errNoUsage: the resource metrics API knows none of the target's pods.
	errNoUsage = errors.New("no metrics returned from resource metrics API")
)

// Sample is one pod's usage of a metric's resource, as the resource
// metrics API (metrics.k8s.io) reports it.
type Sample struct {
	// Value is the usage in milli-units (resource.Quantity.MilliValue):
	// millicores for cpu, millibytes for memory. For a Resource metric it
	// is the sum over the pod's containers (upstream treats a pod with a
	// container lacking the resource as having no sample); for a
	// ContainerResource metric it is that container's usage.
	Value int64
	// Timestamp is when the sample was taken, the end of its window.
	Timestamp time.Time
	// Window is how long the usage was averaged over.
	Window time.Duration
}

// ResourceMetric is one Resource or ContainerResource metric of an HPA.
type ResourceMetric struct {
	Name corev1.ResourceName
	// Container is the container a ContainerResource metric watches; empty
	// for a Resource metric, which watches the whole pod.
	Container string
	Target    autoscalingv2.MetricTarget
}

// ResourceMetricFor returns the metric spec describes, and false when
// spec is not a Resource or ContainerResource metric.
func ResourceMetricFor(spec autoscalingv2.MetricSpec) (ResourceMetric, bool) {
	switch {
	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		return ResourceMetric{Name: spec.Resource.Name, Target: spec.Resource.Target}, true
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		r := spec.ContainerResource
		return ResourceMetric{Name: r.Name, Container: r.Container, Target: r.Target}, true
	}
	return ResourceMetric{}, false
}

// ResourceInput is the snapshot one resource metric is decided from.
type ResourceInput struct {
	// CurrentReplicas is the target's scale spec.replicas.
	CurrentReplicas int32
	Metric          ResourceMetric
	// Pods are the pods the target's scale selector matches.
	Pods []*corev1.Pod
	// Usage holds the pods' samples by pod name; a pod without one is
	// "missing", a sample without a pod is dropped.
	Usage map[string]Sample
	// Tolerances are the HPA's, from Config.Tolerances.
	Tolerances Tolerances
}

// ResourceRecommendation is what one resource metric proposes.
type ResourceRecommendation struct {
	// Replicas is the proposed replica count.
	Replicas int32
	// Utilization is the ready pods' usage as a percentage of their
	// requests, for a Utilization target; nil for an AverageValue target.
	Utilization *int32
	// AverageValue is the ready pods' mean usage in milli-units.
	AverageValue int64
	// Timestamp is that of the oldest sample the ratio was computed from.
	Timestamp time.Time
}

// ResourceReplicas proposes a replica count for one resource metric at
// time now, with upstream's rules (see the package doc). Status values
// (Utilization, AverageValue) are those of the ready pods alone, even when
// the proposal also counted missing and not-yet-ready pods, as upstream
// reports them.
//
// Its errors are ErrNoPods, ErrNoMetrics, or a description of a target
// that cannot be used or a pod without a request for the resource.
func (c Config) ResourceReplicas(in ResourceInput, now time.Time) (ResourceRecommendation, error) {
	m := in.Metric
	// A target with both fields set is an AverageValue one, as upstream
	// reads it.
	var target int64
	utilization := false
	switch t := m.Target; {
	case t.AverageValue != nil:
		target = t.AverageValue.MilliValue()
	case t.AverageUtilization != nil:
		target, utilization = int64(*t.AverageUtilization), true
	default:
		return ResourceRecommendation{}, errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
	}
	if target <= 0 {
		return ResourceRecommendation{}, fmt.Errorf("invalid resource metric source: target for %s must be positive", m.Name)
	}
	if len(in.Pods) == 0 {
		return ResourceRecommendation{}, ErrNoPods
	}

	g := c.groupPods(in.Pods, in.Usage, m.Name, now)
	if len(g.ready) == 0 {
		return ResourceRecommendation{}, ErrNoMetrics
	}

	// A Utilization target needs the request of every pod that takes part,
	// even of one whose usage does not count yet.
	requests := map[string]int64{}
	if utilization {
		for _, group := range [][]*corev1.Pod{g.ready, g.missing, g.unready} {
			for _, pod := range group {
				r, err := podRequest(pod, m.Name, m.Container)
				if err != nil {
					return ResourceRecommendation{}, err
				}
				requests[pod.Name] = r
			}
		}
	}

	rec := ResourceRecommendation{Timestamp: in.Usage[g.ready[0].Name].Timestamp}
	counted := make([]share, 0, len(g.ready)+len(g.missing)+len(g.unready))
	for _, pod := range g.ready {
		s := in.Usage[pod.Name]
		counted = append(counted, share{usage: s.Value, request: requests[pod.Name]})
		if s.Timestamp.Before(rec.Timestamp) {
			rec.Timestamp = s.Timestamp
		}
	}
	ratio, percent, average, err := usageRatio(counted, target, utilization)
	if err != nil {
		return ResourceRecommendation{}, fmt.Errorf("%s utilization: %w", m.Name, err)
	}
	if utilization {
		rec.Utilization = &percent
	}
	rec.AverageValue = average
	current := in.CurrentReplicas
	tol := in.Tolerances

	scaleUpWithUnready := len(g.unready) > 0 && ratio > 1
	if !scaleUpWithUnready && len(g.missing) == 0 {
		rec.Replicas = current
		if !tol.within(ratio) {
			rec.Replicas = ceilReplicas(ratio * float64(len(g.ready)))
		}
		return rec, nil
	}

	// Recompute conservatively. On a scale-down a missing pod is taken to
	// use what it may: all of its request, or the target utilization when
	// that is over 100%, or the target value. On a scale-up it, and every
	// not-yet-ready pod, is taken to use nothing. At a ratio of exactly 1
	// missing pods stay out, as upstream leaves them.
	for _, pod := range g.missing {
		r := requests[pod.Name]
		switch {
		case ratio < 1 && utilization:
			counted = append(counted, share{usage: percentOf(r, max(100, target)), request: r})
		case ratio < 1:
			counted = append(counted, share{usage: target})
		case ratio > 1:
			counted = append(counted, share{usage: 0, request: r})
		}
	}
	if scaleUpWithUnready {
		for _, pod := range g.unready {
			counted = append(counted, share{usage: 0, request: requests[pod.Name]})
		}
	}
	newRatio, _, _, err := usageRatio(counted, target, utilization)
	if err != nil {
		return ResourceRecommendation{}, fmt.Errorf("%s utilization: %w", m.Name, err)
	}

	rec.Replicas = current
	if tol.within(newRatio) || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		// Too small a change, or one the conservative numbers turn around.
		return rec, nil
	}
	proposed := ceilReplicas(newRatio * float64(len(counted)))
	if (newRatio < 1 && proposed > current) || (newRatio > 1 && proposed < current) {
		// Counting more pods turned the direction around.
		return rec, nil
	}
	rec.Replicas = proposed
	return rec, nil
}

// share is one counted pod's usage and, for a utilization target, its
// request, both in milli-units.
type share struct {
	usage, request int64
}

// podGroups sorts the pods that take part in a decision; pods being
// deleted and terminated pods take no part.
type podGroups struct {
	// ready pods have a sample that counts.
	ready []*corev1.Pod
	// missing pods are running without a sample.
	missing []*corev1.Pod
	// unready pods are pending or, for cpu, not yet ready; their samples,
	// if any, are not used.
	unready []*corev1.Pod
}

func (c Config) groupPods(pods []*corev1.Pod, usage map[string]Sample, resource corev1.ResourceName, now time.Time) podGroups {
	var g podGroups
	for _, pod := range pods {
		switch {
		case pod.DeletionTimestamp != nil, pod.Status.Phase == corev1.PodFailed, pod.Status.Phase == corev1.PodSucceeded:
			continue
		case pod.Status.Phase == corev1.PodPending:
			g.unready = append(g.unready, pod)
			continue
		}
		s, ok := usage[pod.Name]
		switch {
		case !ok:
			g.missing = append(g.missing, pod)
		case resource == corev1.ResourceCPU && c.cpuUnready(pod, s, now):
			g.unready = append(g.unready, pod)
		default:
			g.ready = append(g.ready, pod)
		}
	}
	return g
}

// cpuUnready reports whether pod's cpu sample s is to be set aside: the
// pod has no Ready condition or start time; or it is within the
// initialization period and either unready or s does not cover a full
// window since its readiness last changed; or, past that period, it is
// unready and has never been ready (it turned unready within the initial
// readiness delay of starting). Upstream cannot tell when a pod first
// became ready, hence these proxies.
func (c Config) cpuUnready(pod *corev1.Pod, s Sample, now time.Time) bool {
	var ready *corev1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			ready = &pod.Status.Conditions[i]
			break
		}
	}
	if ready == nil || pod.Status.StartTime == nil {
		return true
	}
	start := pod.Status.StartTime.Time
	changed := ready.LastTransitionTime.Time
	if start.Add(c.CPUInitializationPeriod).After(now) {
		return ready.Status == corev1.ConditionFalse || s.Timestamp.Before(changed.Add(s.Window))
	}
	return ready.Status == corev1.ConditionFalse && start.Add(c.InitialReadinessDelay).After(changed)
}

// podRequest returns pod's request for resource in milli-units: that of
// container when one is named, else the pod-level request when the pod
// sets one for resource, else the sum over its containers and sidecars
// (restartable init containers). Every container counted must request the
// resource.
//
// Upstream, a pod with pod-level requests for other resources only is
// measured against its effective (init-container-aware) request; skiff
// sums its containers instead.
func podRequest(pod *corev1.Pod, resource corev1.ResourceName, container string) (int64, error) {
	if container == "" && pod.Spec.Resources != nil {
		if q, ok := pod.Spec.Resources.Requests[resource]; ok {
			return q.MilliValue(), nil
		}
	}
	containers := slices.Clone(pod.Spec.Containers)
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, c)
		}
	}
	var sum int64
	for _, c := range containers {
		if container != "" && c.Name != container {
			continue
		}
		q, ok := c.Resources.Requests[resource]
		if !ok {
			return 0, fmt.Errorf("missing request for %s in container %s of Pod %s", resource, c.Name, pod.Name)
		}
		if container != "" {
			return q.MilliValue(), nil
		}
		sum += q.MilliValue()
	}
	if container != "" {
		return 0, fmt.Errorf("container %s not found in Pod %s", container, pod.Name)
	}
	return sum, nil
}

// usageRatio returns the ratio of the shares' usage to target, the
// utilization (their usage as a percentage of their requests, truncated,
// for a utilization target) and their mean usage (truncated). The sums are
// exact, since memory in millibytes over many pods overflows an int64. The
// ratio is formed from the truncated utilization or mean, as upstream
// forms it, so that proposals match upstream's to the replica.
func usageRatio(shares []share, target int64, utilization bool) (ratio float64, percent int32, average int64, err error) {
	total, requested := new(big.Int), new(big.Int)
	for _, s := range shares {
		total.Add(total, big.NewInt(s.usage))
		requested.Add(requested, big.NewInt(s.request))
	}
	average = new(big.Int).Quo(total, big.NewInt(int64(len(shares)))).Int64()
	if !utilization {
		return float64(average) / float64(target), 0, average, nil
	}
	if requested.Sign() <= 0 {
		return 0, 0, 0, errors.New("the requests of the pods with samples sum to zero")
	}
	p := new(big.Int).Mul(total, big.NewInt(100))
	p.Quo(p, requested)
	percent = math.MaxInt32
	if p.IsInt64() && p.Int64() < math.MaxInt32 {
		percent = int32(p.Int64())
	}
	return float64(percent) / float64(target), percent, average, nil
}

// percentOf returns pct% of v, truncated, saturating at the largest int64.
func percentOf(v, pct int64) int64 {
	p := new(big.Int).Mul(big.NewInt(v), big.NewInt(pct))
	p.Quo(p, big.NewInt(100))
	if !p.IsInt64() {
		return math.MaxInt64
	}
	return p.Int64()
}

// ceilReplicas rounds a proposal up to a whole replica, saturating at the
// largest replica count.
func ceilReplicas(f float64) int32 {
	f = math.Ceil(f)
	if f >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(f)
}
