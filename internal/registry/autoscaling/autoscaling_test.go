package autoscaling

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func ptr[T any](v T) *T { return &v }

func qty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

// quantityCmp compares quantities by value: parsing and copying change
// their cached string form, not what they mean.
var quantityCmp = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func hpa() *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    10,
		},
	}
}

func TestDescriptors(t *testing.T) {
	rs := Resources()
	if len(rs) != 2 {
		t.Fatalf("%d resources", len(rs))
	}
	for _, r := range rs {
		if r.Name != "horizontalpodautoscalers" || !r.Status || !r.Namespaced ||
			cmp.Diff([]string{"hpa"}, r.ShortNames) != "" || cmp.Diff([]string{"all"}, r.Categories) != "" {
			t.Errorf("%s: %+v", r.GroupVersion, r)
		}
	}
	if rs[0].StoredAs != nil || rs[1].StoredAs == nil || *rs[1].StoredAs != rs[0].GroupVersionResource() {
		t.Errorf("StoredAs: v2 %v, v1 %v", rs[0].StoredAs, rs[1].StoredAs)
	}
}

func TestDefaultV2(t *testing.T) {
	up, down := defaultScaleUp(), defaultScaleDown()
	min := autoscalingv2.MinChangePolicySelect
	tests := []struct {
		name   string
		mutate func(*autoscalingv2.HorizontalPodAutoscaler)
		want   autoscalingv2.HorizontalPodAutoscalerSpec
	}{
		{"empty", func(*autoscalingv2.HorizontalPodAutoscaler) {}, autoscalingv2.HorizontalPodAutoscalerSpec{
			MinReplicas: ptr[int32](1), Metrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(80)},
		}},
		{"kept", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.MinReplicas = ptr[int32](3)
			h.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(50)}
		}, autoscalingv2.HorizontalPodAutoscalerSpec{
			MinReplicas: ptr[int32](3), Metrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(50)},
		}},
		{"empty behavior", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		}, autoscalingv2.HorizontalPodAutoscalerSpec{
			MinReplicas: ptr[int32](1), Metrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(80)},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: up, ScaleDown: down},
		}},
		{"partial behavior", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr[int32](60), SelectPolicy: &min},
			}
		}, autoscalingv2.HorizontalPodAutoscalerSpec{
			MinReplicas: ptr[int32](1), Metrics: []autoscalingv2.MetricSpec{cpuUtilizationMetric(80)},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: up, ScaleDown: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptr[int32](60), SelectPolicy: &min, Policies: down.Policies,
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hpa()
			tt.mutate(h)
			DefaultV2(h)
			tt.want.ScaleTargetRef, tt.want.MaxReplicas = h.Spec.ScaleTargetRef, h.Spec.MaxReplicas
			if diff := cmp.Diff(tt.want, h.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if errs := validateHPA(h); len(errs) != 0 {
				t.Errorf("defaulted object invalid: %v", errs)
			}
		})
	}
	if up.StabilizationWindowSeconds == nil || *up.StabilizationWindowSeconds != 0 || down.StabilizationWindowSeconds != nil ||
		len(up.Policies) != 2 || up.Policies[0].Value != 4 || up.Policies[1].Value != 100 || down.Policies[0].PeriodSeconds != 15 {
		t.Errorf("default rules: up %+v down %+v", up, down)
	}
}

func TestValidate(t *testing.T) {
	bad := autoscalingv2.ScalingPolicySelect("Sometimes")
	tests := []struct {
		name   string
		mutate func(*autoscalingv2.HorizontalPodAutoscaler)
		want   []string
	}{
		{"valid", func(*autoscalingv2.HorizontalPodAutoscaler) {}, nil},
		{"no target", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{}
		},
			[]string{"FieldValueRequired spec.scaleTargetRef.kind", "FieldValueRequired spec.scaleTargetRef.name"}},
		{"bad target name", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Name = "a/b" },
			[]string{"FieldValueInvalid spec.scaleTargetRef.name"}},
		{"min zero", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr[int32](0) },
			[]string{"FieldValueInvalid spec.minReplicas"}},
		{"max below min", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.MinReplicas = ptr[int32](5)
			h.Spec.MaxReplicas = 2
		},
			[]string{"FieldValueInvalid spec.maxReplicas"}},
		{"max zero", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MaxReplicas = 0 },
			[]string{"FieldValueInvalid spec.maxReplicas"}},
		{"metric without source", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.PodsMetricSourceType}}
		}, []string{"FieldValueRequired spec.metrics[0].pods"}},
		{"metric with two sources", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			m := cpuUtilizationMetric(50)
			m.Pods = &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("10")}}
			h.Spec.Metrics = []autoscalingv2.MetricSpec{m}
		}, []string{"FieldValueForbidden spec.metrics[0].pods"}},
		{"bad type", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: "Magic"}}
		}, []string{"FieldValueNotSupported spec.metrics[0].type"}},
		{"resource target", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: "memory", Target: autoscalingv2.MetricTarget{Type: "Utilization", AverageUtilization: ptr[int32](0)}}}}
		}, []string{"FieldValueInvalid spec.metrics[0].resource.target.averageUtilization"}},
		{"resource no target", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: "memory", Target: autoscalingv2.MetricTarget{Type: "Utilization"}}}}
		}, []string{"FieldValueRequired spec.metrics[0].resource.target.averageUtilization"}},
		{"external negative", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType,
				External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "queue"},
					Target: autoscalingv2.MetricTarget{Type: "Value", Value: qty("-1")}}}}
		}, []string{"FieldValueInvalid spec.metrics[0].external.target.value"}},
		{"container resource", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ContainerResourceMetricSourceType,
				ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{Type: "AverageValue", AverageValue: qty("100m")}}}}
		}, []string{"FieldValueRequired spec.metrics[0].containerResource.container"}},
		{"behavior", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr[int32](3601), SelectPolicy: &bad},
				ScaleDown: &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{
					{Type: "Nodes", Value: 0, PeriodSeconds: 1801}}},
			}
		}, []string{
			"FieldValueInvalid spec.behavior.scaleUp.stabilizationWindowSeconds",
			"FieldValueNotSupported spec.behavior.scaleUp.selectPolicy",
			"FieldValueRequired spec.behavior.scaleUp.policies",
			"FieldValueNotSupported spec.behavior.scaleDown.policies[0].type",
			"FieldValueInvalid spec.behavior.scaleDown.policies[0].value",
			"FieldValueInvalid spec.behavior.scaleDown.policies[0].periodSeconds",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hpa()
			tt.mutate(h)
			if diff := cmp.Diff(tt.want, errFields(validateHPA(h))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateV1AndStatus(t *testing.T) {
	r := Resources()[1]
	h := &autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment"}, MaxReplicas: 3,
		TargetCPUUtilizationPercentage: ptr[int32](0),
	}}
	r.Strategy.Default(h)
	want := []string{"FieldValueRequired spec.scaleTargetRef.name", "FieldValueInvalid spec.metrics[0].resource.target.averageUtilization"}
	if diff := cmp.Diff(want, errFields(r.Strategy.Validate(h))); diff != "" {
		t.Errorf("v1 errors (-want +got):\n%s", diff)
	}
	if *h.Spec.MinReplicas != 1 {
		t.Errorf("v1 minReplicas not defaulted")
	}
	h.Status.DesiredReplicas = -1
	if diff := cmp.Diff([]string{"FieldValueInvalid status.desiredReplicas"}, errFields(r.Strategy.ValidateStatusUpdate(h, h))); diff != "" {
		t.Errorf("status errors (-want +got):\n%s", diff)
	}
}

// full is a defaulted v2 HPA using every metric type, with the CPU
// utilization metric last (where v1 conversion puts it back).
func full() *autoscalingv2.HorizontalPodAutoscaler {
	h := hpa()
	h.Annotations = map[string]string{"team": "web"}
	h.Spec.Metrics = []autoscalingv2.MetricSpec{
		{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "memory",
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("512Mi")}}},
		{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("10")}}},
		{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"},
			Metric:          autoscalingv2.MetricIdentifier{Name: "rps", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: qty("2k")}}},
		{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "queue"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("30")}}},
		{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: "cpu", Container: "app",
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr[int32](60)}}},
		cpuUtilizationMetric(70),
	}
	h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr[int32](30)}}
	DefaultV2(h)
	h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptr[int64](2),
		CurrentReplicas:    3, DesiredReplicas: 4,
		CurrentMetrics: []autoscalingv2.MetricStatus{
			{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: "memory",
				Current: autoscalingv2.MetricValueStatus{AverageValue: qty("300Mi")}}},
			{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
				Current: autoscalingv2.MetricValueStatus{AverageValue: qty("7")}}},
			{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr[int32](55)}}},
		},
		Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Reason: "ReadyForNewScale"}},
	}
	return h
}

func TestRoundTripV2(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   *autoscalingv2.HorizontalPodAutoscaler
	}{
		{"defaulted minimal", func() *autoscalingv2.HorizontalPodAutoscaler { h := hpa(); DefaultV2(h); return h }()},
		{"every metric type", full()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v1, err := FromStored(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ToStored(v1)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in.DeepCopy()
			want.TypeMeta = v2TypeMeta
			if diff := cmp.Diff(want, back, quantityCmp); diff != "" {
				t.Errorf("v2 -> v1 -> v2 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromStored(t *testing.T) {
	got, err := FromStored(full())
	if err != nil {
		t.Fatal(err)
	}
	v1 := got.(*autoscalingv1.HorizontalPodAutoscaler)
	if v1.Spec.TargetCPUUtilizationPercentage == nil || *v1.Spec.TargetCPUUtilizationPercentage != 70 {
		t.Errorf("targetCPUUtilizationPercentage = %v", v1.Spec.TargetCPUUtilizationPercentage)
	}
	if v1.Status.CurrentCPUUtilizationPercentage == nil || *v1.Status.CurrentCPUUtilizationPercentage != 55 {
		t.Errorf("currentCPUUtilizationPercentage = %v", v1.Status.CurrentCPUUtilizationPercentage)
	}
	for _, k := range []string{MetricSpecsAnnotation, MetricStatusesAnnotation, ConditionsAnnotation, BehaviorAnnotation, "team"} {
		if v1.Annotations[k] == "" {
			t.Errorf("annotation %s missing", k)
		}
	}
	// Annotations of the stored object are not touched.
	if len(full().Annotations) != 1 {
		t.Errorf("stored annotations changed")
	}
}

func TestRoundTripV1(t *testing.T) {
	plain := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas:    ptr[int32](2), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptr[int32](65),
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 2, CurrentCPUUtilizationPercentage: ptr[int32](12)},
	}
	annotated := plain.DeepCopy()
	annotated.Annotations = map[string]string{
		MetricSpecsAnnotation: `[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]`,
		"keep":                "me",
	}
	for _, tt := range []struct {
		name string
		in   *autoscalingv1.HorizontalPodAutoscaler
	}{{"plain", plain}, {"annotated metrics", annotated}} {
		t.Run(tt.name, func(t *testing.T) {
			v2, err := ToStored(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := v2.(*autoscalingv2.HorizontalPodAutoscaler).Annotations[MetricSpecsAnnotation]; ok {
				t.Errorf("stored object keeps the v1 annotation")
			}
			back, err := FromStored(v2)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in.DeepCopy()
			want.TypeMeta = v1TypeMeta
			if diff := cmp.Diff(want, back, quantityCmp); diff != "" {
				t.Errorf("v1 -> v2 -> v1 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToStoredDefaults(t *testing.T) {
	in := &autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3},
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{MetricSpecsAnnotation: "not json"}}}
	out, err := ToStored(in)
	if err != nil {
		t.Fatal(err)
	}
	h := out.(*autoscalingv2.HorizontalPodAutoscaler)
	if diff := cmp.Diff([]autoscalingv2.MetricSpec{cpuUtilizationMetric(80)}, h.Spec.Metrics); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if h.Annotations != nil {
		t.Errorf("annotations = %v, want none", h.Annotations)
	}
	if _, err := ToStored(hpa()); err == nil {
		t.Errorf("ToStored accepted a v2 object")
	}
}

func TestTable(t *testing.T) {
	r := Resources()
	tests := []struct {
		name string
		h    *autoscalingv2.HorizontalPodAutoscaler
		want []interface{}
	}{
		{"full", full(), []interface{}{"web", "Deployment/web", "memory: 300Mi/512Mi, 7/10 + 4 more...", "1", int64(10), int64(3), "<unknown>"}},
		{"no status", func() *autoscalingv2.HorizontalPodAutoscaler { h := hpa(); DefaultV2(h); return h }(),
			[]interface{}{"web", "Deployment/web", "cpu: <unknown>/80%", "1", int64(10), int64(0), "<unknown>"}},
		{"no metrics", hpa(), []interface{}{"web", "Deployment/web", "<none>", "<unset>", int64(10), int64(0), "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, r[0].Table.Row(tt.h)); diff != "" {
				t.Errorf("v2 row (-want +got):\n%s", diff)
			}
		})
	}
	v1, err := FromStored(tests[1].h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tests[1].want, r[1].Table.Row(v1)); diff != "" {
		t.Errorf("v1 row (-want +got):\n%s", diff)
	}
	two := hpa()
	two.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(50), {Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{Target: autoscalingv2.MetricTarget{Type: "Value", Value: qty("5")}}}}
	two.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{Name: "cpu", Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr[int32](20)}}}}
	if got := formatMetrics(two.Spec.Metrics, two.Status.CurrentMetrics); got != "cpu: 20%/50%, <unknown>/5" {
		t.Errorf("targets = %q", got)
	}
}
