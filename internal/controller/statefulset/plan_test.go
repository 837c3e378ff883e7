package statefulset

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Unix(100000, 0)

type podOpt func(*corev1.Pod)

func mkPod(ordinal int, rev string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name:   podName("web", ordinal),
		Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: rev},
		UID:    "uid",
	}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func healthy(p *corev1.Pod) {
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}
}

func readyFor(d time.Duration) podOpt {
	return func(p *corev1.Pod) {
		healthy(p)
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-d))
	}
}

func pending(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }
func failed(p *corev1.Pod)  { p.Status.Phase = corev1.PodFailed }
func terminating(p *corev1.Pod) {
	healthy(p)
	t := metav1.NewTime(now)
	p.DeletionTimestamp = &t
}

func snap(replicas int, pods ...*corev1.Pod) snapshot {
	return snapshot{set: "web", replicas: replicas, rolling: true, current: "web-old", update: "web-old", pods: pods, now: now}
}

func TestDecide(t *testing.T) {
	withUpdate := func(s snapshot, partition int) snapshot {
		s.update, s.partition = "web-new", partition
		return s
	}
	parallel := func(s snapshot) snapshot { s.parallel = true; return s }
	tests := []struct {
		name       string
		snap       snapshot
		wantCreate []create
		wantDelete []string
	}{
		{"ordered: first pod", snap(3), []create{{0, "web-old"}}, nil},
		{"ordered: next after ready", snap(3, mkPod(0, "web-old", healthy)), []create{{1, "web-old"}}, nil},
		{"ordered: wait for pending", snap(3, mkPod(0, "web-old", pending)), nil, nil},
		{"ordered: wait for terminating", snap(3, mkPod(0, "web-old", terminating)), nil, nil},
		{"ordered: wait minReadySeconds", func() snapshot {
			s := snap(3, mkPod(0, "web-old", readyFor(time.Second)))
			s.minReady = 10
			return s
		}(), nil, nil},
		{"ordered: fill a gap", snap(3, mkPod(0, "web-old", healthy), mkPod(2, "web-old", healthy)), []create{{1, "web-old"}}, nil},
		{"ordered: failed pod deleted", snap(2, mkPod(0, "web-old", failed), mkPod(1, "web-old", healthy)), nil, []string{"web-0"}},
		{"ordered: steady", snap(2, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy)), nil, nil},
		{"parallel: all at once", parallel(snap(3)), []create{{0, "web-old"}, {1, "web-old"}, {2, "web-old"}}, nil},
		{"parallel: no waiting", parallel(snap(3, mkPod(1, "web-old", pending))), []create{{0, "web-old"}, {2, "web-old"}}, nil},
		{"ordered: scale down highest first", snap(1, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-old", healthy)), nil, []string{"web-2"}},
		{"ordered: scale down waits for terminating", snap(1, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-old", terminating)), nil, nil},
		{"ordered: scale down blocked by unhealthy lower", snap(1, mkPod(0, "web-old", healthy), mkPod(1, "web-old", pending), mkPod(2, "web-old", healthy)), nil, nil},
		{"ordered: scale down the unhealthy top", snap(1, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-old", pending)), nil, []string{"web-2"}},
		{"ordered: scale down waits for lower ordinals", snap(1, mkPod(0, "web-old", pending), mkPod(1, "web-old", healthy)), nil, nil},
		{"parallel: scale down all", parallel(snap(1, mkPod(0, "web-old", healthy), mkPod(1, "web-old", pending), mkPod(2, "web-old", healthy))), nil, []string{"web-2", "web-1"}},
		{"update: highest first", withUpdate(snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-old", healthy)), 0), nil, []string{"web-2"}},
		{"update: next below", withUpdate(snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-new", healthy)), 0), nil, []string{"web-1"}},
		{"update: wait for updated pod", withUpdate(snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-new", pending)), 0), nil, nil},
		{"update: recreate at update revision", withUpdate(snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy)), 0), []create{{2, "web-new"}}, nil},
		{"update: partition 2 touches only web-2", withUpdate(snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-new", healthy)), 2), nil, nil},
		{"update: partition 2 deletes web-2", withUpdate(snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy), mkPod(2, "web-old", healthy)), 2), nil, []string{"web-2"}},
		{"update: below partition recreated at current", withUpdate(snap(3, mkPod(1, "web-old", healthy), mkPod(2, "web-new", healthy)), 2), []create{{0, "web-old"}}, nil},
		{"update: OnDelete leaves pods", func() snapshot {
			s := withUpdate(snap(2, mkPod(0, "web-old", healthy), mkPod(1, "web-old", healthy)), 0)
			s.rolling = false
			return s
		}(), nil, nil},
		{"update: OnDelete recreates at update", func() snapshot {
			s := withUpdate(snap(2, mkPod(1, "web-old", healthy)), 0)
			s.rolling = false
			return s
		}(), []create{{0, "web-new"}}, nil},
		{"ordinals start", func() snapshot { s := snap(2, mkPod(5, "web-old", healthy)); s.start = 5; return s }(), []create{{6, "web-old"}}, nil},
		{"ordinals start condemns below", func() snapshot {
			s := snap(1, mkPod(0, "web-old", healthy), mkPod(5, "web-old", healthy))
			s.start = 5
			return s
		}(), nil, []string{"web-0"}},
		{"foreign names ignored", snap(1, mkPod(0, "web-old", healthy), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-x"}}), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.snap)
			if d := cmp.Diff(tc.wantCreate, got.create, cmp.AllowUnexported(create{})); d != "" {
				t.Errorf("create (-want +got):\n%s", d)
			}
			var names []string
			for _, p := range got.delete {
				names = append(names, p.Name)
			}
			if d := cmp.Diff(tc.wantDelete, names); d != "" {
				t.Errorf("delete (-want +got):\n%s", d)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 4}}
	for _, tc := range []struct {
		name string
		snap snapshot
		want appsv1.StatefulSetStatus
	}{
		{"rolling out", func() snapshot {
			s := snap(3, mkPod(0, "web-old", healthy), mkPod(1, "web-old", pending), mkPod(2, "web-new", healthy))
			s.update = "web-new"
			return s
		}(), appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2,
			CurrentReplicas: 2, UpdatedReplicas: 1, CurrentRevision: "web-old", UpdateRevision: "web-new"}},
		{"rolled out", func() snapshot {
			s := snap(2, mkPod(0, "web-new", healthy), mkPod(1, "web-new", healthy))
			s.update = "web-new"
			return s
		}(), appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
			CurrentReplicas: 2, UpdatedReplicas: 2, CurrentRevision: "web-new", UpdateRevision: "web-new"}},
		{"not yet scaled", snap(2, mkPod(0, "web-old", healthy)),
			appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				CurrentReplicas: 1, UpdatedReplicas: 1, CurrentRevision: "web-old", UpdateRevision: "web-old"}},
		{"min ready seconds", func() snapshot {
			s := snap(1, mkPod(0, "web-old", readyFor(2*time.Second)))
			s.minReady = 5
			return s
		}(), appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 0,
			CurrentReplicas: 1, UpdatedReplicas: 1, CurrentRevision: "web-old", UpdateRevision: "web-old"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, status(set, tc.snap)); d != "" {
				t.Errorf("status (-want +got):\n%s", d)
			}
		})
	}
	s := snap(1, mkPod(0, "web-old", readyFor(2*time.Second)))
	s.minReady = 5
	if got := untilAvailable(s); got != 3*time.Second {
		t.Errorf("untilAvailable = %v, want 3s", got)
	}
}
