package resourcequota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func pod(name string, phase corev1.PodPhase, req, lim corev1.ResourceList, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// values renders a ResourceList as name → canonical string for diffs.
func values(l corev1.ResourceList) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		out[string(k)] = v.String()
	}
	return out
}

func TestUsage(t *testing.T) {
	now := time.Unix(10000, 0)
	deadline := int64(30)
	longAgo := metav1.NewTime(now.Add(-time.Hour))
	grace := int64(30)
	pods := []*corev1.Pod{
		pod("a", corev1.PodRunning, rl("cpu", "100m", "memory", "64Mi"), rl("cpu", "200m", "memory", "128Mi")),
		pod("b", corev1.PodPending, rl("cpu", "250m"), nil, func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1")}}}
			p.Spec.ActiveDeadlineSeconds = &deadline
			p.Spec.PriorityClassName = "high"
		}),
		pod("c", corev1.PodRunning, nil, nil), // best effort
		pod("done", corev1.PodSucceeded, rl("cpu", "5"), nil),
		pod("gone", corev1.PodRunning, rl("cpu", "5"), nil, func(p *corev1.Pod) {
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &longAgo, &grace
		}),
		nil,
	}
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	np := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
	cip := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	fast := "fast"
	pvcs := []*corev1.PersistentVolumeClaim{
		{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &fast, Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "1Gi")}}},
		{Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "2Gi")}}},
	}
	snap := snapshot{pods: pods, services: []*corev1.Service{lb, np, cip}, pvcs: pvcs, configMaps: 3, secrets: 4, quotas: 1, replicationControllers: 2}

	tests := []struct {
		name   string
		hard   corev1.ResourceList
		scopes []corev1.ResourceQuotaScope
		sel    []corev1.ScopedResourceSelectorRequirement
		want   map[string]string
	}{
		{
			name: "compute resources over active pods (init container max)",
			hard: rl("pods", "10", "requests.cpu", "10", "cpu", "10", "requests.memory", "1Gi", "limits.cpu", "10", "limits.memory", "1Gi", "memory", "1Gi"),
			want: map[string]string{"pods": "3", "requests.cpu": "1100m", "cpu": "1100m", "requests.memory": "64Mi",
				"memory": "64Mi", "limits.cpu": "200m", "limits.memory": "128Mi"},
		},
		{
			name: "object counts",
			hard: rl("services", "9", "count/services", "9", "configmaps", "9", "count/secrets", "9", "secrets", "9",
				"persistentvolumeclaims", "9", "replicationcontrollers", "9", "resourcequotas", "9",
				"services.loadbalancers", "9", "services.nodeports", "9", "count/pods", "9"),
			want: map[string]string{"services": "3", "count/services": "3", "configmaps": "3", "count/secrets": "4", "secrets": "4",
				"persistentvolumeclaims": "2", "replicationcontrollers": "2", "resourcequotas": "1",
				"services.loadbalancers": "1", "services.nodeports": "3", "count/pods": "3"},
		},
		{
			name: "storage",
			hard: rl("requests.storage", "10Gi", "fast.storageclass.storage.k8s.io/requests.storage", "10Gi",
				"fast.storageclass.storage.k8s.io/persistentvolumeclaims", "5"),
			want: map[string]string{"requests.storage": "3Gi", "fast.storageclass.storage.k8s.io/requests.storage": "1Gi",
				"fast.storageclass.storage.k8s.io/persistentvolumeclaims": "1"},
		},
		{
			name: "unknown resources are left out",
			hard: rl("count/widgets.example.com", "3", "pods", "3"),
			want: map[string]string{"pods": "3"},
		},
		{
			name:   "BestEffort scope counts only pods, only best-effort ones",
			hard:   rl("pods", "9", "services", "9"),
			scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort},
			want:   map[string]string{"pods": "1"},
		},
		{
			name:   "NotBestEffort and Terminating",
			hard:   rl("pods", "9", "requests.cpu", "9"),
			scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeTerminating},
			want:   map[string]string{"pods": "1", "requests.cpu": "1"},
		},
		{
			name:   "NotTerminating",
			hard:   rl("pods", "9"),
			scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating},
			want:   map[string]string{"pods": "2"},
		},
		{
			name: "PriorityClass In",
			hard: rl("pods", "9"),
			sel:  []corev1.ScopedResourceSelectorRequirement{{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}},
			want: map[string]string{"pods": "1"},
		},
		{
			name: "PriorityClass NotIn",
			hard: rl("pods", "9"),
			sel:  []corev1.ScopedResourceSelectorRequirement{{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpNotIn, Values: []string{"high"}}},
			want: map[string]string{"pods": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: tt.hard, Scopes: tt.scopes}}
			if tt.sel != nil {
				q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: tt.sel}
			}
			if diff := cmp.Diff(tt.want, values(usage(q, snap, now))); diff != "" {
				t.Errorf("used (-want +got):\n%s", diff)
			}
		})
	}
	if got := usage(nil, snap, now); len(got) != 0 {
		t.Errorf("usage(nil) = %v", got)
	}
}

func TestStatusEqual(t *testing.T) {
	a := corev1.ResourceQuotaStatus{Hard: rl("cpu", "1"), Used: rl("cpu", "1000m")}
	b := corev1.ResourceQuotaStatus{Hard: rl("cpu", "1000m"), Used: rl("cpu", "1")}
	if !statusEqual(a, b) {
		t.Error("equal quantities in different forms differ")
	}
	b.Used = rl("cpu", "2")
	if statusEqual(a, b) {
		t.Error("different used reported equal")
	}
	if statusEqual(a, corev1.ResourceQuotaStatus{Hard: rl("cpu", "1")}) {
		t.Error("missing used reported equal")
	}
}
