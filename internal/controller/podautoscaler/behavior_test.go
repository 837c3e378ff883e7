package podautoscaler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

func podsPolicy(value, periodSeconds int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: value, PeriodSeconds: periodSeconds}
}

func percentPolicy(value, periodSeconds int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: value, PeriodSeconds: periodSeconds}
}

// scalingRules returns rules with the given policies; window < 0 and
// selectPolicy "" leave those fields unset.
func scalingRules(window int32, sel autoscalingv2.ScalingPolicySelect, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	r := &autoscalingv2.HPAScalingRules{Policies: policies}
	if window >= 0 {
		r.StabilizationWindowSeconds = &window
	}
	if sel != "" {
		r.SelectPolicy = &sel
	}
	return r
}

func scaleUp(r *autoscalingv2.HPAScalingRules) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: r}
}

func scaleDown(r *autoscalingv2.HPAScalingRules) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: r}
}

// past is an entry of a History made ago before t0: a recommendation of
// n replicas, or a scale change of n replicas.
type past struct {
	n   int32
	ago time.Duration
}

func history(recs, ups, downs []past) *History {
	h := NewHistory(5 * time.Minute)
	for _, r := range recs {
		h.recommendations = append(h.recommendations, recommendation{replicas: r.n, at: t0.Add(-r.ago)})
	}
	for _, e := range ups {
		h.scaleUps = append(h.scaleUps, scaleEvent{change: e.n, at: t0.Add(-e.ago)})
	}
	for _, e := range downs {
		h.scaleDowns = append(h.scaleDowns, scaleEvent{change: e.n, at: t0.Add(-e.ago)})
	}
	return h
}

// Each case says how its number follows from the rules. Behaviors are
// as stored before defaulting: unset fields take upstream's defaults.
func TestNormalize(t *testing.T) {
	const (
		ready      = ReasonReadyForNewScale
		upStable   = ReasonScaleUpStabilized
		downStable = ReasonScaleDownStabilized
		within     = ReasonDesiredWithinRange
	)
	maxChange, minChange := autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect
	disabled := autoscalingv2.DisabledPolicySelect

	tests := []struct {
		name                      string
		behavior                  *autoscalingv2.HorizontalPodAutoscalerBehavior
		minReplicas, maxReplicas  int32
		current, desired          int32
		recs, ups, downs          []past
		want                      int32
		wantAble, wantLimitReason string
	}{
		{
			// Defaults: max(1+4 pods, 1×2) = 5.
			name:        "default behavior scales up by max(4 pods, 100%)",
			behavior:    &autoscalingv2.HorizontalPodAutoscalerBehavior{},
			minReplicas: 1, maxReplicas: 20, current: 1, desired: 10,
			want: 5, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// No behavior: max(2×1, 4) = 4, not the defaults' 5.
			name:        "without behavior a scale-up is limited to max(2×current, 4)",
			minReplicas: 1, maxReplicas: 20, current: 1, desired: 10,
			want: 4, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// 8 was recommended 100s ago, within the 300s window.
			name:        "without behavior a scale-down is stabilized",
			minReplicas: 1, maxReplicas: 20, current: 10, desired: 5,
			recs: []past{{8, 100 * time.Second}, {9, 400 * time.Second}},
			want: 8, wantAble: downStable, wantLimitReason: within,
		},
		{
			// minReplicas is checked before anything else.
			name:        "without behavior minReplicas bounds a scale-down",
			minReplicas: 2, maxReplicas: 20, current: 5, desired: 1,
			want: 2, wantAble: ready, wantLimitReason: ReasonTooFewReplicas,
		},
		{
			// max(2×6, 4) = 12 is above maxReplicas 10.
			name:        "without behavior maxReplicas bounds a scale-up",
			minReplicas: 1, maxReplicas: 10, current: 6, desired: 20,
			want: 10, wantAble: ready, wantLimitReason: ReasonTooManyReplicas,
		},
		{
			// 2 replicas were added 30s ago, so the 60s period started at
			// 3: 3+3 = 6.
			name:        "Pods policy counts scale-ups within its period",
			behavior:    scaleUp(scalingRules(-1, "", podsPolicy(3, 60))),
			minReplicas: 1, maxReplicas: 100, current: 5, desired: 20,
			ups:  []past{{2, 30 * time.Second}},
			want: 6, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// The scale-up 90s ago is outside the period: 5+3 = 8.
			name:        "Pods policy forgets scale-ups before its period",
			behavior:    scaleUp(scalingRules(-1, "", podsPolicy(3, 60))),
			minReplicas: 1, maxReplicas: 100, current: 5, desired: 20,
			ups:  []past{{2, 90 * time.Second}},
			want: 8, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// ceil(5 × 1.5) = 8.
			name:        "Percent policy scale-up rounds up",
			behavior:    scaleUp(scalingRules(-1, "", percentPolicy(50, 60))),
			minReplicas: 1, maxReplicas: 100, current: 5, desired: 20,
			want: 8, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// The period started at 10-4 = 6: ceil(6 × 1.5) = 9 < 10, so
			// the count stays.
			name:        "scale-ups within the period can use the whole limit",
			behavior:    scaleUp(scalingRules(-1, "", percentPolicy(50, 60))),
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 20,
			ups:  []past{{4, 20 * time.Second}},
			want: 10, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// 3 replicas removed 30s ago: the period started at 9, 9+4 = 13.
			name:        "scale-downs within the period count toward the scale-up limit",
			behavior:    scaleUp(scalingRules(-1, "", podsPolicy(4, 60))),
			minReplicas: 1, maxReplicas: 100, current: 6, desired: 20,
			downs: []past{{3, 30 * time.Second}},
			want:  13, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// max(10+4, 10×2) = 20.
			name:        "selectPolicy Max picks the larger scale-up",
			behavior:    scaleUp(scalingRules(-1, maxChange, podsPolicy(4, 60), percentPolicy(100, 60))),
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 30,
			want: 20, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// min(10+4, 10×2) = 14.
			name:        "selectPolicy Min picks the smaller scale-up",
			behavior:    scaleUp(scalingRules(-1, minChange, podsPolicy(4, 60), percentPolicy(100, 60))),
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 30,
			want: 14, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			name:        "selectPolicy Disabled holds a scale-up",
			behavior:    scaleUp(scalingRules(-1, disabled)),
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 30,
			want: 10, wantAble: ready, wantLimitReason: ReasonScaleUpLimit,
		},
		{
			// The documented example: from 80, 4 pods leaves 76, 10%
			// leaves 72; the larger change wins.
			name:        "selectPolicy Max picks the larger scale-down",
			behavior:    scaleDown(scalingRules(0, "", podsPolicy(4, 60), percentPolicy(10, 60))),
			minReplicas: 1, maxReplicas: 100, current: 80, desired: 10,
			want: 72, wantAble: ready, wantLimitReason: ReasonScaleDownLimit,
		},
		{
			// 8 removed 30s ago: the period started at 80, which allows
			// 72, so the count stays.
			name:        "scale-downs within the period can use the whole limit",
			behavior:    scaleDown(scalingRules(0, "", podsPolicy(4, 60), percentPolicy(10, 60))),
			minReplicas: 1, maxReplicas: 100, current: 72, desired: 10,
			downs: []past{{8, 30 * time.Second}},
			want:  72, wantAble: ready, wantLimitReason: ReasonScaleDownLimit,
		},
		{
			// The documented example's next step, once the period is
			// over: 72 less 7.2 rounded up is 64 (4 pods would leave 68).
			name:        "Percent policy scale-down rounds the remainder down",
			behavior:    scaleDown(scalingRules(0, "", podsPolicy(4, 60), percentPolicy(10, 60))),
			minReplicas: 1, maxReplicas: 100, current: 72, desired: 10,
			downs: []past{{8, 61 * time.Second}},
			want:  64, wantAble: ready, wantLimitReason: ReasonScaleDownLimit,
		},
		{
			// max(80×0.9, 80-5) = 75.
			name:        "selectPolicy Min picks the smaller scale-down",
			behavior:    scaleDown(scalingRules(0, minChange, percentPolicy(10, 60), podsPolicy(5, 60))),
			minReplicas: 1, maxReplicas: 100, current: 80, desired: 10,
			want: 75, wantAble: ready, wantLimitReason: ReasonScaleDownLimit,
		},
		{
			name:        "selectPolicy Disabled holds a scale-down",
			behavior:    scaleDown(scalingRules(-1, disabled)),
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 2,
			want: 10, wantAble: ready, wantLimitReason: ReasonScaleDownLimit,
		},
		{
			// The default window is the controller's 300s: the highest
			// recommendation in it is 8 (9 is 400s old). 100% per 15s lets
			// 10 go to 8.
			name:        "default scale-down window applies the highest recent recommendation",
			behavior:    &autoscalingv2.HorizontalPodAutoscalerBehavior{},
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 4,
			recs: []past{{8, 200 * time.Second}, {6, 100 * time.Second}, {9, 400 * time.Second}},
			want: 8, wantAble: downStable, wantLimitReason: within,
		},
		{
			// In a 60s window only the 7 of 30s ago counts.
			name:        "set scale-down window",
			behavior:    scaleDown(scalingRules(60, "")),
			minReplicas: 1, maxReplicas: 100, current: 10, desired: 4,
			recs: []past{{8, 200 * time.Second}, {7, 30 * time.Second}},
			want: 7, wantAble: downStable, wantLimitReason: within,
		},
		{
			// The lowest recommendation in 120s is 6 (3 is 200s old); the
			// defaults' 5+4 = 9 allows it.
			name:        "scale-up window applies the lowest recent recommendation",
			behavior:    scaleUp(scalingRules(120, "")),
			minReplicas: 1, maxReplicas: 100, current: 5, desired: 15,
			recs: []past{{6, 60 * time.Second}, {12, 90 * time.Second}, {3, 200 * time.Second}},
			want: 6, wantAble: upStable, wantLimitReason: within,
		},
		{
			// The defaults allow max(8+4, 16) = 16, above maxReplicas.
			name:        "maxReplicas bounds a scale-up",
			behavior:    &autoscalingv2.HorizontalPodAutoscalerBehavior{},
			minReplicas: 1, maxReplicas: 10, current: 8, desired: 20,
			want: 10, wantAble: ready, wantLimitReason: ReasonTooManyReplicas,
		},
		{
			// 100% per 15s allows 0, below minReplicas.
			name:        "minReplicas bounds a scale-down",
			behavior:    scaleDown(scalingRules(0, "")),
			minReplicas: 3, maxReplicas: 10, current: 5, desired: 1,
			want: 3, wantAble: ready, wantLimitReason: ReasonTooFewReplicas,
		},
		{
			// 5+4 = 9 allows 7.
			name:        "desired within range",
			behavior:    &autoscalingv2.HorizontalPodAutoscalerBehavior{},
			minReplicas: 1, maxReplicas: 10, current: 5, desired: 7,
			want: 7, wantAble: ready, wantLimitReason: within,
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := history(tc.recs, tc.ups, tc.downs)
			d := h.Normalize(Proposal{
				CurrentReplicas: tc.current,
				DesiredReplicas: tc.desired,
				MinReplicas:     tc.minReplicas,
				MaxReplicas:     tc.maxReplicas,
				Behavior:        tc.behavior,
			}, t0)
			if d.Replicas != tc.want {
				t.Errorf("replicas = %d, want %d", d.Replicas, tc.want)
			}
			if d.AbleToScale.Reason != tc.wantAble || d.AbleToScale.Status != corev1.ConditionTrue {
				t.Errorf("AbleToScale = %s/%s, want True/%s", d.AbleToScale.Status, d.AbleToScale.Reason, tc.wantAble)
			}
			wantLimited := corev1.ConditionTrue
			if tc.wantLimitReason == ReasonDesiredWithinRange {
				wantLimited = corev1.ConditionFalse
			}
			if d.ScalingLimited.Reason != tc.wantLimitReason || d.ScalingLimited.Status != wantLimited {
				t.Errorf("ScalingLimited = %s/%s, want %s/%s", d.ScalingLimited.Status, d.ScalingLimited.Reason, wantLimited, tc.wantLimitReason)
			}
		})
	}
}

func TestNormalizeConditions(t *testing.T) {
	h := history([]past{{8, 100 * time.Second}}, nil, nil)
	got := h.Normalize(Proposal{CurrentReplicas: 10, DesiredReplicas: 5, MinReplicas: 1, MaxReplicas: 20,
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{}}, t0)
	want := Decision{
		Replicas: 8,
		AbleToScale: autoscalingv2.HorizontalPodAutoscalerCondition{
			Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Reason: "ScaleDownStabilized",
			Message: "recent recommendations were higher than current one, applying the highest recent recommendation",
		},
		ScalingLimited: autoscalingv2.HorizontalPodAutoscalerCondition{
			Type: autoscalingv2.ScalingLimited, Status: corev1.ConditionFalse, Reason: "DesiredWithinRange",
			Message: "the desired count is within the acceptable range",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
}

// A History driven through syncs as the controller drives it.
func TestHistoryOverSyncs(t *testing.T) {
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: scalingRules(60, "", podsPolicy(2, 30))}
	h := NewHistory(5 * time.Minute)
	sync := func(at time.Duration, current, desired int32) int32 {
		t.Helper()
		now := t0.Add(at)
		h.Seed(current, now)
		d := h.Normalize(Proposal{CurrentReplicas: current, DesiredReplicas: desired, MinReplicas: 1, MaxReplicas: 20, Behavior: b}, now)
		if d.Replicas != current {
			h.RecordScale(b, current, d.Replicas, now)
		}
		return d.Replicas
	}
	steps := []struct {
		at               time.Duration
		current, desired int32
		want             int32
		why              string
	}{
		{0, 10, 4, 10, "the seed (10) is in the 60s window"},
		{15 * time.Second, 10, 4, 10, "the seed still is"},
		{61 * time.Second, 10, 4, 8, "the seed has left the window; 2 pods per 30s"},
		{76 * time.Second, 8, 4, 8, "2 removed 15s ago used the period up"},
		{92 * time.Second, 8, 4, 6, "the removal has left the 30s period"},
		{100 * time.Second, 6, 9, 9, "no scale-up window; the defaults' 15s period started at 6+2 = 8, which allows max(8+4, 8×2)"},
		{110 * time.Second, 9, 20, 12, "the 15s period started at 9-3 = 6: max(6+4, 6×2) = 12"},
	}
	for _, s := range steps {
		if got := sync(s.at, s.current, s.desired); got != s.want {
			t.Errorf("at +%v from %d wanting %d: got %d, want %d (%s)", s.at, s.current, s.desired, got, s.want, s.why)
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	h := NewHistory(5 * time.Minute)
	current := int32(1)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * 15 * time.Second)
		h.Seed(current, now)
		desired := int32(1 + i%20) // up and down, so both directions have events
		d := h.Normalize(Proposal{CurrentReplicas: current, DesiredReplicas: desired, MinReplicas: 1, MaxReplicas: 20, Behavior: b}, now)
		if d.Replicas != current {
			h.RecordScale(b, current, d.Replicas, now)
			current = d.Replicas
		}
	}
	// A 300s window read every 15s holds 21 entries (both ends count);
	// 15s periods hold the events of 2 syncs.
	if n := len(h.recommendations); n > 21 {
		t.Errorf("%d recommendations kept, want at most 21", n)
	}
	if n := len(h.scaleUps) + len(h.scaleDowns); n > 2 {
		t.Errorf("%d scale events kept, want at most 2", n)
	}
}

func TestRecordScaleWithoutBehavior(t *testing.T) {
	h := NewHistory(5 * time.Minute)
	h.RecordScale(nil, 1, 4, t0)
	if len(h.scaleUps)+len(h.scaleDowns) != 0 {
		t.Errorf("recorded %v %v for an HPA without behavior", h.scaleUps, h.scaleDowns)
	}
}
