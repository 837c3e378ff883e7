package deployment

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
}

func rolling(replicas int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template("v2"),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
			RevisionHistoryLimit:    ptr[int32](10),
			ProgressDeadlineSeconds: ptr[int32](600),
		},
	}
}

// replicaSet is an RS of web with the given image, revision and counts,
// created age seconds after t0, its status caught up.
func replicaSet(image string, revision int64, replicas, available int32, age int) *appsv1.ReplicaSet {
	t := template(image)
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: t}}
	hash := templateHash(&d.Spec.Template, nil)
	t.Labels = withLabel(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-" + hash, Namespace: "ns", UID: types.UID("uid-" + image),
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second)),
			Annotations: map[string]string{
				RevisionAnnotation: strconv.FormatInt(revision, 10),
			},
			Labels: t.Labels,
		},
		Spec:   appsv1.ReplicaSetSpec{Replicas: ptr(replicas), Template: t},
		Status: appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: available, AvailableReplicas: available},
	}
}

// sizes returns name→spec.replicas of a plan's ReplicaSets.
func sizes(p plan) map[string]int32 {
	m := map[string]int32{}
	for _, rs := range withNew(p.oldRSs, p.newRS) {
		m[rs.Spec.Template.Spec.Containers[0].Image] = rsReplicas(rs)
	}
	return m
}

func TestFenceposts(t *testing.T) {
	for _, tc := range []struct {
		replicas                 int32
		surge, unavailable       intstr.IntOrString
		wantSurge, wantUnavail   int32
		wantMaxUnavailableCapped int32
	}{
		{10, intstr.FromString("25%"), intstr.FromString("25%"), 3, 2, 2},
		{4, intstr.FromString("25%"), intstr.FromString("25%"), 1, 1, 1},
		{1, intstr.FromString("25%"), intstr.FromString("25%"), 1, 0, 0},
		{10, intstr.FromInt32(1), intstr.FromInt32(0), 1, 0, 0},
		{2, intstr.FromString("0%"), intstr.FromString("1%"), 0, 1, 1}, // both resolve to 0 → unavailable 1
		{3, intstr.FromInt32(0), intstr.FromInt32(5), 0, 5, 3},
		{10, intstr.FromString("bad"), intstr.FromInt32(2), 0, 2, 2},
	} {
		t.Run(fmt.Sprintf("%d/%s/%s", tc.replicas, tc.surge.String(), tc.unavailable.String()), func(t *testing.T) {
			d := rolling(tc.replicas, tc.surge, tc.unavailable)
			s, u := fenceposts(d)
			if s != tc.wantSurge || u != tc.wantUnavail {
				t.Errorf("fenceposts = %d, %d; want %d, %d", s, u, tc.wantSurge, tc.wantUnavail)
			}
			if got := maxUnavailable(d); got != tc.wantMaxUnavailableCapped {
				t.Errorf("maxUnavailable = %d, want %d", got, tc.wantMaxUnavailableCapped)
			}
		})
	}
}

// simulate runs decide to completion for a rollout from image v1 to v2,
// applying each plan and letting at most one new pod become available per
// step, and checks invariants after every step.
func simulate(t *testing.T, d *appsv1.Deployment, old *appsv1.ReplicaSet, check func(step int, rss []*appsv1.ReplicaSet)) []*appsv1.ReplicaSet {
	t.Helper()
	rss := []*appsv1.ReplicaSet{old}
	now := t0.Add(time.Hour)
	for step := 0; step < 200; step++ {
		p := decide(d, rss, now)
		if p.rollback != nil {
			t.Fatalf("step %d: unexpected rollback", step)
		}
		if p.createNew {
			p.newRS.UID = "uid-new"
			p.newRS.CreationTimestamp = metav1.NewTime(now)
		}
		rss = withNew(p.oldRSs, p.newRS)
		d = p.d
		// The ReplicaSet controller: scale-downs take effect at once,
		// one new pod becomes available per step.
		for _, rs := range rss {
			spec := rsReplicas(rs)
			rs.Status.Replicas = spec
			rs.Status.AvailableReplicas = min(rs.Status.AvailableReplicas, spec)
			if rs == p.newRS && rs.Status.AvailableReplicas < spec {
				rs.Status.AvailableReplicas++
			}
			rs.Status.ReadyReplicas = rs.Status.AvailableReplicas
		}
		check(step, rss)
		if p.newRS != nil && rsReplicas(p.newRS) == replicasOf(d) && p.newRS.Status.AvailableReplicas == replicasOf(d) && sumReplicas(p.oldRSs) == 0 {
			// One more sync to settle status.
			p = decide(d, rss, now)
			if c := getCondition(&p.d.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != reasonNewRSAvailable {
				t.Fatalf("rollout done but Progressing = %+v", c)
			}
			return withNew(p.oldRSs, p.newRS)
		}
		now = now.Add(time.Second)
	}
	t.Fatal("rollout did not finish in 200 steps")
	return nil
}

func TestRollingUpdateNeverBelowAvailability(t *testing.T) {
	for _, tc := range []struct {
		name               string
		replicas           int32
		surge, unavailable intstr.IntOrString
	}{
		{"10 surge 1 unavailable 0", 10, intstr.FromInt32(1), intstr.FromInt32(0)},
		{"10 surge 25% unavailable 25%", 10, intstr.FromString("25%"), intstr.FromString("25%")},
		{"5 surge 0 unavailable 1", 5, intstr.FromInt32(0), intstr.FromInt32(1)},
		{"3 surge 100% unavailable 0", 3, intstr.FromString("100%"), intstr.FromInt32(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rolling(tc.replicas, tc.surge, tc.unavailable)
			surge, unavail := fenceposts(d)
			old := replicaSet("v1", 1, tc.replicas, tc.replicas, 0)
			steps := 0
			final := simulate(t, d, old, func(step int, rss []*appsv1.ReplicaSet) {
				steps++
				if total := sumReplicas(rss); total > tc.replicas+surge {
					t.Fatalf("step %d: %d replicas, more than %d+%d", step, total, tc.replicas, surge)
				}
				if avail := sumAvailable(rss); avail < tc.replicas-unavail {
					t.Fatalf("step %d: %d available, fewer than %d-%d", step, avail, tc.replicas, unavail)
				}
			})
			var newSize, oldSize int32
			for _, rs := range final {
				if rs.Spec.Template.Spec.Containers[0].Image == "v2" {
					newSize = rsReplicas(rs)
				} else {
					oldSize += rsReplicas(rs)
				}
			}
			if newSize != tc.replicas || oldSize != 0 {
				t.Errorf("final new=%d old=%d, want %d and 0", newSize, oldSize, tc.replicas)
			}
			if steps < int(tc.replicas/max(surge+unavail, 1)) {
				t.Errorf("finished in %d steps, faster than the limits allow", steps)
			}
		})
	}
}

func TestRollingFirstStep(t *testing.T) {
	// 10 replicas, surge 1, unavailable 0: the new RS is created with 1
	// replica and no old replica goes until it is available.
	d := rolling(10, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 10, UpdatedReplicas: 10, ReadyReplicas: 10, AvailableReplicas: 10}
	p := decide(d, []*appsv1.ReplicaSet{replicaSet("v1", 1, 10, 10, 0)}, t0)
	if !p.createNew {
		t.Fatal("new ReplicaSet not created")
	}
	if diff := cmp.Diff(map[string]int32{"v1": 10, "v2": 1}, sizes(p)); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	rs := p.newRS
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || rs.Name != "web-"+hash || rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("new RS name/labels/selector not hashed: %s %v %v", rs.Name, rs.Labels, rs.Spec.Selector)
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != "d-uid" || ref.Kind != "Deployment" {
		t.Errorf("controller ref = %+v", ref)
	}
	want := map[string]string{RevisionAnnotation: "2", DesiredReplicasAnnotation: "10", MaxReplicasAnnotation: "11"}
	for k, v := range want {
		if rs.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, rs.Annotations[k], v)
		}
	}
	if p.d.Annotations[RevisionAnnotation] != "2" {
		t.Errorf("deployment revision = %q", p.d.Annotations[RevisionAnnotation])
	}
	c := getCondition(&p.d.Status, appsv1.DeploymentProgressing)
	if c == nil || c.Reason != reasonNewRSCreated || c.Message != `Created new replica set "`+rs.Name+`"` {
		t.Errorf("Progressing = %+v", c)
	}
	if p.requeueAfter <= 0 {
		t.Errorf("no deadline requeue")
	}
}

func TestRecreate(t *testing.T) {
	d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}

	// Old pods up: scale old to 0, no new RS yet.
	p := decide(d, []*appsv1.ReplicaSet{replicaSet("v1", 1, 3, 3, 0)}, t0)
	if p.createNew || p.newRS != nil {
		t.Fatal("new RS created while old still scaled")
	}
	if diff := cmp.Diff(map[string]int32{"v1": 0}, sizes(p)); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}

	// Old scaled to 0 but pods still terminating: wait.
	old := replicaSet("v1", 1, 0, 0, 0)
	old.Status.Replicas = 2
	p = decide(d, []*appsv1.ReplicaSet{old}, t0)
	if p.newRS != nil {
		t.Fatal("new RS created while old pods run")
	}

	// Old pods gone: create the new RS with all replicas.
	p = decide(d, []*appsv1.ReplicaSet{replicaSet("v1", 1, 0, 0, 0)}, t0)
	if !p.createNew || rsReplicas(p.newRS) != 3 {
		t.Fatalf("createNew=%v new=%v", p.createNew, sizes(p))
	}
	// Recreate tolerates no unavailability.
	if c := getCondition(&p.d.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Available = %+v", c)
	}
}

func TestPaused(t *testing.T) {
	d := rolling(5, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Spec.Paused = true
	old := replicaSet("v1", 1, 3, 3, 0)
	old.Annotations[DesiredReplicasAnnotation] = "3"
	p := decide(d, []*appsv1.ReplicaSet{old}, t0)
	if p.newRS != nil {
		t.Fatal("paused deployment created a new RS")
	}
	if diff := cmp.Diff(map[string]int32{"v1": 5}, sizes(p)); diff != "" {
		t.Errorf("paused deployment not scaled (-want +got):\n%s", diff)
	}
	c := getCondition(&p.d.Status, appsv1.DeploymentProgressing)
	if c == nil || c.Reason != reasonPaused || c.Status != corev1.ConditionUnknown {
		t.Errorf("Progressing = %+v", c)
	}
	// Resume: DeploymentResumed, then the rollout proceeds.
	d = p.d
	d.Spec.Paused = false
	p = decide(d, withNew(p.oldRSs, nil), t0.Add(time.Minute))
	if !p.createNew {
		t.Error("resumed deployment did not roll out")
	}
	if c := getCondition(&p.d.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != reasonNewRSCreated {
		t.Errorf("Progressing after resume = %+v", c)
	}
}

func TestProportionalScaling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int32
		want     map[string]int32
	}{
		// 10 → 20 with surge 3: max 13 → 23; 8×23/13 = 14.2 → 14, 5×23/13 = 8.8 → 9.
		{"up", 20, map[string]int32{"v1": 14, "v2": 9}},
		// upstream's conformance test: 10 → 30, max 13 → 33; 8×33/13 = 20.3 → 20,
		// 5×33/13 = 12.7 → 13 (rounded, not floored with a remainder).
		{"conformance", 30, map[string]int32{"v1": 20, "v2": 13}},
		// 10 → 5 with surge 2 (25% of 5 rounded up): 13 → 7.
		{"down", 5, map[string]int32{"v1": 4, "v2": 3}},
		{"same", 10, map[string]int32{"v1": 8, "v2": 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rolling(tc.replicas, intstr.FromString("25%"), intstr.FromInt32(0))
			if tc.replicas != 5 {
				d.Spec.Strategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(3))
			}
			old := replicaSet("v1", 1, 8, 8, 0)
			newRS := replicaSet("v2", 2, 5, 2, 10)
			for _, rs := range []*appsv1.ReplicaSet{old, newRS} {
				rs.Annotations[DesiredReplicasAnnotation] = "10"
				rs.Annotations[MaxReplicasAnnotation] = "13"
			}
			p := decide(d, []*appsv1.ReplicaSet{old, newRS}, t0)
			if diff := cmp.Diff(tc.want, sizes(p)); diff != "" {
				t.Errorf("sizes (-want +got):\n%s", diff)
			}
			for _, rs := range withNew(p.oldRSs, p.newRS) {
				if rs.Annotations[DesiredReplicasAnnotation] != strconv.Itoa(int(tc.replicas)) {
					t.Errorf("%s desired-replicas = %q", rs.Name, rs.Annotations[DesiredReplicasAnnotation])
				}
			}
		})
	}
}

func TestProportional(t *testing.T) {
	rss := []*appsv1.ReplicaSet{replicaSet("a", 1, 1, 1, 0), replicaSet("b", 2, 1, 1, 1), replicaSet("c", 3, 1, 1, 2)}
	for _, rs := range rss {
		rs.Annotations[MaxReplicasAnnotation] = "3"
	}
	for _, tc := range []struct {
		name     string
		replicas int32 // maxSurge 0
		delta    int32
		want     []int32
	}{
		{"down to 0", 0, -3, []int32{0, 0, 0}},
		// 5/3 = 1.67 → 2 each, but only 2 may be added: newest first on ties.
		{"up by 2", 5, 2, []int32{1, 2, 2}},
		// 2/3 = 0.67 → 1 each: nothing from fractions, the leftover from the oldest.
		{"down by 1", 2, -1, []int32{0, 1, 1}},
		{"up by 3", 6, 3, []int32{2, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rolling(tc.replicas, intstr.FromInt32(0), intstr.FromInt32(1))
			got := proportional(d, rss, tc.delta)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sizes (-want +got):\n%s", diff)
			}
		})
	}
}

func sum32(v []int32) int32 {
	var n int32
	for _, x := range v {
		n += x
	}
	return n
}

func TestRevisions(t *testing.T) {
	d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
	// First rollout: revision 1.
	p := decide(d, nil, t0)
	if !p.createNew || p.newRS.Annotations[RevisionAnnotation] != "1" || rsReplicas(p.newRS) != 3 {
		t.Fatalf("first RS: create=%v annotations=%v", p.createNew, p.newRS.Annotations)
	}
	// Undo: the template is v1's again while v2 is revision 2: v1's RS
	// becomes new, revision 3, with history 1; no RS is created.
	d.Spec.Template = template("v1")
	d.Annotations = map[string]string{ChangeCauseAnnotation: "undo"}
	v1 := replicaSet("v1", 1, 0, 0, 0)
	v2 := replicaSet("v2", 2, 3, 3, 10)
	v2.Annotations[DesiredReplicasAnnotation] = "3"
	p = decide(d, []*appsv1.ReplicaSet{v1, v2}, t0)
	if p.createNew || p.newRS == nil || p.newRS.UID != v1.UID {
		t.Fatalf("undo did not reuse the old RS: %+v", p.newRS)
	}
	want := map[string]string{RevisionAnnotation: "3", RevisionHistoryAnnotation: "1", ChangeCauseAnnotation: "undo"}
	for k, v := range want {
		if p.newRS.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, p.newRS.Annotations[k], v)
		}
	}
	if p.d.Annotations[RevisionAnnotation] != "3" {
		t.Errorf("deployment revision = %q", p.d.Annotations[RevisionAnnotation])
	}
	if v1.Annotations[RevisionAnnotation] != "1" {
		t.Error("decide modified its input")
	}
}

func TestHistoryCleanup(t *testing.T) {
	d := rolling(2, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Spec.RevisionHistoryLimit = ptr[int32](2)
	rss := []*appsv1.ReplicaSet{
		replicaSet("v1", 1, 0, 0, 0),
		replicaSet("v0", 2, 0, 0, 1),
		replicaSet("v3", 3, 0, 0, 2),
		replicaSet("v4", 4, 0, 0, 3),
		replicaSet("v2", 5, 2, 2, 4), // new, complete
	}
	rss[1].Generation = 2 // status not caught up with a scale-down: kept
	p := decide(d, rss, t0)
	var got []string
	for _, rs := range p.deletes {
		got = append(got, rs.Spec.Template.Spec.Containers[0].Image)
	}
	if diff := cmp.Diff([]string{"v1"}, got); diff != "" {
		t.Errorf("deletes (-want +got):\n%s", diff)
	}
	// Without a limit nothing goes.
	d.Spec.RevisionHistoryLimit = nil
	if p := decide(d, rss, t0); len(p.deletes) != 0 {
		t.Errorf("deleted %d with no limit", len(p.deletes))
	}
}

func TestProgressDeadline(t *testing.T) {
	d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
	old := replicaSet("v1", 1, 2, 2, 0)
	newRS := replicaSet("v2", 2, 2, 1, 10)
	for _, rs := range []*appsv1.ReplicaSet{old, newRS} {
		rs.Annotations[DesiredReplicasAnnotation] = "3"
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 3}
	since := t0
	d.Status.Conditions = []appsv1.DeploymentCondition{condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, "x", since)}

	// Within the deadline: requeue for the rest of it.
	p := decide(d, []*appsv1.ReplicaSet{old, newRS}, since.Add(100*time.Second))
	if c := getCondition(&p.d.Status, appsv1.DeploymentProgressing); c.Reason != reasonRSUpdated {
		t.Errorf("Progressing = %+v", c)
	}
	if p.requeueAfter < 499*time.Second || p.requeueAfter > 501*time.Second {
		t.Errorf("requeueAfter = %v, want ~500s", p.requeueAfter)
	}

	// Past it, with no progress: ProgressDeadlineExceeded.
	p = decide(d, []*appsv1.ReplicaSet{old, newRS}, since.Add(601*time.Second))
	c := getCondition(&p.d.Status, appsv1.DeploymentProgressing)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonTimedOut || c.Message != `ReplicaSet "`+newRS.Name+`" has timed out progressing.` {
		t.Errorf("Progressing = %+v", c)
	}
	if p.requeueAfter != 0 {
		t.Errorf("requeue after timing out: %v", p.requeueAfter)
	}

	// Progress (one more available) refreshes lastUpdateTime instead.
	moreAvail := newRS.DeepCopy()
	moreAvail.Status.AvailableReplicas, moreAvail.Status.ReadyReplicas = 2, 2
	now := since.Add(601 * time.Second)
	p = decide(d, []*appsv1.ReplicaSet{old, moreAvail}, now)
	c = getCondition(&p.d.Status, appsv1.DeploymentProgressing)
	if c.Reason != reasonRSUpdated || !c.LastUpdateTime.Time.Equal(now) || !c.LastTransitionTime.Time.Equal(since) {
		t.Errorf("Progressing after progress = %+v", c)
	}
}

func TestAutoRollbackTarget(t *testing.T) {
	timedOut := func(d *appsv1.Deployment) *appsv1.Deployment {
		d = d.DeepCopy()
		d.Annotations = map[string]string{AutoRollbackAnnotation: "true"}
		d.Status.ObservedGeneration = d.Generation
		d.Status.Conditions = []appsv1.DeploymentCondition{condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, "x", t0)}
		return d
	}
	marked := func(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
		rs.Annotations[AvailableAtRevisionAnnotation] = rs.Annotations[RevisionAnnotation]
		return rs
	}
	base := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0)) // template v2
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		rss  []*appsv1.ReplicaSet
		want string // image of the target, "" for none
	}{
		{"newest marked old", timedOut(base), []*appsv1.ReplicaSet{
			marked(replicaSet("v0", 1, 0, 0, 0)), marked(replicaSet("v1", 2, 3, 3, 1)), replicaSet("v3", 3, 0, 0, 2), replicaSet("v2", 4, 1, 0, 3)}, "v1"},
		{"no marked old", timedOut(base), []*appsv1.ReplicaSet{replicaSet("v1", 1, 3, 3, 0), replicaSet("v2", 2, 1, 0, 1)}, ""},
		{"only the failing one is marked", timedOut(base), []*appsv1.ReplicaSet{replicaSet("v1", 1, 0, 0, 0), marked(replicaSet("v2", 3, 3, 0, 1))}, ""},
		{"not annotated", func() *appsv1.Deployment { d := timedOut(base); d.Annotations = nil; return d }(), []*appsv1.ReplicaSet{
			marked(replicaSet("v1", 1, 3, 3, 0)), replicaSet("v2", 2, 1, 0, 1)}, ""},
		{"not timed out", func() *appsv1.Deployment { d := timedOut(base); d.Status.Conditions = nil; return d }(), []*appsv1.ReplicaSet{
			marked(replicaSet("v1", 1, 3, 3, 0)), replicaSet("v2", 2, 1, 0, 1)}, ""},
		{"spec changed since", func() *appsv1.Deployment { d := timedOut(base); d.Generation = 2; return d }(), []*appsv1.ReplicaSet{
			marked(replicaSet("v1", 1, 3, 3, 0)), replicaSet("v2", 2, 1, 0, 1)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decide(tc.d, tc.rss, t0.Add(time.Hour))
			got := ""
			if p.rollback != nil {
				got = p.rollback.template.Spec.Containers[0].Image
				if _, ok := p.rollback.template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
					t.Error("rollback template keeps pod-template-hash")
				}
				if p.rollback.fromRevision == 0 || p.rollback.toRevision == 0 {
					t.Errorf("revisions %d → %d", p.rollback.fromRevision, p.rollback.toRevision)
				}
			}
			if got != tc.want {
				t.Errorf("target = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompleteMarksAvailable(t *testing.T) {
	d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
	newRS := replicaSet("v2", 2, 3, 3, 10)
	newRS.Annotations[DesiredReplicasAnnotation] = "3"
	p := decide(d, []*appsv1.ReplicaSet{replicaSet("v1", 1, 0, 0, 0), newRS}, t0)
	if p.newRS.Annotations[AvailableAtRevisionAnnotation] != "2" {
		t.Errorf("complete RS not marked: %v", p.newRS.Annotations)
	}
	st := p.d.Status
	if st.Replicas != 3 || st.UpdatedReplicas != 3 || st.AvailableReplicas != 3 || st.UnavailableReplicas != 0 || st.ObservedGeneration != 1 {
		t.Errorf("status = %+v", st)
	}
	if c := getCondition(&st, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != reasonMinimumAvailable {
		t.Errorf("Available = %+v", c)
	}
	if c := getCondition(&st, appsv1.DeploymentProgressing); c == nil || c.Reason != reasonNewRSAvailable {
		t.Errorf("Progressing = %+v", c)
	}
}

func TestTemplateHash(t *testing.T) {
	a, b := template("v1"), template("v2")
	h := templateHash(&a, nil)
	if h != templateHash(ptr(template("v1")), nil) {
		t.Error("hash not deterministic")
	}
	if h == templateHash(&b, nil) || h == templateHash(&a, ptr[int32](1)) {
		t.Error("hash ignores template or collision count")
	}
	if len(h) == 0 || len(h) > 10 || strings.ContainsAny(h, "aeiou") {
		t.Errorf("hash %q not a short safe encoding", h)
	}
	if templateHash(nil, nil) == "" {
		t.Error("nil template")
	}
}

func TestDecideTolerates(t *testing.T) {
	// Nil pointers everywhere a client could leave them.
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	_ = decide(d, []*appsv1.ReplicaSet{nil, {ObjectMeta: metav1.ObjectMeta{Name: "r"}}}, t0)
	d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	_ = decide(d, nil, t0)
}

func TestReplicaFailureMirrored(t *testing.T) {
	d := rolling(3, intstr.FromInt32(1), intstr.FromInt32(0))
	newRS := replicaSet("v2", 2, 3, 1, 10)
	newRS.Annotations[DesiredReplicasAnnotation] = "3"
	newRS.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "quota"}}
	p := decide(d, []*appsv1.ReplicaSet{newRS}, t0)
	var got *appsv1.DeploymentCondition
	for i := range p.d.Status.Conditions {
		if p.d.Status.Conditions[i].Type == appsv1.DeploymentReplicaFailure {
			got = &p.d.Status.Conditions[i]
		}
	}
	if got == nil || got.Reason != "FailedCreate" || got.Message != "quota" {
		t.Errorf("ReplicaFailure = %+v", got)
	}
	newRS.Status.Conditions = nil
	d.Status = p.d.Status
	p = decide(d, []*appsv1.ReplicaSet{newRS}, t0)
	for _, c := range p.d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure {
			t.Errorf("ReplicaFailure kept after it cleared: %+v", c)
		}
	}
}
