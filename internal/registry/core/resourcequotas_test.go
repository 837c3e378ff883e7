package core

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResourceQuotaValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec corev1.ResourceQuotaSpec
		want []string
	}{
		{"valid", corev1.ResourceQuotaSpec{Hard: lrList("pods", "10", "requests.cpu", "4", "limits.memory", "8Gi", "count/deployments.apps", "5", "gold.storageclass.storage.k8s.io/requests.storage", "100Gi")}, nil},
		{"negative", corev1.ResourceQuotaSpec{Hard: lrList("requests.cpu", "-1")}, []string{"spec.hard[requests.cpu]"}},
		{"fractional count", corev1.ResourceQuotaSpec{Hard: lrList("pods", "1500m")}, []string{"spec.hard[pods]"}},
		{"unknown standard name", corev1.ResourceQuotaSpec{Hard: lrList("widgets", "1")}, []string{"spec.hard[widgets]"}},
		{"bad scope", corev1.ResourceQuotaSpec{Scopes: []corev1.ResourceQuotaScope{"Sometimes"}}, []string{"spec.scopes[0]"}},
		{"conflicting scopes", corev1.ResourceQuotaSpec{Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort}}, []string{"spec.scopes"}},
		{"selector values", corev1.ResourceQuotaSpec{ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
			{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn},
		}}}, []string{"spec.scopeSelector.matchExpressions[0].values"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validateResourceQuota(&corev1.ResourceQuota{Spec: tc.spec}), tc.want...)
		})
	}
}

func TestResourceQuotaUpdateAndStatus(t *testing.T) {
	old := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}}}
	q := old.DeepCopy()
	q.Spec.Scopes = nil
	metaWantFields(t, validateResourceQuotaUpdate(q, old), "spec.scopes")
	q = old.DeepCopy()
	q.Status.Used = lrList("pods", "-1")
	metaWantFields(t, validateResourceQuotaStatus(q, old), "status.used[pods]")
}

func TestResourceQuotaTable(t *testing.T) {
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "compute"},
		Status: corev1.ResourceQuotaStatus{
			Hard: lrList("requests.cpu", "4", "pods", "10", "limits.cpu", "8", "limits.memory", "8Gi"),
			Used: lrList("requests.cpu", "500m", "pods", "3", "limits.cpu", "1"),
		},
	}
	tab := ResourceQuotas().Table
	want := []interface{}{"compute", "pods: 3/10, requests.cpu: 500m/4", "limits.cpu: 1/8, limits.memory: 0/8Gi", "<unknown>"}
	if diff := cmp.Diff(want, tab.Row(q)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(tab.Columns) != len(want) {
		t.Errorf("%d columns for %d cells", len(tab.Columns), len(want))
	}
}
