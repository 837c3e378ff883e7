package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testTemplate(t *testing.T, zones int) nodeTemplate {
	t.Helper()
	c := Defaults()
	capacity, err := c.capacity()
	if err != nil {
		t.Fatal(err)
	}
	return nodeTemplate{
		capacity:    capacity,
		labels:      map[string]string{"pool": "sim"},
		zoneCount:   zones,
		taints:      []corev1.Taint{{Key: "dedicated", Value: "sim", Effect: corev1.TaintEffectNoSchedule}},
		kubeletPort: 12345,
	}
}

func TestBuildNode(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := buildNode(testTemplate(t, 3), "sim-node-4", 4, now)

	wantLabels := map[string]string{
		"pool":                   "sim",
		corev1.LabelHostname:     "sim-node-4",
		corev1.LabelOSStable:     "linux",
		corev1.LabelArchStable:   "amd64",
		corev1.LabelTopologyZone: "zone-1",
		SimLabel:                 "true",
	}
	if diff := cmp.Diff(wantLabels, n.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "dedicated" {
		t.Errorf("taints = %v", n.Spec.Taints)
	}
	for name, want := range map[corev1.ResourceName]string{
		corev1.ResourceCPU: "32", corev1.ResourceMemory: "256Gi", corev1.ResourcePods: "110", corev1.ResourceEphemeralStorage: "1Ti",
	} {
		for _, list := range []corev1.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
			if q := list[name]; q.Cmp(resource.MustParse(want)) != 0 {
				t.Errorf("%s = %s, want %s", name, q.String(), want)
			}
		}
	}
	if !nodeReady(n) {
		t.Errorf("node not Ready: %v", n.Status.Conditions)
	}
	for _, typ := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		i := findNodeCondition(n.Status.Conditions, typ)
		if i < 0 || n.Status.Conditions[i].Status != corev1.ConditionFalse {
			t.Errorf("condition %s missing or not False: %v", typ, n.Status.Conditions)
		}
	}
	wantAddrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.6"}, {Type: corev1.NodeHostName, Address: "sim-node-4"}}
	if diff := cmp.Diff(wantAddrs, n.Status.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 12345 {
		t.Errorf("kubelet port = %d, want the template's 12345", got)
	}
	if n.Status.NodeInfo.KubeletVersion != KubeletVersion || n.Status.NodeInfo.OperatingSystem != "linux" {
		t.Errorf("nodeInfo = %+v", n.Status.NodeInfo)
	}
	if buildNode(testTemplate(t, 0), "x", 4, now).Labels[corev1.LabelTopologyZone] != "" {
		t.Error("zone label set with ZoneCount 0")
	}
}

func TestHealthyConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	healthyNow, _ := healthyConditions(nil, t0)
	unknown := append([]corev1.NodeCondition(nil), healthyNow...)
	i := findNodeCondition(unknown, corev1.NodeReady)
	unknown[i] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", LastTransitionTime: t0}
	custom := append(append([]corev1.NodeCondition(nil), healthyNow...), corev1.NodeCondition{Type: "NetworkUnavailable", Status: corev1.ConditionFalse})

	for _, tc := range []struct {
		name        string
		in          []corev1.NodeCondition
		wantChanged bool
	}{
		{name: "none", in: nil, wantChanged: true},
		{name: "healthy", in: healthyNow, wantChanged: false},
		{name: "ready unknown", in: unknown, wantChanged: true},
		{name: "custom kept", in: custom, wantChanged: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changed := healthyConditions(tc.in, t1)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if !nodeReady(&corev1.Node{Status: corev1.NodeStatus{Conditions: out}}) {
				t.Errorf("not Ready after: %v", out)
			}
			for _, c := range tc.in {
				if isHealthyType(c.Type) {
					continue
				}
				if j := findNodeCondition(out, c.Type); j < 0 || out[j] != c {
					t.Errorf("condition %s not kept: %v", c.Type, out)
				}
			}
			if !tc.wantChanged {
				if diff := cmp.Diff(tc.in, out); diff != "" {
					t.Errorf("unchanged conditions rewritten (-in +out):\n%s", diff)
				}
			}
			if j := findNodeCondition(out, corev1.NodeReady); tc.name == "ready unknown" && out[j].LastTransitionTime != t1 {
				t.Errorf("Ready transition time = %v, want %v", out[j].LastTransitionTime, t1)
			}
		})
	}
}

func TestMergeNodeMeta(t *testing.T) {
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1", "b": "2"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}}},
	}
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	for _, tc := range []struct {
		name        string
		cur         *corev1.Node
		wantLabels  map[string]string
		wantTaints  []corev1.Taint
		wantChanged bool
	}{
		{
			name:        "empty",
			cur:         &corev1.Node{},
			wantLabels:  map[string]string{"a": "1", "b": "2"},
			wantTaints:  want.Spec.Taints,
			wantChanged: true,
		},
		{
			name: "already there, others kept",
			cur: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1", "b": "2", "c": "3"}},
				Spec:       corev1.NodeSpec{Taints: []corev1.Taint{unreachable, want.Spec.Taints[0]}},
			},
			wantLabels: map[string]string{"a": "1", "b": "2", "c": "3"},
			wantTaints: []corev1.Taint{unreachable, want.Spec.Taints[0]},
		},
		{
			name: "value changed",
			cur: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "0", "b": "2"}},
				Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Value: "old", Effect: corev1.TaintEffectNoSchedule}}},
			},
			wantLabels:  map[string]string{"a": "1", "b": "2"},
			wantTaints:  want.Spec.Taints,
			wantChanged: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.cur.DeepCopy()
			out, changed := mergeNodeMeta(tc.cur, want)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if diff := cmp.Diff(tc.wantLabels, out.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTaints, out.Spec.Taints); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.cur); diff != "" {
				t.Errorf("input modified:\n%s", diff)
			}
		})
	}
}

func TestLeasePhase(t *testing.T) {
	const interval = 10 * time.Second
	// The first renewal spreads over (0, interval]: 1,000 nodes land in
	// most of ten buckets.
	buckets := map[int]int{}
	for i := range 1000 {
		d := leasePhase(fmt.Sprintf("%s%d", DefaultNamePrefix, i), interval)
		if d <= 0 || d > interval {
			t.Fatalf("delay %v outside (0, %v]", d, interval)
		}
		buckets[int(d*10/interval)]++
	}
	for b := range 10 {
		if buckets[b] < 50 {
			t.Errorf("bucket %d holds %d of 1000 nodes: not spread (%v)", b, buckets[b], buckets)
		}
	}
}
