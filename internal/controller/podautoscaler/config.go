package podautoscaler

import (
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Config is the controller-wide tuning, upstream's
// --horizontal-pod-autoscaler-* flags of kube-controller-manager.
type Config struct {
	// Tolerance is how far the usage ratio may stray from 1.0 before the
	// replica count changes (--horizontal-pod-autoscaler-tolerance). An HPA
	// may override it per direction (behavior.scale{Up,Down}.tolerance).
	Tolerance float64
	// CPUInitializationPeriod is how long after a pod starts its cpu
	// samples are suspect (--horizontal-pod-autoscaler-cpu-initialization-period).
	CPUInitializationPeriod time.Duration
	// InitialReadinessDelay is how soon after a pod starts a transition to
	// unready still counts as "never ready yet"
	// (--horizontal-pod-autoscaler-initial-readiness-delay).
	InitialReadinessDelay time.Duration
	// DownscaleStabilizationWindow is the scale-down stabilization window
	// of an HPA that sets none
	// (--horizontal-pod-autoscaler-downscale-stabilization).
	DownscaleStabilizationWindow time.Duration
}

// DefaultConfig returns upstream's defaults.
func DefaultConfig() Config {
	return Config{
		Tolerance:                    0.1,
		CPUInitializationPeriod:      5 * time.Minute,
		InitialReadinessDelay:        30 * time.Second,
		DownscaleStabilizationWindow: 5 * time.Minute,
	}
}

// Tolerances bound the usage ratio within which the replica count stays
// as it is: [1-ScaleDown, 1+ScaleUp].
type Tolerances struct {
	ScaleDown float64
	ScaleUp   float64
}

func (t Tolerances) within(ratio float64) bool {
	return 1-t.ScaleDown <= ratio && ratio <= 1+t.ScaleUp
}

// Tolerances returns the tolerances of an HPA with behavior b: the
// tolerance a direction's rules set, else c.Tolerance. Upstream honours
// the per-HPA field only with its HPAConfigurableTolerance feature gate;
// skiff stores the field, so it always honours it.
func (c Config) Tolerances(b *autoscalingv2.HorizontalPodAutoscalerBehavior) Tolerances {
	t := Tolerances{ScaleDown: c.Tolerance, ScaleUp: c.Tolerance}
	if b == nil {
		return t
	}
	if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
		t.ScaleDown = b.ScaleDown.Tolerance.AsApproximateFloat64()
	}
	if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
		t.ScaleUp = b.ScaleUp.Tolerance.AsApproximateFloat64()
	}
	return t
}
