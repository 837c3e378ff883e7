package job

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestLedgerAfterRestart: a controller that starts afresh takes status as
// it finds it, counting the finished pods present only beyond it, and
// seeds the back-off from their finish times.
func TestLedgerAfterRestart(t *testing.T) {
	for _, tt := range []struct {
		name                     string
		statusFailed, podsFailed int32
		want                     int32
	}{
		{"status ahead of the pods (some deleted)", 3, 2, 3},
		{"pods ahead of status (failed while no controller ran)", 1, 2, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, stormJob(func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](10) }))
			s.job.Status.Failed = tt.statusFailed
			for i := range tt.podsFailed {
				p := newPod(s.job, -1, false)
				p.Name, p.UID = "old-"+string(rune('a'+i)), uid("old-"+string(rune('a'+i)))
				s.pods[p.UID] = p
				s.terminate(p, corev1.PodFailed, 1)
			}
			s.now = s.now.Add(2 * time.Second)
			d := s.step()
			if s.job.Status.Failed != tt.want {
				t.Errorf("status.failed = %d, want %d", s.job.Status.Failed, tt.want)
			}
			// Two failures behind, the last 2 s ago: 18 s to wait.
			if len(d.create) != 0 || d.requeue != 18*time.Second {
				t.Errorf("created %v, requeue %v; want none, 18s", d.create, d.requeue)
			}
			if d := s.step(); s.job.Status.Failed != tt.want || len(d.create) != 0 {
				t.Errorf("second reconcile: failed %d, created %v", s.job.Status.Failed, d.create)
			}
		})
	}
}

// TestLedgerDeleteRace: a pod deleted between a reconcile's read and its
// commit is counted once.
func TestLedgerDeleteRace(t *testing.T) {
	s := newSim(t, stormJob(nil))
	s.step()
	p := s.active()[0]
	s.terminate(p, corev1.PodFailed, 1)
	pods := []*corev1.Pod{p}
	view := s.led.view()
	d := decide(input{job: s.job, pods: pods, ledger: view, now: s.now, backoff: time.Second, maxBackoff: time.Minute})
	s.remove(p) // the delete event arrives before the commit
	s.job.Status = d.status
	s.led.commit(view, d, "")
	s.step()
	s.step()
	if s.job.Status.Failed != 1 {
		t.Errorf("status.failed = %d, want 1", s.job.Status.Failed)
	}
	if len(s.led.counted)+len(s.led.gone) != 0 {
		t.Errorf("ledger keeps %d counted and %d gone pods of a deleted pod", len(s.led.counted), len(s.led.gone))
	}
}

func TestLedgerStale(t *testing.T) {
	var ls ledgers
	l := ls.get("ns/j", "u1")
	l.commit(ledgerView{}, &decision{}, "100")
	for rv, want := range map[string]bool{"99": true, "100": false, "101": false, "": false, "x": false} {
		if got := l.stale(rv); got != want {
			t.Errorf("stale(%q) = %v, want %v", rv, got, want)
		}
	}
	if ls.get("ns/j", "u2") == l || ls.lookup("ns/j", "u1") != nil {
		t.Error("a Job of the same name with another uid kept the old ledger")
	}
}
