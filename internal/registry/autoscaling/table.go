package autoscaling

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// hpaTable is upstream's HPA table; asV2 gives the row's object in its v2
// form (nil for a foreign type).
func hpaTable(asV2 func(runtime.Object) *autoscalingv2.HorizontalPodAutoscaler) *registry.Table {
	spec, status := autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc(), autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{
			registry.NameColumn,
			{Name: "Reference", Type: "string", Description: spec["scaleTargetRef"]},
			{Name: "Targets", Type: "string", Description: spec["metrics"]},
			{Name: "MinPods", Type: "string", Description: spec["minReplicas"]},
			{Name: "MaxPods", Type: "string", Description: spec["maxReplicas"]},
			{Name: "Replicas", Type: "string", Description: status["currentReplicas"]},
			registry.AgeColumn,
		},
		Row: func(obj runtime.Object) []interface{} {
			h := asV2(obj)
			if h == nil {
				return nil
			}
			minPods := "<unset>"
			if h.Spec.MinReplicas != nil {
				minPods = fmt.Sprint(*h.Spec.MinReplicas)
			}
			ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
			return []interface{}{h.Name, ref, formatMetrics(h.Spec.Metrics, h.Status.CurrentMetrics), minPods,
				int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), registry.Age(h)}
		},
	}
}

// formatMetrics prints "current/target" for up to two metrics, matching
// each spec metric with the status metric at the same index, as upstream
// does; resource metrics are prefixed with the resource ("cpu: 40%/80%").
func formatMetrics(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	const max = 2
	var list []string
	for i, spec := range specs {
		var st *autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = &statuses[i]
		}
		list = append(list, formatMetric(spec, st))
	}
	if len(list) <= max {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(list[:max], ", "), len(list)-max)
}

func formatMetric(spec autoscalingv2.MetricSpec, st *autoscalingv2.MetricStatus) string {
	const unknown = "<unknown>"
	q := func(v *resource.Quantity) string {
		if v == nil {
			return unknown
		}
		return v.String()
	}
	var cur *autoscalingv2.MetricValueStatus
	switch {
	case st == nil:
	case spec.Type == autoscalingv2.ExternalMetricSourceType && st.External != nil:
		cur = &st.External.Current
	case spec.Type == autoscalingv2.PodsMetricSourceType && st.Pods != nil:
		cur = &st.Pods.Current
	case spec.Type == autoscalingv2.ObjectMetricSourceType && st.Object != nil:
		cur = &st.Object.Current
	case spec.Type == autoscalingv2.ResourceMetricSourceType && st.Resource != nil:
		cur = &st.Resource.Current
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && st.ContainerResource != nil:
		cur = &st.ContainerResource.Current
	}
	if cur == nil {
		cur = &autoscalingv2.MetricValueStatus{}
	}
	valueOrAvg := func(t autoscalingv2.MetricTarget) string {
		if t.AverageValue != nil {
			return fmt.Sprintf("%s/%s (avg)", q(cur.AverageValue), t.AverageValue.String())
		}
		return fmt.Sprintf("%s/%s", q(cur.Value), q(t.Value))
	}
	resourceTarget := func(name string, t autoscalingv2.MetricTarget) string {
		if t.AverageValue != nil {
			return fmt.Sprintf("%s: %s/%s", name, q(cur.AverageValue), t.AverageValue.String())
		}
		current, target := unknown, "<auto>"
		if cur.AverageUtilization != nil {
			current = fmt.Sprintf("%d%%", *cur.AverageUtilization)
		}
		if t.AverageUtilization != nil {
			target = fmt.Sprintf("%d%%", *t.AverageUtilization)
		}
		return fmt.Sprintf("%s: %s/%s", name, current, target)
	}
	switch {
	case spec.Type == autoscalingv2.ExternalMetricSourceType && spec.External != nil:
		return valueOrAvg(spec.External.Target)
	case spec.Type == autoscalingv2.ObjectMetricSourceType && spec.Object != nil:
		return valueOrAvg(spec.Object.Target)
	case spec.Type == autoscalingv2.PodsMetricSourceType && spec.Pods != nil:
		return fmt.Sprintf("%s/%s", q(cur.AverageValue), q(spec.Pods.Target.AverageValue))
	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		return resourceTarget(string(spec.Resource.Name), spec.Resource.Target)
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		return resourceTarget(string(spec.ContainerResource.Name), spec.ContainerResource.Target)
	}
	return "<unknown type>"
}
