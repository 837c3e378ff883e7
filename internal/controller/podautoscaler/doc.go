// Package podautoscaler is the HorizontalPodAutoscaler (autoscaling/v2)
// controller, with upstream Kubernetes' semantics. Its decisions (what a
// target scales to) are pure functions of a snapshot and the time, in
// replicas.go and behavior.go, which make no API calls, watch nothing and
// start no goroutines; the controller in controller.go does the I/O
// around them.
//
// # What it decides
//
// Config.ResourceReplicas turns one Resource or ContainerResource metric
// (cpu or memory, with a Utilization or an AverageValue target) into a
// replica count: it sets aside pods that are being deleted or have
// terminated, treats pending pods and, for cpu, pods still initializing as
// not yet ready, and pods without a sample as missing; it computes the
// usage ratio from the ready pods, keeps the current count within the
// tolerance, and otherwise recomputes the ratio conservatively (missing
// pods at 0 on a scale-up and at the target on a scale-down, not-yet-ready
// pods at 0 on a scale-up) before it proposes ceil(ratio × pods). It also
// returns the current utilization and average value for the HPA's status.
//
// History.Normalize turns the largest proposal over an HPA's metrics into
// the replica count to write, with the HPA's behavior: the scale-up and
// scale-down stabilization windows over recent recommendations, the Pods
// and Percent policies over their periods with the scale changes already
// made in them, selectPolicy Max, Min or Disabled, and minReplicas and
// maxReplicas. It returns the AbleToScale and ScalingLimited conditions
// upstream sets on the way. An HPA without a behavior gets upstream's
// older rules (downscale stabilization only, and at most
// max(2×current, 4) replicas on a scale-up), not the defaulted behavior,
// as upstream does.
//
// A History is the per-HPA memory those rules need. It keeps only entries
// that a window or a period can still reach.
//
// # The controller
//
// Controller (controller.go) is the HorizontalPodAutoscaler controller
// around those decisions, upstream's "horizontalpodautoscaling". It syncs
// every HPA when it is added or its spec changes, and then every
// SyncPeriod (15s); its own status writes do not wake it. Per sync it:
//
//   - reads the target's scale subresource, resolving
//     spec.scaleTargetRef's kind through a RESTMapper (read again from
//     discovery when the kind is unknown), and sets AbleToScale
//     (SucceededGetScale, or FailedGetScale with an event);
//   - calls History.Seed with the current replica count (one History per
//     HPA object, dropped when the HPA is deleted);
//   - leaves a target scaled to zero alone (ScalingActive False,
//     ScalingDisabled), and moves one outside [minReplicas, maxReplicas]
//     straight to the bound without reading metrics;
//   - otherwise lists the pods the scale's selector matches (from the
//     shared pod informer), reads their usage once from the resource
//     metrics API (MetricsClient), computes each metric's proposal with
//     Config.ResourceReplicas, and takes the largest; a failed metric
//     sets ScalingActive False with its reason and records an event, and
//     blocks only a scale-down (the others still count); it then calls
//     History.Normalize for AbleToScale and ScalingLimited;
//   - writes the scale (SuccessfulRescale or FailedRescale events, with
//     upstream's reasons: "cpu resource utilization (percentage of
//     request) above target", "All metrics below target", ...), calls
//     History.RecordScale, and sets lastScaleTime;
//   - writes the status (currentReplicas, desiredReplicas,
//     currentMetrics, conditions, observedGeneration) only when it
//     changed. A condition's lastTransitionTime moves only when its
//     status does.
//
// Failures to read are reported in the status and wait for the next
// period, as upstream; a failed scale or status write is retried sooner
// by the queue.
//
// Pods, Object and External metrics are not served: skiff has no custom
// or external metrics API. Such a metric fails as upstream's does when
// those APIs are not registered (FailedGetPodsMetric,
// FailedGetObjectMetric, FailedGetExternalMetric). Scale to zero
// (HPAScaleToZero) is not here, nor upstream's check that two HPAs do
// not select the same pods (AmbiguousSelector).
//
// # Where skiff differs from upstream
//
// The differences are small and deliberate; each is noted where it is
// made:
//   - a pod that is being deleted or has terminated needs no request for
//     the metric's resource: upstream fails the metric when any listed pod
//     lacks one, even a pod it then ignores;
//   - samples for pods that are not in the list are dropped: upstream
//     counts them in an AverageValue average;
//   - the returned timestamp is that of the oldest sample used: upstream
//     returns the first one the metrics API listed;
//   - a pod with pod-level requests for other resources only is measured
//     against the sum of its containers' requests, where upstream takes
//     its effective request;
//   - a History forgets entries no window or period can reach any more,
//     where upstream keeps them and reuses their slots;
//   - the controller reads the pods' usage once per sync, where upstream
//     reads it once per resource metric;
//   - status.currentMetrics holds the metrics that worked: upstream
//     leaves an empty entry in place of each failed one;
//   - a spec change is synced at once, where upstream waits for the
//     sync period.
package podautoscaler
