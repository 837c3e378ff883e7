package podautoscaler

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Reasons of the AbleToScale and ScalingLimited conditions, upstream's.
const (
	ReasonReadyForNewScale    = "ReadyForNewScale"
	ReasonScaleUpStabilized   = "ScaleUpStabilized"
	ReasonScaleDownStabilized = "ScaleDownStabilized"

	ReasonDesiredWithinRange = "DesiredWithinRange"
	ReasonTooFewReplicas     = "TooFewReplicas"
	ReasonTooManyReplicas    = "TooManyReplicas"
	ReasonScaleUpLimit       = "ScaleUpLimit"
	ReasonScaleDownLimit     = "ScaleDownLimit"
)

// The condition messages upstream sets with those reasons.
const (
	msgReadyForNewScale    = "recommended size matches current size"
	msgScaleUpStabilized   = "recent recommendations were lower than current one, applying the lowest recent recommendation"
	msgScaleDownStabilized = "recent recommendations were higher than current one, applying the highest recent recommendation"
	msgDesiredWithinRange  = "the desired count is within the acceptable range"
	msgTooFewReplicas      = "the desired replica count is less than the minimum replica count"
	msgTooManyReplicas     = "the desired replica count is more than the maximum replica count"
	msgScaleUpLimit        = "the desired replica count is increasing faster than the maximum scale rate"
	msgScaleDownLimit      = "the desired replica count is decreasing faster than the maximum scale rate"
)

// Proposal is what History.Normalize starts from.
type Proposal struct {
	// CurrentReplicas is the target's scale spec.replicas, within
	// [MinReplicas, MaxReplicas] (the controller moves a target outside
	// them to the bound without asking).
	CurrentReplicas int32
	// DesiredReplicas is the largest proposal over the HPA's metrics.
	DesiredReplicas int32
	// MinReplicas is spec.minReplicas, 1 when unset.
	MinReplicas int32
	MaxReplicas int32
	// Behavior is spec.behavior. Unset rules, windows, policies and
	// selectPolicy take upstream's defaults; a nil Behavior selects
	// upstream's rules for an HPA without one.
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
}

// Decision is the replica count to write and the conditions that explain
// it. The conditions carry type, status, reason and message; the
// controller sets their transition times.
type Decision struct {
	Replicas       int32
	AbleToScale    autoscalingv2.HorizontalPodAutoscalerCondition
	ScalingLimited autoscalingv2.HorizontalPodAutoscalerCondition
}

// History is what the autoscaler remembers of one HPA between syncs: its
// recent recommendations, before stabilization, and the scale changes made
// for it. It keeps an entry only while some stabilization window or policy
// period can reach it, so its size is bounded by the number of calls
// within the longest of those (an hour at most, by validation). It is not
// safe for concurrent use; the controller syncs one HPA at a time.
type History struct {
	downscaleWindow time.Duration
	recommendations []recommendation
	scaleUps        []scaleEvent
	scaleDowns      []scaleEvent
}

type recommendation struct {
	replicas int32
	at       time.Time
}

// scaleEvent is one scale change; change is its size, never negative.
type scaleEvent struct {
	change int32
	at     time.Time
}

// NewHistory returns an empty History for an HPA, with the controller's
// scale-down stabilization window for an HPA that sets none
// (Config.DownscaleStabilizationWindow).
func NewHistory(downscaleStabilizationWindow time.Duration) *History {
	return &History{downscaleWindow: downscaleStabilizationWindow}
}

// Seed records the current replica count as a recommendation made at now
// if the History holds none, which happens only before its first
// Normalize: a fresh controller thus holds a scale-down for a
// stabilization window instead of acting on its first sample, as
// upstream's does. The controller calls it at the start of every sync,
// before it knows whether the metrics will do.
func (h *History) Seed(current int32, now time.Time) {
	if len(h.recommendations) > 0 {
		return
	}
	h.recommendations = append(h.recommendations, recommendation{replicas: current, at: now})
}

// Normalize decides the replica count to write at now from p, records
// p.DesiredReplicas as a recommendation, and returns the decision.
//
// With a behavior, the stabilization windows bound the recommendation
// first (no lower than the lowest recommendation within the scale-up
// window, no higher than the highest within the scale-down window, and
// otherwise the current count), then the policies bound the change and
// min/maxReplicas the result. Without one, the recommendation is raised to
// the highest within the controller's window, then bounded by
// minReplicas, and by maxReplicas and max(2×current, 4).
func (h *History) Normalize(p Proposal, now time.Time) Decision {
	if p.Behavior == nil {
		return h.normalizeWithoutBehavior(p, now)
	}
	up, down := h.rules(p.Behavior)

	upLowest, downHighest := p.DesiredReplicas, p.DesiredReplicas
	upCutoff, downCutoff := now.Add(-up.window), now.Add(-down.window)
	for _, r := range h.recommendations {
		if r.at.After(upCutoff) {
			upLowest = min(upLowest, r.replicas)
		}
		if r.at.After(downCutoff) {
			downHighest = max(downHighest, r.replicas)
		}
	}
	stabilized := min(max(p.CurrentReplicas, upLowest), downHighest)
	h.recommend(p.DesiredReplicas, now, max(up.window, down.window))
	h.forgetScaleEvents(now, max(up.longestPeriod(), down.longestPeriod()))

	d := Decision{AbleToScale: ableToScale(ReasonReadyForNewScale, msgReadyForNewScale)}
	switch {
	case stabilized == p.DesiredReplicas:
	case p.DesiredReplicas >= p.CurrentReplicas:
		d.AbleToScale = ableToScale(ReasonScaleUpStabilized, msgScaleUpStabilized)
	default:
		d.AbleToScale = ableToScale(ReasonScaleDownStabilized, msgScaleDownStabilized)
	}

	d.Replicas, d.ScalingLimited = stabilized, scalingLimited(false, ReasonDesiredWithinRange, msgDesiredWithinRange)
	switch {
	case stabilized > p.CurrentReplicas:
		// A limit below the current count (changes in the period already
		// used it up) holds the count where it is.
		limit := max(h.scaleUpLimit(p.CurrentReplicas, up, now), p.CurrentReplicas)
		bound, reason, msg := p.MaxReplicas, ReasonTooManyReplicas, msgTooManyReplicas
		if limit < p.MaxReplicas {
			bound, reason, msg = limit, ReasonScaleUpLimit, msgScaleUpLimit
		}
		if stabilized > bound {
			d.Replicas, d.ScalingLimited = bound, scalingLimited(true, reason, msg)
		}
	case stabilized < p.CurrentReplicas:
		limit := min(h.scaleDownLimit(p.CurrentReplicas, down, now), p.CurrentReplicas)
		bound, reason, msg := p.MinReplicas, ReasonTooFewReplicas, msgTooFewReplicas
		if limit > p.MinReplicas {
			bound, reason, msg = limit, ReasonScaleDownLimit, msgScaleDownLimit
		}
		if stabilized < bound {
			d.Replicas, d.ScalingLimited = bound, scalingLimited(true, reason, msg)
		}
	}
	return d
}

// normalizeWithoutBehavior is upstream's normalization for an HPA without
// a behavior, which predates behaviors and differs from their defaults: it
// allows at most max(2×current, 4) replicas on a scale-up instead of
// max(current+4, 2×current) every 15s, and it checks minReplicas first.
func (h *History) normalizeWithoutBehavior(p Proposal, now time.Time) Decision {
	stabilized := p.DesiredReplicas
	cutoff := now.Add(-h.downscaleWindow)
	for _, r := range h.recommendations {
		if !r.at.Before(cutoff) {
			stabilized = max(stabilized, r.replicas)
		}
	}
	h.recommend(p.DesiredReplicas, now, h.downscaleWindow)

	d := Decision{AbleToScale: ableToScale(ReasonReadyForNewScale, msgReadyForNewScale)}
	if stabilized != p.DesiredReplicas {
		d.AbleToScale = ableToScale(ReasonScaleDownStabilized, msgScaleDownStabilized)
	}

	limit := int32(math.Max(2*float64(p.CurrentReplicas), 4))
	bound, reason, msg := p.MaxReplicas, ReasonTooManyReplicas, msgTooManyReplicas
	if p.MaxReplicas > limit {
		bound, reason, msg = limit, ReasonScaleUpLimit, msgScaleUpLimit
	}
	switch {
	case stabilized < p.MinReplicas:
		d.Replicas, d.ScalingLimited = p.MinReplicas, scalingLimited(true, ReasonTooFewReplicas, msgTooFewReplicas)
	case stabilized > bound:
		d.Replicas, d.ScalingLimited = bound, scalingLimited(true, reason, msg)
	default:
		d.Replicas, d.ScalingLimited = stabilized, scalingLimited(false, ReasonDesiredWithinRange, msgDesiredWithinRange)
	}
	return d
}

// RecordScale records that the controller scaled the target from one
// replica count to another at now. The policies of later decisions count
// it within their periods. Like upstream, it records nothing for an HPA
// without a behavior, whose rules need no events.
func (h *History) RecordScale(b *autoscalingv2.HorizontalPodAutoscalerBehavior, from, to int32, now time.Time) {
	if b == nil {
		return
	}
	switch {
	case to > from:
		h.scaleUps = append(h.scaleUps, scaleEvent{change: to - from, at: now})
	case to < from:
		h.scaleDowns = append(h.scaleDowns, scaleEvent{change: from - to, at: now})
	}
	up, down := h.rules(b)
	h.forgetScaleEvents(now, max(up.longestPeriod(), down.longestPeriod()))
}

// recommend records a recommendation made at now and forgets those older
// than the longest window that reads them.
func (h *History) recommend(replicas int32, now time.Time, window time.Duration) {
	cutoff := now.Add(-window)
	kept := h.recommendations[:0]
	for _, r := range h.recommendations {
		if !r.at.Before(cutoff) {
			kept = append(kept, r)
		}
	}
	h.recommendations = append(kept, recommendation{replicas: replicas, at: now})
}

// forgetScaleEvents forgets the scale events older than period. Both
// directions' limits count both directions' events, so period is the
// longest of all policies. (Upstream forgets an event only by reusing its
// slot for a newer one in the same direction.)
func (h *History) forgetScaleEvents(now time.Time, period time.Duration) {
	cutoff := now.Add(-period)
	keep := func(events []scaleEvent) []scaleEvent {
		kept := events[:0]
		for _, e := range events {
			if !e.at.Before(cutoff) {
				kept = append(kept, e)
			}
		}
		return kept
	}
	h.scaleUps, h.scaleDowns = keep(h.scaleUps), keep(h.scaleDowns)
}

// scaleUpLimit is the largest count p's scale-up policies allow: each
// policy allows its value (Pods) or percentage (Percent, rounded up) more
// than the count at the start of its period, and selectPolicy picks the
// largest (Max) or smallest (Min) of those; Disabled allows no change.
func (h *History) scaleUpLimit(current int32, r rules, now time.Time) int32 {
	if r.selectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	var limit int64 = math.MinInt32
	pick := func(a, b int64) int64 { return max(a, b) }
	if r.selectPolicy == autoscalingv2.MinChangePolicySelect {
		limit, pick = math.MaxInt32, func(a, b int64) int64 { return min(a, b) }
	}
	for _, p := range r.policies {
		start := h.periodStart(current, p.PeriodSeconds, now)
		var allowed int64
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			allowed = start + int64(p.Value)
		case autoscalingv2.PercentScalingPolicy:
			// Rounded up, or a small target could never grow.
			allowed = int64(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		default:
			continue
		}
		limit = pick(limit, allowed)
	}
	return clampInt32(limit)
}

// scaleDownLimit is the smallest count p's scale-down policies allow: each
// policy allows its value (Pods) or percentage (Percent, the remainder
// rounded down) fewer than the count at the start of its period, and
// selectPolicy picks the largest change (Max) or the smallest (Min);
// Disabled allows no change.
func (h *History) scaleDownLimit(current int32, r rules, now time.Time) int32 {
	if r.selectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	var limit int64 = math.MaxInt32
	pick := func(a, b int64) int64 { return min(a, b) }
	if r.selectPolicy == autoscalingv2.MinChangePolicySelect {
		limit, pick = math.MinInt32, func(a, b int64) int64 { return max(a, b) }
	}
	for _, p := range r.policies {
		start := h.periodStart(current, p.PeriodSeconds, now)
		var allowed int64
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			allowed = start - int64(p.Value)
		case autoscalingv2.PercentScalingPolicy:
			allowed = int64(float64(start) * (1 - float64(p.Value)/100))
		default:
			continue
		}
		limit = pick(limit, allowed)
	}
	return clampInt32(limit)
}

// periodStart is the replica count at the start of a policy period ending
// now: the current count less the scale-ups and plus the scale-downs made
// within it.
func (h *History) periodStart(current, periodSeconds int32, now time.Time) int64 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	start := int64(current)
	for _, e := range h.scaleUps {
		if e.at.After(cutoff) {
			start -= int64(e.change)
		}
	}
	for _, e := range h.scaleDowns {
		if e.at.After(cutoff) {
			start += int64(e.change)
		}
	}
	return start
}

// rules are one direction's scaling rules with every default filled in.
type rules struct {
	window       time.Duration
	selectPolicy autoscalingv2.ScalingPolicySelect
	policies     []autoscalingv2.HPAScalingPolicy
}

func (r rules) longestPeriod() time.Duration {
	var longest int32
	for _, p := range r.policies {
		longest = max(longest, p.PeriodSeconds)
	}
	return time.Duration(longest) * time.Second
}

// rules returns b's rules under upstream's defaults, the ones the API
// server fills in (see the registry's autoscaling defaulting) and the
// controller's scale-down window: scale up with no stabilization by at
// most max(4 pods, 100%) every 15s; scale down after the controller's
// window by up to 100% every 15s; selectPolicy Max.
func (h *History) rules(b *autoscalingv2.HorizontalPodAutoscalerBehavior) (up, down rules) {
	up = fill(b.ScaleUp, rules{
		selectPolicy: autoscalingv2.MaxChangePolicySelect,
		policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	})
	// Upstream reads the flag in whole seconds.
	down = fill(b.ScaleDown, rules{
		window:       time.Duration(int32(h.downscaleWindow.Seconds())) * time.Second,
		selectPolicy: autoscalingv2.MaxChangePolicySelect,
		policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	})
	return up, down
}

func fill(given *autoscalingv2.HPAScalingRules, def rules) rules {
	if given == nil {
		return def
	}
	if given.StabilizationWindowSeconds != nil {
		def.window = time.Duration(*given.StabilizationWindowSeconds) * time.Second
	}
	if given.SelectPolicy != nil {
		def.selectPolicy = *given.SelectPolicy
	}
	if given.Policies != nil {
		def.policies = given.Policies
	}
	return def
}

func clampInt32(v int64) int32 {
	return int32(max(math.MinInt32, min(math.MaxInt32, v)))
}

func ableToScale(reason, message string) autoscalingv2.HorizontalPodAutoscalerCondition {
	return autoscalingv2.HorizontalPodAutoscalerCondition{
		Type:    autoscalingv2.AbleToScale,
		Status:  corev1.ConditionTrue,
		Reason:  reason,
		Message: message,
	}
}

func scalingLimited(limited bool, reason, message string) autoscalingv2.HorizontalPodAutoscalerCondition {
	status := corev1.ConditionFalse
	if limited {
		status = corev1.ConditionTrue
	}
	return autoscalingv2.HorizontalPodAutoscalerCondition{
		Type:    autoscalingv2.ScalingLimited,
		Status:  status,
		Reason:  reason,
		Message: message,
	}
}
