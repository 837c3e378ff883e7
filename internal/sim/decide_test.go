package sim

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNextAction(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tm := timing{startDelay: time.Second, runTime: 2 * time.Second, runPods: true}

	running := func(policy corev1.RestartPolicy, images ...string) *corev1.Pod {
		p := testPod(policy, images...)
		p.Status = runningStatus(p, "127.0.0.2", "10.128.0.1", metav1.NewTime(t0))
		return p
	}
	phase := func(p *corev1.Pod, ph corev1.PodPhase) *corev1.Pod { p.Status.Phase = ph; return p }
	deleting := testPod(corev1.RestartPolicyAlways, "nginx")
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	crashedOnce := running(corev1.RestartPolicyAlways, "fail")
	crashedOnce.Status = crashedStatus(crashedOnce, metav1.NewTime(at(2*time.Second)))
	gateOpened := running(corev1.RestartPolicyAlways, "nginx")
	gateOpened.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
	gateOpened.Status.Conditions = append(gateOpened.Status.Conditions, corev1.PodCondition{Type: "example.com/lb", Status: corev1.ConditionTrue})
	setPodCondition(&gateOpened.Status, corev1.PodReady, corev1.ConditionFalse, reasonGatesNotReady, metav1.NewTime(t0))

	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		times    podTimes
		timing   *timing // nil: tm
		now      time.Time
		wantAct  podAction
		wantWait time.Duration
	}{
		{name: "nil", pod: nil, now: t0, wantAct: actNone},
		{name: "deleting", pod: deleting, now: t0, wantAct: actDelete},
		{name: "deleting when not running pods", pod: deleting, timing: &timing{}, now: t0, wantAct: actDelete},
		{name: "pending, not running pods", pod: testPod(corev1.RestartPolicyAlways, "nginx"), timing: &timing{}, now: t0, wantAct: actNone},
		{name: "pending before delay", pod: testPod(corev1.RestartPolicyAlways, "nginx"), times: podTimes{seen: t0}, now: at(300 * time.Millisecond), wantAct: actNone, wantWait: 700 * time.Millisecond},
		{name: "pending after delay", pod: testPod(corev1.RestartPolicyAlways, "nginx"), times: podTimes{seen: t0}, now: at(time.Second), wantAct: actStart},
		{name: "pending no delay", pod: testPod(corev1.RestartPolicyAlways, "nginx"), timing: &timing{runPods: true}, now: t0, wantAct: actStart},
		{name: "always runs on", pod: running(corev1.RestartPolicyAlways, "nginx"), times: podTimes{started: t0}, now: at(time.Hour), wantAct: actNone},
		{name: "never before run time", pod: running(corev1.RestartPolicyNever, "job"), times: podTimes{started: t0}, now: at(500 * time.Millisecond), wantAct: actNone, wantWait: 1500 * time.Millisecond},
		{name: "never after run time", pod: running(corev1.RestartPolicyNever, "job"), times: podTimes{started: t0}, now: at(2 * time.Second), wantAct: actComplete},
		{name: "never, start from status", pod: running(corev1.RestartPolicyNever, "job"), now: at(3 * time.Second), wantAct: actComplete},
		{name: "never fail completes", pod: running(corev1.RestartPolicyNever, "fail"), times: podTimes{started: t0}, now: at(2 * time.Second), wantAct: actComplete},
		{name: "onfailure completes", pod: running(corev1.RestartPolicyOnFailure, "job"), times: podTimes{started: t0}, now: at(2 * time.Second), wantAct: actComplete},
		{name: "onfailure fail crashes", pod: running(corev1.RestartPolicyOnFailure, "fail"), times: podTimes{started: t0}, now: at(2 * time.Second), wantAct: actCrash},
		{name: "always fail waits", pod: running(corev1.RestartPolicyAlways, "fail"), times: podTimes{started: t0}, now: at(time.Second), wantAct: actNone, wantWait: time.Second},
		{name: "always fail crashes", pod: running(corev1.RestartPolicyAlways, "fail"), times: podTimes{started: t0}, now: at(2 * time.Second), wantAct: actCrash},
		{name: "second crash backs off", pod: crashedOnce, times: podTimes{started: t0, crashed: at(2 * time.Second)}, now: at(3 * time.Second), wantAct: actNone, wantWait: 3 * time.Second},
		{name: "second crash from status", pod: crashedOnce, now: at(6 * time.Second), wantAct: actCrash},
		{name: "succeeded", pod: phase(running(corev1.RestartPolicyNever, "job"), corev1.PodSucceeded), now: at(time.Hour), wantAct: actNone},
		{name: "failed", pod: phase(running(corev1.RestartPolicyNever, "job"), corev1.PodFailed), now: at(time.Hour), wantAct: actNone},
		{name: "readiness gate opened", pod: gateOpened, times: podTimes{started: t0}, now: at(time.Second), wantAct: actReadiness},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timing := tm
			if tc.timing != nil {
				timing = *tc.timing
			}
			act, wait := nextAction(tc.pod, tc.times, timing, tc.now)
			if act != tc.wantAct || wait != tc.wantWait {
				t.Errorf("nextAction = %s, %v; want %s, %v", act, wait, tc.wantAct, tc.wantWait)
			}
		})
	}
}
