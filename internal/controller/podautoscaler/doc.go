// Package podautoscaler decides what a HorizontalPodAutoscaler
// (autoscaling/v2) scales its target to, with upstream Kubernetes'
// semantics. It holds only the decisions, as pure functions of a snapshot
// and the time; it makes no API calls, watches nothing and starts no
// goroutines.
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
// # What it leaves to the controller
//
// The controller lists the target's pods and fetches their samples from
// the resource metrics API (metrics.k8s.io), reads and writes the scale
// subresource, and keeps one History per HPA (dropping it when the HPA is
// deleted). On every sync it calls History.Seed with the current replica
// count before anything else; it skips metrics when the target is scaled
// to zero (ScalingActive False, ScalingDisabled) or lies outside
// [minReplicas, maxReplicas] (it then scales straight to the bound); it
// takes the largest proposal over the metrics and skips a scale-down when
// some metric failed; it calls History.RecordScale after each successful
// scale update; and it writes the status: metrics, conditions with their
// transition times, lastScaleTime, and the events.
//
// Pods, Object and External metrics, scale to zero (HPAScaleToZero) and
// the metrics API clients are not here yet.
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
//     where upstream keeps them and reuses their slots.
package podautoscaler
