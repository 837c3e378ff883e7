package autoscaling

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DefaultCPUUtilization is the target of the metric an HPA gets when it
// names none.
const DefaultCPUUtilization = 80

// DefaultV2 fills in upstream's v2 defaults: minReplicas 1, an 80% CPU
// utilization metric when there is none, and, when behavior is given, the
// default scale-up and scale-down rules under whatever it leaves unset.
// A nil behavior stays nil, and means something else to the controller:
// upstream's older rules, the downscale stabilization window alone
// (--horizontal-pod-autoscaler-downscale-stabilization) and scale-ups of
// at most max(2×current, 4) replicas a sync (see podautoscaler.History).
func DefaultV2(h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas == nil {
		one := int32(1)
		h.Spec.MinReplicas = &one
	}
	if len(h.Spec.Metrics) == 0 {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(DefaultCPUUtilization)}
	}
	if b := h.Spec.Behavior; b != nil {
		b.ScaleUp = fillRules(b.ScaleUp, defaultScaleUp())
		b.ScaleDown = fillRules(b.ScaleDown, defaultScaleDown())
	}
}

func cpuUtilizationMetric(pct int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct},
		},
	}
}

// defaultScaleUp: no stabilization; add at most max(4 pods, 100%) every 15s.
func defaultScaleUp() *autoscalingv2.HPAScalingRules {
	window, sel := int32(0), autoscalingv2.MaxChangePolicySelect
	return &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: &window,
		SelectPolicy:               &sel,
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
}

// defaultScaleDown: remove up to 100% every 15s; the stabilization window
// is left unset, meaning the controller's flag (300s by default).
func defaultScaleDown() *autoscalingv2.HPAScalingRules {
	sel := autoscalingv2.MaxChangePolicySelect
	return &autoscalingv2.HPAScalingRules{
		SelectPolicy: &sel,
		Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
	}
}

// fillRules returns def with every field set in given copied over it.
func fillRules(given, def *autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if given == nil {
		return def
	}
	if given.SelectPolicy != nil {
		def.SelectPolicy = given.SelectPolicy
	}
	if given.StabilizationWindowSeconds != nil {
		def.StabilizationWindowSeconds = given.StabilizationWindowSeconds
	}
	if given.Policies != nil {
		def.Policies = given.Policies
	}
	if given.Tolerance != nil {
		def.Tolerance = given.Tolerance
	}
	return def
}

// defaultV1 is upstream's v1 defaulting: minReplicas 1 only. The CPU
// metric default is applied on the way to storage (ToStored).
func defaultV1(obj runtime.Object) {
	h, ok := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	if !ok {
		return
	}
	if h.Spec.MinReplicas == nil {
		one := int32(1)
		h.Spec.MinReplicas = &one
	}
}
