package core

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lrList(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestLimitRangeDefault(t *testing.T) {
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
		{Type: corev1.LimitTypeContainer, Max: lrList("cpu", "2", "memory", "1Gi"), Min: lrList("cpu", "100m", "memory", "64Mi"), Default: lrList("memory", "512Mi")},
		{Type: corev1.LimitTypePod, Max: lrList("cpu", "4")},
	}}}
	defaultLimitRange(lr)
	c := lr.Spec.Limits[0]
	if diff := cmp.Diff(lrList("cpu", "2", "memory", "512Mi"), c.Default); diff != "" {
		t.Errorf("default (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lrList("cpu", "2", "memory", "512Mi"), c.DefaultRequest); diff != "" {
		t.Errorf("defaultRequest (-want +got):\n%s", diff)
	}
	if lr.Spec.Limits[1].Default != nil {
		t.Errorf("pod item got defaults: %v", lr.Spec.Limits[1].Default)
	}
	metaWantFields(t, validateLimitRange(lr))
}

func TestLimitRangeValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		items []corev1.LimitRangeItem
		want  []string
	}{
		{"valid pvc", []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim, Max: lrList("storage", "10Gi")}}, nil},
		{"bad type", []corev1.LimitRangeItem{{Type: "Node"}}, []string{"spec.limits[0].type"}},
		{"duplicate type", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer}, {Type: corev1.LimitTypeContainer}}, []string{"spec.limits[1].type"}},
		{"negative", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: lrList("cpu", "-1")}}, []string{"spec.limits[0].max[cpu]"}},
		{"min above max", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: lrList("cpu", "1"), Min: lrList("cpu", "2")}}, []string{"spec.limits[0].min[cpu]"}},
		{"default above max", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: lrList("memory", "1Gi"), Default: lrList("memory", "2Gi")}}, []string{"spec.limits[0].default[memory]"}},
		{"pod defaults forbidden", []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Default: lrList("cpu", "1")}}, []string{"spec.limits[0].default"}},
		{"ratio below one", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, MaxLimitRequestRatio: lrList("cpu", "500m")}}, []string{"spec.limits[0].maxLimitRequestRatio[cpu]"}},
		{"pvc needs storage bound", []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim, Max: lrList("cpu", "1")}}, []string{"spec.limits[0].max[cpu]", "spec.limits[0].limits"}},
		{"unknown container resource", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: lrList("gpus", "1")}}, []string{"spec.limits[0].max[gpus]"}},
		{"extended resource", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: lrList("example.com/gpu", "1")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validateLimitRange(&corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: tc.items}}), tc.want...)
		})
	}
}

func TestLimitRangeTable(t *testing.T) {
	tab := LimitRanges().Table
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", CreationTimestamp: metav1.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}}
	if diff := cmp.Diff([]interface{}{"limits", "2025-03-04T05:06:07Z"}, tab.Row(lr)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if tab.Columns[1].Name != "Created At" || tab.Columns[1].Type != "date" {
		t.Errorf("second column = %+v", tab.Columns[1])
	}
}
