package resourcequota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

func TestObjectUsage(t *testing.T) {
	now := time.Unix(10000, 0)
	quota := func(hard corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: hard, Scopes: scopes}, Status: corev1.ResourceQuotaStatus{Hard: hard}}
	}
	all := rl("pods", "10", "count/pods", "10", "cpu", "4", "limits.memory", "1Gi", "requests.example.com/dongle", "4",
		"services", "5", "services.nodeports", "5", "services.loadbalancers", "2",
		"persistentvolumeclaims", "5", "requests.storage", "10Gi", "gold.storageclass.storage.k8s.io/requests.storage", "5Gi",
		"configmaps", "5", "count/replicasets.apps", "3", "count/widgets.example.com", "3")
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: ptr.To(false),
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 30001}, {Port: 81}}}}
	tests := []struct {
		name  string
		quota *corev1.ResourceQuota
		gr    schema.GroupResource
		obj   runtime.Object
		want  map[string]string
	}{{
		name:  "pod",
		quota: quota(all),
		gr:    schema.GroupResource{Resource: "pods"},
		obj: pod("p", "", rl("cpu", "250m", "example.com/dongle", "2"), rl("memory", "64Mi", "example.com/dongle", "2"), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1")}}}
		}),
		want: map[string]string{"pods": "1", "count/pods": "1", "cpu": "1", "limits.memory": "64Mi", "requests.example.com/dongle": "2"},
	}, {
		name:  "pod outside the quota's scope",
		quota: quota(all, corev1.ResourceQuotaScopeBestEffort),
		gr:    schema.GroupResource{Resource: "pods"},
		obj:   pod("p", "", rl("cpu", "1"), nil),
		want:  map[string]string{},
	}, {
		name:  "load balancer without node port allocation",
		quota: quota(all),
		gr:    schema.GroupResource{Resource: "services"},
		obj:   lb,
		want:  map[string]string{"services": "1", "services.nodeports": "1", "services.loadbalancers": "1"},
	}, {
		name:  "services never match a scoped quota",
		quota: quota(all, corev1.ResourceQuotaScopeNotTerminating),
		gr:    schema.GroupResource{Resource: "services"},
		obj:   lb,
		want:  map[string]string{},
	}, {
		name:  "claim of a class",
		quota: quota(all),
		gr:    schema.GroupResource{Resource: "persistentvolumeclaims"},
		obj: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("gold"),
			Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "2Gi")}}},
		want: map[string]string{"persistentvolumeclaims": "1", "requests.storage": "2Gi", "gold.storageclass.storage.k8s.io/requests.storage": "2Gi"},
	}, {
		name:  "counted workload",
		quota: quota(all),
		gr:    schema.GroupResource{Group: "apps", Resource: "replicasets"},
		obj:   &metav1.PartialObjectMetadata{},
		want:  map[string]string{"count/replicasets.apps": "1"},
	}, {
		name:  "unmeasured resource",
		quota: quota(all),
		gr:    schema.GroupResource{Group: "example.com", Resource: "widgets"},
		obj:   &metav1.PartialObjectMetadata{},
		want:  map[string]string{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, values(ObjectUsage(tt.quota, tt.gr, tt.obj, now))); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
	if Measures(schema.GroupResource{Group: "example.com", Resource: "widgets"}) || !Measures(schema.GroupResource{Group: "batch", Resource: "jobs"}) {
		t.Error("Measures: want jobs measured, widgets not")
	}
}

func TestConstraints(t *testing.T) {
	p := pod("p", "", rl("cpu", "1"), nil, func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b"})
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1", "memory", "1Gi")}}}
	})
	tests := []struct {
		required []corev1.ResourceName
		want     string
	}{
		{[]corev1.ResourceName{"pods", "requests.storage"}, ""},
		{[]corev1.ResourceName{"cpu"}, "must specify cpu for: b"},
		{[]corev1.ResourceName{"limits.cpu", "memory", "pods"}, "must specify limits.cpu for: b,c,init; memory for: b,c"},
	}
	for _, tt := range tests {
		err := Constraints(tt.required, p)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Constraints(%v) = %q, want %q", tt.required, got, tt.want)
		}
	}
	podLevel := p.DeepCopy()
	podLevel.Spec.Resources = &corev1.ResourceRequirements{Limits: rl("cpu", "2")}
	if err := Constraints([]corev1.ResourceName{"limits.cpu"}, podLevel); err != nil {
		t.Errorf("pod-level resources: %v", err)
	}
}

// The controller counts the workloads of countedKinds as admission
// charges them.
func TestUsageCounts(t *testing.T) {
	q := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: rl("count/replicasets.apps", "5", "count/jobs.batch", "5")}}
	got := values(usage(q, snapshot{counts: map[corev1.ResourceName]int{"count/replicasets.apps": 2}}, time.Now()))
	if diff := cmp.Diff(map[string]string{"count/replicasets.apps": "2", "count/jobs.batch": "0"}, got); diff != "" {
		t.Errorf("used (-want +got):\n%s", diff)
	}
}
