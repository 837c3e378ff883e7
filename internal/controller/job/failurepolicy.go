package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// matchFailurePolicy returns the action of the first rule of policy that
// the failed pod p matches and, for FailJob, the message of the Job's
// condition in upstream's words. ok is false when no rule matches: the
// failure then counts as it would without a policy.
func matchFailurePolicy(policy *batchv1.PodFailurePolicy, p *corev1.Pod) (action batchv1.PodFailurePolicyAction, msg string, ok bool) {
	if policy == nil {
		return "", "", false
	}
	for i, rule := range policy.Rules {
		switch {
		case rule.OnExitCodes != nil:
			cs := matchExitCodes(&p.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			if rule.Action == batchv1.PodFailurePolicyActionFailJob {
				msg = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
					cs.Name, p.Namespace, p.Name, cs.State.Terminated.ExitCode, rule.Action, i)
			}
		case rule.OnPodConditions != nil:
			cond := matchPodConditions(&p.Status, rule.OnPodConditions)
			if cond == nil {
				continue
			}
			if rule.Action == batchv1.PodFailurePolicyActionFailJob {
				msg = fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d",
					p.Namespace, p.Name, cond.Type, rule.Action, i)
			}
		default:
			continue
		}
		switch rule.Action {
		case batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore,
			batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex:
			return rule.Action, msg, true
		}
		// An action this controller does not know (from a newer API)
		// matches nothing, as upstream's switch does.
		msg = ""
	}
	return "", "", false
}

// countsFailure reports whether a failed pod uses up backoffLimit (and
// backoffLimitPerIndex): it does unless it matched an Ignore rule.
func countsFailure(policy *batchv1.PodFailurePolicy, p *corev1.Pod) bool {
	a, _, ok := matchFailurePolicy(policy, p)
	return !ok || a != batchv1.PodFailurePolicyActionIgnore
}

// matchExitCodes returns the first terminated container (regular ones
// first, then init containers) with a non-zero exit code that req selects.
func matchExitCodes(st *corev1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{st.ContainerStatuses, st.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			t := cs.State.Terminated
			if t == nil || t.ExitCode == 0 || (req.ContainerName != nil && *req.ContainerName != cs.Name) {
				continue
			}
			in := slices.Contains(req.Values, t.ExitCode)
			if (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) ||
				(req.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in) {
				return cs
			}
		}
	}
	return nil
}

// matchPodConditions returns the first condition of the pod that one of
// the patterns names with the same status.
func matchPodConditions(st *corev1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		for _, pat := range patterns {
			if c.Type == pat.Type && c.Status == pat.Status {
				return c
			}
		}
	}
	return nil
}

// failJobMessage returns the message of the first failed pod that matches
// a FailJob rule of the Job's podFailurePolicy, if any.
func failJobMessage(job *batchv1.Job, failed []*corev1.Pod) (string, bool) {
	if job.Spec.PodFailurePolicy == nil {
		return "", false
	}
	for _, p := range failed {
		if a, msg, ok := matchFailurePolicy(job.Spec.PodFailurePolicy, p); ok && a == batchv1.PodFailurePolicyActionFailJob {
			return msg, true
		}
	}
	return "", false
}
