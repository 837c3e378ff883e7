package job

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// sim runs decide and the ledger the way sync does, with the API and the
// clock simulated: created pods go into a map, deleted ones leave it (and
// reach the ledger as a delete event would), time moves only when the
// test moves it.
type sim struct {
	t       *testing.T
	job     *batchv1.Job
	pods    map[types.UID]*corev1.Pod
	led     *ledger
	now     time.Time
	next    int
	created []time.Time // creation time of every pod, in order
}

func newSim(t *testing.T, job *batchv1.Job) *sim {
	t.Helper()
	var ls ledgers
	return &sim{t: t, job: job, pods: map[types.UID]*corev1.Pod{}, led: ls.get("default/"+job.Name, job.UID), now: t0}
}

func uid(name string) types.UID { return types.UID("uid-" + name) }

// step is one reconcile at s.now.
func (s *sim) step() *decision {
	s.t.Helper()
	pods := make([]*corev1.Pod, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	view := s.led.view()
	d := decide(input{job: s.job, pods: pods, ledger: view, now: s.now, backoff: DefaultPodFailureBackoff, maxBackoff: MaxPodFailureBackoff})
	s.led.deleting(d.remove)
	for _, p := range d.remove {
		s.remove(p)
	}
	for _, ix := range d.create {
		p := newPod(s.job, ix, d.indexed)
		if f, ok := d.failures[ix]; ok {
			setIndexFailures(p, f[0], f[1])
		}
		p.Name = fmt.Sprintf("%s%d", p.GenerateName, s.next)
		p.UID = uid(p.Name)
		p.CreationTimestamp = metav1.NewTime(s.now)
		p.Status.Phase = corev1.PodPending
		s.next++
		s.pods[p.UID] = p
		s.created = append(s.created, s.now)
		d.status.Active++
	}
	s.job.Status = d.status
	s.led.commit(view, d, "")
	return d
}

// remove deletes p from the simulated API: an unscheduled pod goes at
// once, and the informer's delete event hands its final state to the
// ledger.
func (s *sim) remove(p *corev1.Pod) {
	delete(s.pods, p.UID)
	s.led.podDeleted(p)
}

func (s *sim) active() []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range s.pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// terminate finishes p at s.now in phase with a container exit code.
func (s *sim) terminate(p *corev1.Pod, phase corev1.PodPhase, exitCode int32) {
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, FinishedAt: metav1.NewTime(s.now)}}}}
}

// failureMode is one way a Job's pod can fail.
type failureMode struct {
	name   string
	mutate func(*batchv1.Job)
	// fail makes pod p fail at s.now; after runs after the reconcile
	// that saw the failure.
	fail, after func(s *sim, p *corev1.Pod)
	// counts is whether the failure counts toward backoffLimit (and
	// the Job fails after backoffLimit+1 pods).
	counts bool
}

var failureModes = []failureMode{
	{name: "pod Failed", counts: true,
		fail: func(s *sim, p *corev1.Pod) { s.terminate(p, corev1.PodFailed, 1) }},
	{name: "pod Failed, then deleted after it was counted", counts: true,
		fail:  func(s *sim, p *corev1.Pod) { s.terminate(p, corev1.PodFailed, 1) },
		after: func(s *sim, p *corev1.Pod) { s.remove(p) }},
	{name: "pod Failed and deleted before the controller saw it", counts: true,
		fail: func(s *sim, p *corev1.Pod) { s.terminate(p, corev1.PodFailed, 1); s.remove(p) }},
	{name: "running pod being deleted (evicted)", counts: true,
		fail: func(s *sim, p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.DeletionTimestamp = ptr.To(metav1.NewTime(s.now))
			p.DeletionGracePeriodSeconds = ptr.To[int64](0)
		}},
	{name: "running pod deleted outright", counts: true,
		fail: func(s *sim, p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.DeletionTimestamp = ptr.To(metav1.NewTime(s.now))
			s.remove(p)
		}},
	{name: "OnFailure pod Failed", counts: true,
		mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
		fail:   func(s *sim, p *corev1.Pod) { s.terminate(p, corev1.PodFailed, 1) }},
	{name: "failure ignored by podFailurePolicy still backs off", counts: false,
		mutate: func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}}}}
		},
		fail: func(s *sim, p *corev1.Pod) { s.terminate(p, corev1.PodFailed, 42) }},
	{name: "failing index (backoffLimitPerIndex)", counts: true,
		mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.BackoffLimitPerIndex = ptr.To[int32](4)
			j.Spec.BackoffLimit = ptr.To[int32](1000)
		},
		fail: func(s *sim, p *corev1.Pod) { s.terminate(p, corev1.PodFailed, 1) }},
}

func stormJob(mutate func(*batchv1.Job)) *batchv1.Job {
	j := testJob()
	j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](1), ptr.To[int32](1)
	j.Spec.BackoffLimit = ptr.To[int32](4)
	j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if mutate != nil {
		mutate(j)
	}
	return j
}

// TestBackoffEveryFailurePath runs a Job whose pods always fail, each
// after running 5 s, through each way a pod can fail, reconciling often
// (every second, as pod and Job events would). A replacement must come
// exactly when the back-off ends (10 s, 20 s, 40 s, 80 s after each
// failure), never before, and a Job whose failures count must fail after
// backoffLimit+1 pods, never creating more.
func TestBackoffEveryFailurePath(t *testing.T) {
	const run = 5 * time.Second
	for _, mode := range failureModes {
		t.Run(mode.name, func(t *testing.T) {
			s := newSim(t, stormJob(mode.mutate))
			s.step()
			for failure := 1; failure <= 8; failure++ {
				act := s.active()
				if len(act) != 1 {
					t.Fatalf("failure %d: %d active pods, want 1", failure, len(act))
				}
				s.now = s.now.Add(run)
				mode.fail(s, act[0])
				d := s.step()
				if mode.after != nil {
					mode.after(s, act[0])
				}
				if mode.counts && failure == 5 {
					if findCondition(s.job.Status.Conditions, batchv1.JobFailureTarget) == nil || len(d.create) != 0 {
						t.Fatalf("after %d failures with backoffLimit 4: conditions %+v, creating %v", failure, s.job.Status.Conditions, d.create)
					}
					break
				}
				backoff := min(DefaultPodFailureBackoff<<(failure-1), MaxPodFailureBackoff)
				if len(d.create) != 0 || d.requeue != backoff {
					t.Fatalf("failure %d: created %v, requeue %v; want none and requeue %v", failure, d.create, d.requeue, backoff)
				}
				failedAt := s.now
				for s.now.Add(time.Second).Before(failedAt.Add(backoff)) {
					s.now = s.now.Add(time.Second)
					if d := s.step(); len(d.create) != 0 || d.requeue != failedAt.Add(backoff).Sub(s.now) {
						t.Fatalf("failure %d, %v later: created %v, requeue %v", failure, s.now.Sub(failedAt), d.create, d.requeue)
					}
				}
				s.now = failedAt.Add(backoff)
				if d := s.step(); len(d.create) != 1 {
					t.Fatalf("failure %d: back-off over but created %v", failure, d.create)
				}
				if got, want := s.created[len(s.created)-1].Sub(s.created[len(s.created)-2]), run+backoff; got != want {
					t.Fatalf("failure %d: pod created %v after the previous, want %v", failure, got, want)
				}
			}
			// Pods still terminating finish; the Job is then done.
			for _, p := range s.pods {
				if p.DeletionTimestamp != nil {
					s.remove(p)
				}
			}
			s.step()
			wantPods := 9
			if mode.counts {
				wantPods = 5 // backoffLimit + 1
			}
			if len(s.created) != wantPods {
				t.Errorf("%d pods created, want %d", len(s.created), wantPods)
			}
			if mode.counts {
				if s.job.Status.Failed != 5 {
					t.Errorf("status.failed = %d, want 5", s.job.Status.Failed)
				}
				if findCondition(s.job.Status.Conditions, batchv1.JobFailed) == nil {
					t.Errorf("job not Failed: %+v", s.job.Status.Conditions)
				}
			} else if s.job.Status.Failed != 0 {
				t.Errorf("ignored failures counted: status.failed = %d", s.job.Status.Failed)
			}
		})
	}
}

// TestBackoffResetBySuccess: with parallelism 2, a success after failures
// starts the count again, so the next failure waits 10 s, not 40 s.
func TestBackoffResetBySuccess(t *testing.T) {
	s := newSim(t, stormJob(func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](10), ptr.To[int32](1)
		j.Spec.BackoffLimit = ptr.To[int32](100)
	}))
	s.step()
	for range 3 {
		s.now = s.now.Add(time.Second)
		s.terminate(s.active()[0], corev1.PodFailed, 1)
		d := s.step()
		s.now = s.now.Add(d.requeue)
		s.step()
	}
	s.now = s.now.Add(time.Second)
	s.terminate(s.active()[0], corev1.PodSucceeded, 0)
	if d := s.step(); len(d.create) != 1 {
		t.Fatalf("after a success: created %v, want a pod at once", d.create)
	}
	s.now = s.now.Add(time.Second)
	s.terminate(s.active()[0], corev1.PodFailed, 1)
	if d := s.step(); d.requeue != DefaultPodFailureBackoff {
		t.Errorf("first failure after a success: requeue %v, want %v", d.requeue, DefaultPodFailureBackoff)
	}
}

// TestOnFailureRestartsCreateNoPods: with restartPolicy OnFailure the
// kubelet restarts containers in place; the controller creates no pod for
// a restart and fails the Job once the restarts reach backoffLimit.
func TestOnFailureRestartsCreateNoPods(t *testing.T) {
	s := newSim(t, stormJob(func(j *batchv1.Job) {
		j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		j.Spec.BackoffLimit = ptr.To[int32](3)
	}))
	s.step()
	p := s.active()[0]
	p.Status.Phase = corev1.PodRunning
	for restarts := int32(1); restarts <= 3; restarts++ {
		s.now = s.now.Add(10 * time.Second)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: restarts}}
		if d := s.step(); len(d.create) != 0 {
			t.Fatalf("restart %d created pods %v", restarts, d.create)
		}
	}
	s.step() // the failing Job's pod is gone: Failed
	if c := findCondition(s.job.Status.Conditions, batchv1.JobFailed); c == nil || c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("conditions %+v, want Failed BackoffLimitExceeded", s.job.Status.Conditions)
	}
	if len(s.created) != 1 {
		t.Errorf("%d pods created, want 1", len(s.created))
	}
}

// TestBackoffPerIndexIsIndependent: with backoffLimitPerIndex a failing
// index waits out its own back-off while the other indexes run, and the
// replacement carries the index's failure count.
func TestBackoffPerIndexIsIndependent(t *testing.T) {
	s := newSim(t, stormJob(func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		j.Spec.BackoffLimitPerIndex = ptr.To[int32](2)
		j.Spec.BackoffLimit = ptr.To[int32](1000)
	}))
	s.step()
	byIndex := func() map[int]*corev1.Pod {
		m := map[int]*corev1.Pod{}
		for _, p := range s.active() {
			ix, _ := podIndex(p)
			m[ix] = p
		}
		return m
	}
	for _, p := range s.active() {
		if p.Annotations[batchv1.JobIndexFailureCountAnnotation] != "0" {
			t.Errorf("pod %s failure count %q, want 0", p.Name, p.Annotations[batchv1.JobIndexFailureCountAnnotation])
		}
	}
	s.now = s.now.Add(time.Second)
	s.terminate(byIndex()[0], corev1.PodFailed, 1)
	d := s.step()
	if len(d.create) != 0 || d.requeue != 10*time.Second {
		t.Fatalf("index 0 failed: created %v, requeue %v; want none, 10s", d.create, d.requeue)
	}
	// Index 1 fails 5 s later: it waits its own 10 s, index 0 is held
	// until its own back-off ends.
	s.now = s.now.Add(5 * time.Second)
	s.terminate(byIndex()[1], corev1.PodFailed, 1)
	if d := s.step(); len(d.create) != 0 || d.requeue != 5*time.Second {
		t.Fatalf("index 1 failed: created %v, requeue %v; want none, 5s", d.create, d.requeue)
	}
	s.now = s.now.Add(5 * time.Second)
	if d := s.step(); !slices.Equal(d.create, []int{0}) || d.requeue != 5*time.Second {
		t.Fatalf("index 0 back-off over: created %v, requeue %v; want [0], 5s", d.create, d.requeue)
	}
	if got := byIndex()[0].Annotations[batchv1.JobIndexFailureCountAnnotation]; got != "1" {
		t.Errorf("replacement for index 0 failure count %q, want 1", got)
	}
	// Its second failure doubles the index's back-off.
	s.now = s.now.Add(time.Second)
	s.terminate(byIndex()[0], corev1.PodFailed, 1)
	if d := s.step(); len(d.create) != 0 || d.requeue != 4*time.Second {
		t.Fatalf("index 0 failed again: created %v, requeue %v; want none, 4s (index 1)", d.create, d.requeue)
	}
	s.now = s.now.Add(4 * time.Second)
	if d := s.step(); !slices.Equal(d.create, []int{1}) || d.requeue != 16*time.Second {
		t.Fatalf("index 1 back-off over: created %v, requeue %v; want [1], 16s (index 0's 20s)", d.create, d.requeue)
	}
}
