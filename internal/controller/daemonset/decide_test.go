package daemonset

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func node(name string, lbls map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: corev1.NodeSpec{Taints: taints}}
}

func TestNodeFit(t *testing.T) {
	noSched := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	noExec := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute}
	prefer := corev1.Taint{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}
	cordoned := corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	netDown := corev1.Taint{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}
	affinity := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	expr := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: vals}}}
	}
	tests := []struct {
		name string
		node *corev1.Node
		spec corev1.PodSpec
		want fit
	}{
		{"plain node", node("a", nil), corev1.PodSpec{}, fit{true, true}},
		{"node selector matches", node("a", map[string]string{"disk": "ssd"}), corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, fit{true, true}},
		{"node selector misses", node("a", nil), corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, fit{}},
		{"affinity In", node("a", map[string]string{"zone": "z1"}), corev1.PodSpec{Affinity: affinity(expr("zone", corev1.NodeSelectorOpIn, "z1", "z2"))}, fit{true, true}},
		{"affinity NotIn", node("a", map[string]string{"zone": "z1"}), corev1.PodSpec{Affinity: affinity(expr("zone", corev1.NodeSelectorOpNotIn, "z1"))}, fit{}},
		{"affinity terms ORed", node("a", map[string]string{"zone": "z3"}), corev1.PodSpec{Affinity: affinity(expr("zone", corev1.NodeSelectorOpIn, "z1"), expr("zone", corev1.NodeSelectorOpExists))}, fit{true, true}},
		{"affinity Gt", node("a", map[string]string{"cores": "8"}), corev1.PodSpec{Affinity: affinity(expr("cores", corev1.NodeSelectorOpGt, "4"))}, fit{true, true}},
		{"affinity Lt fails", node("a", map[string]string{"cores": "8"}), corev1.PodSpec{Affinity: affinity(expr("cores", corev1.NodeSelectorOpLt, "4"))}, fit{}},
		{"affinity matchFields name", node("b", nil), corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}})}, fit{}},
		{"empty terms match nothing", node("a", nil), corev1.PodSpec{Affinity: affinity()}, fit{}},
		{"untolerated NoSchedule: keep existing", node("a", nil, noSched), corev1.PodSpec{}, fit{false, true}},
		{"untolerated NoExecute: evict", node("a", nil, noExec), corev1.PodSpec{}, fit{}},
		{"PreferNoSchedule ignored", node("a", nil, prefer), corev1.PodSpec{}, fit{true, true}},
		{"tolerated by Equal", node("a", nil, noSched), corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}}, fit{true, true}},
		{"wrong value not tolerated", node("a", nil, noSched), corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Value: "cpu"}}}, fit{false, true}},
		{"tolerate everything", node("a", nil, noSched, noExec), corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}, fit{true, true}},
		{"cordoned and not ready tolerated by daemon tolerations", node("a", nil, cordoned, notReady), corev1.PodSpec{}, fit{true, true}},
		{"network unavailable: only hostNetwork tolerates", node("a", nil, netDown), corev1.PodSpec{}, fit{false, true}},
		{"network unavailable with hostNetwork", node("a", nil, netDown), corev1.PodSpec{HostNetwork: true}, fit{true, true}},
		{"nil node", nil, corev1.PodSpec{}, fit{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec.DeepCopy()
			addDaemonTolerations(spec)
			if got := nodeFit(tt.node, &corev1.Pod{Spec: *spec}); got != tt.want {
				t.Errorf("nodeFit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// dpod is a daemon pod for node with hash; ready pods are available.
func dpod(name, node, hash string, ready bool, created int) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: hash},
		CreationTimestamp: metav1.NewTime(now.Add(time.Duration(created) * time.Second))}}
	pinToNode(&p.Spec, node)
	p.Status.Phase = corev1.PodRunning
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}}
	}
	return p
}

var run = fit{true, true}

func TestDecide(t *testing.T) {
	failed := dpod("failed", "a", "new", false, 0)
	failed.Status.Phase = corev1.PodFailed
	tests := []struct {
		name       string
		nodes      []nodeView
		r          rollout
		wantCreate []string
		wantRemove []string
	}{
		{name: "pods for nodes that need them",
			nodes:      []nodeView{{name: "a", fit: run}, {name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "new", true, 0)}}, {name: "c", fit: fit{}}},
			r:          rollout{maxUnavailable: 1},
			wantCreate: []string{"a"}},
		{name: "NoSchedule node keeps its pod, gets none new",
			nodes: []nodeView{{name: "a", fit: fit{false, true}, pods: []*corev1.Pod{dpod("pa", "a", "new", true, 0)}}, {name: "b", fit: fit{false, true}}},
			r:     rollout{maxUnavailable: 1}},
		{name: "ineligible node loses its pod",
			nodes:      []nodeView{{name: "a", fit: fit{}, pods: []*corev1.Pod{dpod("pa", "a", "new", true, 0)}}},
			r:          rollout{maxUnavailable: 1},
			wantRemove: []string{"pa"}},
		{name: "failed pod replaced",
			nodes:      []nodeView{{name: "a", fit: run, pods: []*corev1.Pod{failed}}},
			r:          rollout{maxUnavailable: 1},
			wantCreate: []string{"a"}, wantRemove: []string{"failed"}},
		{name: "duplicates: oldest stays",
			nodes:      []nodeView{{name: "a", fit: run, pods: []*corev1.Pod{dpod("young", "a", "new", true, 5), dpod("old", "a", "new", true, 1)}}},
			r:          rollout{maxUnavailable: 1},
			wantRemove: []string{"young"}},
		{name: "rolling update: one at a time",
			nodes: []nodeView{
				{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "old", true, 0)}},
				{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0)}},
				{name: "c", fit: run, pods: []*corev1.Pod{dpod("pc", "c", "old", true, 0)}}},
			r:          rollout{maxUnavailable: 1},
			wantRemove: []string{"pa"}},
		{name: "rolling update waits while a node is unavailable",
			nodes: []nodeView{
				{name: "a", fit: run},
				{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0)}}},
			r:          rollout{maxUnavailable: 1},
			wantCreate: []string{"a"}},
		{name: "rolling update deletes unavailable old pods for free",
			nodes: []nodeView{
				{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "old", false, 0)}},
				{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0)}},
				{name: "c", fit: run, pods: []*corev1.Pod{dpod("pc", "c", "old", true, 0)}}},
			r:          rollout{maxUnavailable: 2},
			wantRemove: []string{"pa", "pb"}},
		{name: "OnDelete never deletes old pods",
			nodes:      []nodeView{{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "old", true, 0)}}, {name: "b", fit: run}},
			r:          rollout{onDelete: true},
			wantCreate: []string{"b"}},
		{name: "surge: new pod beside old, up to maxSurge",
			nodes: []nodeView{
				{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "old", true, 0)}},
				{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0)}}},
			r:          rollout{maxSurge: 1},
			wantCreate: []string{"a"}},
		{name: "surge: old goes once new is available",
			nodes: []nodeView{
				{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "old", true, 0), dpod("na", "a", "new", true, 1)}},
				{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0)}}},
			r:          rollout{maxSurge: 1},
			wantCreate: []string{"b"}, wantRemove: []string{"pa"}},
		{name: "surge: budget used by a starting pod",
			nodes: []nodeView{
				{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "old", true, 0), dpod("na", "a", "new", false, 1)}},
				{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0)}}},
			r: rollout{maxSurge: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(tt.nodes, "new", tt.r, now)
			var removed []string
			for _, pod := range p.remove {
				removed = append(removed, pod.Name)
			}
			if diff := cmp.Diff(tt.wantCreate, p.create); diff != "" {
				t.Errorf("create (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRemove, removed); diff != "" {
				t.Errorf("remove (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRolloutFor(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	tests := []struct {
		name    string
		st      appsv1.DaemonSetUpdateStrategy
		desired int
		want    rollout
	}{
		{"defaults", appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}, 10, rollout{maxUnavailable: 1}},
		{"percent rounds up", appsv1.DaemonSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: pct("25%")}}, 10, rollout{maxUnavailable: 3}},
		{"surge", appsv1.DaemonSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(0), MaxSurge: num(2)}}, 10, rollout{maxSurge: 2}},
		{"both zero", appsv1.DaemonSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(0), MaxSurge: num(0)}}, 10, rollout{maxUnavailable: 1}},
		{"on delete", appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}, 10, rollout{onDelete: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: tt.st}}
			if got := rolloutFor(ds, tt.desired); got != tt.want {
				t.Errorf("rolloutFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCountNodes(t *testing.T) {
	nodes := []nodeView{
		{name: "a", fit: run, pods: []*corev1.Pod{dpod("pa", "a", "new", true, 0)}},
		{name: "b", fit: run, pods: []*corev1.Pod{dpod("pb", "b", "old", true, 0), dpod("nb", "b", "new", false, 1)}},
		{name: "c", fit: run},
		{name: "d", fit: fit{false, true}, pods: []*corev1.Pod{dpod("pd", "d", "new", true, 0)}},
		{name: "e", fit: run, pods: []*corev1.Pod{dpod("pe", "e", "old", true, 0)}},
	}
	got := countNodes(nodes, "new", 0, now)
	want := counts{desired: 4, current: 3, misscheduled: 1, ready: 2, available: 2, updated: 2}
	if got != want {
		t.Errorf("countNodes = %+v, want %+v", got, want)
	}
}

func TestNewPodAndRevision(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", UID: "u",
		Annotations: map[string]string{appsv1.DeprecatedTemplateGeneration: "3"}},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}
	p := newPod(ds, "n1", "h1")
	if podNode(p) != "n1" || p.Spec.NodeName != "" {
		t.Errorf("pod node = %q, nodeName %q", podNode(p), p.Spec.NodeName)
	}
	if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != "h1" || p.Labels[templateGenerationLabel] != "3" || p.Labels["app"] != "agent" {
		t.Errorf("labels = %v", p.Labels)
	}
	if len(p.Spec.Tolerations) != len(daemonTolerations) {
		t.Errorf("tolerations = %v", p.Spec.Tolerations)
	}
	if ds.Spec.Template.Spec.Tolerations != nil || ds.Spec.Template.Spec.Affinity != nil {
		t.Error("template modified")
	}
	h1 := templateHash(&ds.Spec.Template, nil)
	if h1 != templateHash(ds.Spec.Template.DeepCopy(), nil) || h1 == templateHash(&ds.Spec.Template, ptr.To[int32](1)) {
		t.Error("hash not stable or ignores collisionCount")
	}
	data, err := revisionData(ds)
	if err != nil {
		t.Fatal(err)
	}
	if !sameData(data, []byte(`{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"app":"agent"}},"spec":{"containers":[{"name":"c","image":"i","resources":{}}]}}}}`)) {
		t.Errorf("revision data = %s", data)
	}
}

func TestRevisionsToPrune(t *testing.T) {
	rev := func(name, hash string, n int64) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: hash}}, Revision: n}
	}
	revs := []*appsv1.ControllerRevision{rev("ds-c", "c", 3), rev("ds-a", "a", 1), rev("ds-b", "b", 2), rev("ds-d", "d", 4)}
	got := revisionsToPrune(revs, "ds-d", map[string]bool{"a": true}, 1)
	if len(got) != 1 || got[0].Name != "ds-b" {
		t.Errorf("prune = %v, want [ds-b]", got)
	}
	if got := revisionsToPrune(revs, "ds-d", nil, 10); got != nil {
		t.Errorf("prune under limit = %v", got)
	}
}
