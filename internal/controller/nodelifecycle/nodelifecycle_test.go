package nodelifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { ts := metav1.NewTime(t0.Add(d)); return &ts }

func mkNode(ready corev1.ConditionStatus, hb time.Duration) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: *at(hb)}}
	}
	return n
}

func mkLease(renew time.Duration) *coordinationv1.Lease {
	return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: t0.Add(renew)}}}
}

func TestNodeHealth(t *testing.T) {
	grace := 40 * time.Second
	for _, tc := range []struct {
		name  string
		node  *corev1.Node
		lease *coordinationv1.Lease
		want  health
		stale bool
	}{
		{"fresh lease, ready", mkNode(corev1.ConditionTrue, -time.Hour), mkLease(-time.Second), healthReady, false},
		{"stale lease, stale condition", mkNode(corev1.ConditionTrue, -time.Minute), mkLease(-time.Minute), healthUnknown, true},
		{"no lease, fresh condition", mkNode(corev1.ConditionTrue, -10*time.Second), nil, healthReady, false},
		{"fresh condition beats stale lease", mkNode(corev1.ConditionTrue, -10*time.Second), mkLease(-time.Hour), healthReady, false},
		{"exactly at grace", mkNode(corev1.ConditionTrue, -grace), nil, healthReady, false},
		{"kubelet reports not ready", mkNode(corev1.ConditionFalse, 0), mkLease(0), healthNotReady, false},
		{"Unknown condition, fresh lease", mkNode(corev1.ConditionUnknown, -time.Hour), mkLease(0), healthUnknown, false},
		{"no Ready condition yet", mkNode("", 0), mkLease(0), healthPending, false},
		{"never heard of, old node", mkNode("", 0), nil, healthUnknown, true},
		{"lease without renewTime", mkNode(corev1.ConditionTrue, -time.Minute), &coordinationv1.Lease{}, healthUnknown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nodeHealth(tc.node, tc.lease, t0, grace)
			if got.health != tc.want || got.stale != tc.stale {
				t.Fatalf("health = %v stale=%v, want %v stale=%v", got.health, got.stale, tc.want, tc.stale)
			}
		})
	}
}

func TestUnknownConditions(t *testing.T) {
	n := mkNode(corev1.ConditionTrue, -time.Minute)
	n.Status.Conditions = append(n.Status.Conditions,
		corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
		corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse})
	got, changed := unknownConditions(n, t0)
	if !changed {
		t.Fatal("not changed")
	}
	byType := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range got {
		byType[c.Type] = c
	}
	r := byType[corev1.NodeReady]
	if r.Status != corev1.ConditionUnknown || r.Reason != "NodeStatusUnknown" || r.Message != "Kubelet stopped posting node status." || !r.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("Ready = %+v", r)
	}
	if !r.LastHeartbeatTime.Time.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("heartbeat changed: %v", r.LastHeartbeatTime)
	}
	if d := byType[corev1.NodeDiskPressure]; d.Status != corev1.ConditionUnknown || d.Reason != "NodeStatusNeverUpdated" {
		t.Fatalf("DiskPressure = %+v", d)
	}
	if byType[corev1.NodeNetworkUnavailable].Status != corev1.ConditionFalse {
		t.Fatal("NetworkUnavailable is not the kubelet's: must stay")
	}
	if n.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatal("input modified")
	}
	n.Status.Conditions = got
	if _, changed := unknownConditions(n, t0.Add(time.Second)); changed {
		t.Fatal("second pass changed again")
	}
}

func TestTaints(t *testing.T) {
	user := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute}
	oldUnreach := unreachableNoExecute
	oldUnreach.TimeAdded = at(-time.Minute)
	key := func(ts []corev1.Taint) []string {
		var out []string
		for _, t := range ts {
			s := t.Key + ":" + string(t.Effect)
			if t.TimeAdded != nil {
				s += "@" + t.TimeAdded.Time.Sub(t0).String()
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		node    func(*corev1.Node)
		current []corev1.Taint
		h       health
		want    []string
		changed bool
	}{
		{"ready, nothing", nil, nil, healthReady, nil, false},
		{"unknown adds unreachable", nil, []corev1.Taint{user}, healthUnknown,
			[]string{"dedicated:NoExecute", "node.kubernetes.io/unreachable:NoExecute@0s", "node.kubernetes.io/unreachable:NoSchedule"}, true},
		{"unknown keeps timeAdded", nil, []corev1.Taint{oldUnreach, unreachableNoSched}, healthUnknown,
			[]string{"node.kubernetes.io/unreachable:NoExecute@-1m0s", "node.kubernetes.io/unreachable:NoSchedule"}, false},
		{"not ready swaps unreachable for not-ready", nil, []corev1.Taint{oldUnreach, unreachableNoSched}, healthNotReady,
			[]string{"node.kubernetes.io/not-ready:NoExecute@0s", "node.kubernetes.io/not-ready:NoSchedule"}, true},
		{"ready removes all, keeps user's", nil, []corev1.Taint{user, oldUnreach, notReadyNoSched}, healthReady,
			[]string{"dedicated:NoExecute"}, true},
		{"pending keeps readiness taints", nil, []corev1.Taint{oldUnreach}, healthPending,
			[]string{"node.kubernetes.io/unreachable:NoExecute@-1m0s"}, false},
		{"pressure and unschedulable", func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Status.Conditions = []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse},
			}
		}, nil, healthReady,
			[]string{"node.kubernetes.io/memory-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &corev1.Node{Spec: corev1.NodeSpec{Taints: tc.current}}
			if tc.node != nil {
				tc.node(n)
			}
			got, changed := reconcileTaints(tc.current, wantedTaints(n, tc.h), t0)
			if diff := cmp.Diff(tc.want, key(got)); diff != "" || changed != tc.changed {
				t.Fatalf("changed=%v (want %v), taints (-want +got):\n%s", changed, tc.changed, diff)
			}
		})
	}
}

func TestEvictionTime(t *testing.T) {
	unreach := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: at(0)}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: at(10 * time.Second)}
	noSched := corev1.Taint{Key: "x", Effect: corev1.TaintEffectNoSchedule}
	untimed := corev1.Taint{Key: "y", Effect: corev1.TaintEffectNoExecute}
	tol := func(key string, secs *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	all := corev1.Toleration{Operator: corev1.TolerationOpExists}
	since := func(corev1.Taint) time.Time { return t0.Add(time.Hour) }
	for _, tc := range []struct {
		name   string
		taints []corev1.Taint
		tols   []corev1.Toleration
		evict  bool
		at     time.Time
	}{
		{"no taints", nil, nil, false, time.Time{}},
		{"NoSchedule only", []corev1.Taint{noSched}, nil, false, time.Time{}},
		{"not tolerated", []corev1.Taint{unreach}, nil, true, time.Time{}},
		{"tolerated for good", []corev1.Taint{unreach}, []corev1.Toleration{tol(unreach.Key, nil)}, false, time.Time{}},
		{"tolerate all", []corev1.Taint{unreach, notReady, untimed}, []corev1.Toleration{all}, false, time.Time{}},
		{"for 300s", []corev1.Taint{unreach}, []corev1.Toleration{tol(unreach.Key, ptr.To[int64](300))}, true, t0.Add(300 * time.Second)},
		{"smallest seconds wins", []corev1.Taint{unreach}, []corev1.Toleration{tol(unreach.Key, ptr.To[int64](300)), tol("", ptr.To[int64](5))}, true, t0.Add(5 * time.Second)},
		{"earliest taint wins", []corev1.Taint{notReady, unreach},
			[]corev1.Toleration{tol(notReady.Key, ptr.To[int64](1)), tol(unreach.Key, ptr.To[int64](30))}, true, t0.Add(11 * time.Second)},
		{"one of two not tolerated", []corev1.Taint{unreach, notReady}, []corev1.Toleration{tol(unreach.Key, nil)}, true, time.Time{}},
		{"negative seconds: at taint time", []corev1.Taint{unreach}, []corev1.Toleration{tol(unreach.Key, ptr.To[int64](-5))}, true, t0},
		{"no timeAdded: since", []corev1.Taint{untimed}, []corev1.Toleration{tol("y", ptr.To[int64](2))}, true, t0.Add(time.Hour + 2*time.Second)},
		{"wrong effect does not tolerate", []corev1.Taint{unreach},
			[]corev1.Toleration{{Key: unreach.Key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}, true, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evict, when := evictionTime(tc.taints, tc.tols, since)
			if evict != tc.evict || !when.Equal(tc.at) {
				t.Fatalf("evict=%v at=%v, want %v at %v", evict, when, tc.evict, tc.at)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	l := newLimiter(0.5, clk)
	if d := l.wait(); d != 0 {
		t.Fatalf("first wait %v", d)
	}
	if d := l.wait(); d != 2*time.Second {
		t.Fatalf("second wait %v, want 2s", d)
	}
	clk.Step(2 * time.Second)
	if d := l.wait(); d != 0 {
		t.Fatalf("after the interval: %v", d)
	}
	if d := newLimiter(0, clk).wait(); d != 0 {
		t.Fatalf("unbounded: %v", d)
	}
}
