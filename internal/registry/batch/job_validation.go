package batch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry/core"
)

// Upstream's limits on job specs.
const (
	maxParallelismForIndexedJob  = 100000
	maxFailedIndexesLimit        = 100000
	maxPodFailurePolicyRules     = 20
	maxPodFailurePolicyExitCodes = 255
	maxPodFailurePolicyConds     = 20
	maxSuccessPolicyRules        = 20
	maxManagedByLength           = 63
)

// validateJob checks a job: the generated selector (unless manual), the
// spec and the selector matching the template. requirePrefixedLabels asks
// for the batch.kubernetes.io/ pod labels too (always on create; on update
// only when the stored job has them, as upstream).
func validateJob(job *batchv1.Job, requirePrefixedLabels bool) field.ErrorList {
	errs := validateGeneratedSelector(job, requirePrefixedLabels)
	return append(errs, validateJobSpec(&job.Spec, field.NewPath("spec"))...)
}

// validateGeneratedSelector checks that a job without a manual selector
// has the selector and pod labels PrepareForCreate generated: a client that
// set its own conflicting ones is rejected.
func validateGeneratedSelector(job *batchv1.Job, requirePrefixedLabels bool) field.ErrorList {
	if job.Spec.ManualSelector != nil && *job.Spec.ManualSelector {
		return nil
	}
	if job.Spec.Selector == nil {
		return nil // reported by validateJobSpec
	}
	var errs field.ErrorList
	if job.UID == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "uid"), ""))
	}
	meta := field.NewPath("spec", "template", "metadata")
	expect := map[string]string{
		legacyControllerUIDLabel: string(job.UID),
		legacyJobNameLabel:       job.Name,
	}
	keys := []string{legacyControllerUIDLabel, legacyJobNameLabel}
	if requirePrefixedLabels {
		expect[batchv1.ControllerUidLabel] = string(job.UID)
		expect[batchv1.JobNameLabel] = job.Name
		keys = append(keys, batchv1.ControllerUidLabel, batchv1.JobNameLabel)
	}
	for _, k := range keys {
		errs = append(errs, validateHasLabel(job.Spec.Template.Labels, meta, k, expect[k])...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !sel.Matches(labels.Set(expect)) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

// validateHasLabel is upstream's ValidateHasLabel.
func validateHasLabel(l map[string]string, fldPath *field.Path, key, want string) field.ErrorList {
	got, found := l[key]
	switch {
	case !found:
		return field.ErrorList{field.Required(fldPath.Child("labels").Key(key), want)}
	case got != want:
		return field.ErrorList{field.Invalid(fldPath.Child("labels").Key(key), got, want)}
	}
	return nil
}

// validateJobSpec checks a job's spec including its selector.
func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	errs := validateJobSpecCommon(spec, fldPath)
	if spec.Selector == nil {
		errs = append(errs, field.Required(fldPath.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector,
			metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels,
			"`selector` does not match template `labels`"))
	}
	return errs
}

// validateJobSpecCommon checks what jobs and cronjob job templates share:
// counts and limits, completion mode, failure and success policies, pod
// replacement, the pod template and its restart policy.
func validateJobSpecCommon(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonnegative32(spec.Parallelism, fldPath.Child("parallelism"))...)
	errs = append(errs, nonnegative32(spec.Completions, fldPath.Child("completions"))...)
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(*spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	}
	errs = append(errs, nonnegative32(spec.BackoffLimit, fldPath.Child("backoffLimit"))...)
	errs = append(errs, nonnegative32(spec.TTLSecondsAfterFinished, fldPath.Child("ttlSecondsAfterFinished"))...)
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if spec.BackoffLimitPerIndex != nil {
		errs = append(errs, nonnegative32(spec.BackoffLimitPerIndex, fldPath.Child("backoffLimitPerIndex"))...)
		if !indexed {
			errs = append(errs, field.Forbidden(fldPath.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
		}
	}
	if m := spec.MaxFailedIndexes; m != nil {
		errs = append(errs, nonnegative32(m, fldPath.Child("maxFailedIndexes"))...)
		if spec.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Required(fldPath.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
		if spec.Completions != nil && *m > *spec.Completions {
			errs = append(errs, field.Invalid(fldPath.Child("maxFailedIndexes"), *m, "must be less than or equal to completions"))
		}
		if *m > maxFailedIndexesLimit {
			errs = append(errs, field.Invalid(fldPath.Child("maxFailedIndexes"), *m, fmt.Sprintf("must be less than or equal to %d", maxFailedIndexesLimit)))
		}
	}
	if mode := spec.CompletionMode; mode != nil {
		switch *mode {
		case batchv1.NonIndexedCompletion:
		case batchv1.IndexedCompletion:
			if spec.Completions == nil {
				errs = append(errs, field.Required(fldPath.Child("completions"), "when completion mode is Indexed"))
			}
			if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
				errs = append(errs, field.Invalid(fldPath.Child("parallelism"), *spec.Parallelism,
					fmt.Sprintf("must be less than or equal to %d when completion mode is Indexed", maxParallelismForIndexedJob)))
			}
		default:
			errs = append(errs, field.NotSupported(fldPath.Child("completionMode"), *mode,
				[]string{string(batchv1.NonIndexedCompletion), string(batchv1.IndexedCompletion)}))
		}
	}
	if spec.PodFailurePolicy != nil {
		errs = append(errs, validatePodFailurePolicy(spec, fldPath.Child("podFailurePolicy"))...)
	}
	if spec.SuccessPolicy != nil {
		errs = append(errs, validateSuccessPolicy(spec, fldPath.Child("successPolicy"))...)
	}
	errs = append(errs, validatePodReplacementPolicy(spec, fldPath.Child("podReplacementPolicy"))...)
	if m := spec.ManagedBy; m != nil {
		p := fldPath.Child("managedBy")
		errs = append(errs, validation.IsDomainPrefixedPath(p, *m)...)
		if len(*m) > maxManagedByLength {
			errs = append(errs, field.TooLongMaxLength(p, *m, maxManagedByLength))
		}
	}

	errs = append(errs, core.ValidatePodTemplateSpec(&spec.Template, fldPath.Child("template"))...)
	rp := fldPath.Child("template", "spec", "restartPolicy")
	switch policy := spec.Template.Spec.RestartPolicy; {
	case hasErrorAt(errs, rp):
		// The pod rules rejected the value already; once is enough.
	case policy == corev1.RestartPolicyAlways || policy == "":
		// Always is the pod default, so an unset policy arrives as Always.
		errs = append(errs, field.Required(rp, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case policy != corev1.RestartPolicyOnFailure && policy != corev1.RestartPolicyNever:
		errs = append(errs, field.NotSupported(rp, policy, []string{string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	case spec.PodFailurePolicy != nil && policy != corev1.RestartPolicyNever:
		errs = append(errs, field.Invalid(rp, policy, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

func validatePodReplacementPolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	p := spec.PodReplacementPolicy
	if p == nil {
		return nil
	}
	if spec.PodFailurePolicy != nil {
		if *p != batchv1.Failed {
			return field.ErrorList{field.NotSupported(fldPath, *p, []string{string(batchv1.Failed)})}
		}
		return nil
	}
	if *p != batchv1.Failed && *p != batchv1.TerminatingOrFailed {
		return field.ErrorList{field.NotSupported(fldPath, *p, []string{string(batchv1.Failed), string(batchv1.TerminatingOrFailed)})}
	}
	return nil
}

// validatePodFailurePolicy checks spec.podFailurePolicy's rules: a known
// action, exactly one of onExitCodes and onPodConditions, and well-formed
// requirements.
func validatePodFailurePolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	rules := spec.PodFailurePolicy.Rules
	rulesPath := fldPath.Child("rules")
	if len(rules) > maxPodFailurePolicyRules {
		errs = append(errs, field.TooMany(rulesPath, len(rules), maxPodFailurePolicyRules))
	}
	containers := map[string]bool{}
	for _, c := range spec.Template.Spec.Containers {
		containers[c.Name] = true
	}
	for _, c := range spec.Template.Spec.InitContainers {
		containers[c.Name] = true
	}
	actions := []string{string(batchv1.PodFailurePolicyActionCount), string(batchv1.PodFailurePolicyActionFailIndex),
		string(batchv1.PodFailurePolicyActionFailJob), string(batchv1.PodFailurePolicyActionIgnore)}
	for i, rule := range rules {
		rp := rulesPath.Index(i)
		ap := rp.Child("action")
		switch rule.Action {
		case "":
			errs = append(errs, field.Required(ap, fmt.Sprintf("valid values: %q", actions)))
		case batchv1.PodFailurePolicyActionFailIndex:
			if spec.BackoffLimitPerIndex == nil {
				errs = append(errs, field.Invalid(ap, rule.Action, "requires the backoffLimitPerIndex to be set"))
			}
		case batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore:
		default:
			errs = append(errs, field.NotSupported(ap, rule.Action, actions))
		}
		if rule.OnExitCodes != nil {
			errs = append(errs, validateOnExitCodes(rule.OnExitCodes, rp.Child("onExitCodes"), containers)...)
		}
		if len(rule.OnPodConditions) > 0 {
			errs = append(errs, validateOnPodConditions(rule.OnPodConditions, rp.Child("onPodConditions"))...)
		}
		switch {
		case rule.OnExitCodes != nil && len(rule.OnPodConditions) > 0:
			errs = append(errs, field.Invalid(rp, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		case rule.OnExitCodes == nil && len(rule.OnPodConditions) == 0:
			errs = append(errs, field.Invalid(rp, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
	}
	return errs
}

func validateOnExitCodes(req *batchv1.PodFailurePolicyOnExitCodesRequirement, fldPath *field.Path, containers map[string]bool) field.ErrorList {
	var errs field.ErrorList
	if req.ContainerName != nil && !containers[*req.ContainerName] {
		errs = append(errs, field.Invalid(fldPath.Child("containerName"), *req.ContainerName,
			"must be one of the container or initContainer names in the pod template"))
	}
	op := fldPath.Child("operator")
	switch req.Operator {
	case batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn:
	case "":
		errs = append(errs, field.Required(op, `valid values: ["In" "NotIn"]`))
	default:
		errs = append(errs, field.NotSupported(op, req.Operator, []string{"In", "NotIn"}))
	}
	vp := fldPath.Child("values")
	switch {
	case len(req.Values) == 0:
		errs = append(errs, field.Invalid(vp, req.Values, "at least one value is required"))
	case len(req.Values) > maxPodFailurePolicyExitCodes:
		errs = append(errs, field.TooMany(vp, len(req.Values), maxPodFailurePolicyExitCodes))
	}
	for i, v := range req.Values {
		switch {
		case req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && v == 0:
			errs = append(errs, field.Invalid(vp.Index(i), v, "must not be 0 for the In operator"))
		case i > 0 && req.Values[i-1] == v:
			errs = append(errs, field.Duplicate(vp.Index(i), v))
		case i > 0 && req.Values[i-1] > v:
			errs = append(errs, field.Invalid(vp.Index(i), v, "must be ordered"))
		}
	}
	return errs
}

func validateOnPodConditions(conds []batchv1.PodFailurePolicyOnPodConditionsPattern, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(conds) > maxPodFailurePolicyConds {
		errs = append(errs, field.TooMany(fldPath, len(conds), maxPodFailurePolicyConds))
	}
	statuses := []string{string(corev1.ConditionFalse), string(corev1.ConditionTrue), string(corev1.ConditionUnknown)}
	for i, c := range conds {
		p := fldPath.Index(i)
		switch c.Status {
		case corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown:
		case "":
			errs = append(errs, field.Required(p.Child("status"), fmt.Sprintf("valid values: %q", statuses)))
		default:
			errs = append(errs, field.NotSupported(p.Child("status"), c.Status, statuses))
		}
		if c.Type == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		} else {
			for _, msg := range validation.IsQualifiedName(string(c.Type)) {
				errs = append(errs, field.Invalid(p.Child("type"), c.Type, msg))
			}
		}
	}
	return errs
}

// validateSuccessPolicy checks spec.successPolicy: Indexed jobs only, and
// each rule names indexes below completions or a count up to completions.
func validateSuccessPolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		var mode interface{}
		if spec.CompletionMode != nil {
			mode = string(*spec.CompletionMode)
		}
		errs = append(errs, field.Invalid(field.NewPath("spec", "completionMode"), mode, "requires indexed completion mode"))
	}
	rules := spec.SuccessPolicy.Rules
	rp := fldPath.Child("rules")
	switch {
	case len(rules) == 0:
		errs = append(errs, field.Required(rp, "at least one rules must be specified when the successPolicy is specified"))
	case len(rules) > maxSuccessPolicyRules:
		errs = append(errs, field.TooMany(rp, len(rules), maxSuccessPolicyRules))
	}
	completions := int32(0)
	if spec.Completions != nil {
		completions = *spec.Completions
	}
	for i, rule := range rules {
		p := rp.Index(i)
		if rule.SucceededCount == nil && rule.SucceededIndexes == nil {
			errs = append(errs, field.Required(p, "at least one of succeededCount or succeededIndexes must be specified"))
		}
		var total int32 = -1
		if rule.SucceededIndexes != nil {
			n, err := countIndexes(*rule.SucceededIndexes, completions)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("succeededIndexes"), *rule.SucceededIndexes, err.Error()))
			}
			total = n
		}
		if c := rule.SucceededCount; c != nil {
			switch {
			case *c < 0:
				errs = append(errs, field.Invalid(p.Child("succeededCount"), *c, "must be greater than or equal to 0"))
			case *c > completions:
				errs = append(errs, field.Invalid(p.Child("succeededCount"), *c, fmt.Sprintf("must be less than or equal to %d (the number of specified completions)", completions)))
			case total >= 0 && *c > total:
				errs = append(errs, field.Invalid(p.Child("succeededCount"), *c, fmt.Sprintf("must be less than or equal to %d (the number of indexes in the specified succeededIndexes field)", total)))
			}
		}
	}
	return errs
}

// countIndexes parses an index list ("1,3-5,7"): ascending, non-overlapping
// intervals below completions. It returns how many indexes it names.
func countIndexes(s string, completions int32) (int32, error) {
	var total int32
	prev := int64(-1)
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.ParseInt(lo, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("error parsing %q: %w", part, err)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseInt(hi, 10, 32); err != nil {
				return 0, fmt.Errorf("error parsing %q: %w", part, err)
			}
		}
		switch {
		case first > last:
			return 0, fmt.Errorf("non-increasing order, previous: %d, current: %d", first, last)
		case first <= prev:
			return 0, fmt.Errorf("overlapping intervals or non-increasing order at %q", part)
		case last >= int64(completions):
			return 0, fmt.Errorf("too large: %d", last)
		}
		prev = last
		total += int32(last - first + 1)
	}
	return total, nil
}

// validateJobUpdate validates the new job and what may not change:
// selector, template (but for the scheduling directives of a suspended job
// that never started), completions (but for elastic Indexed jobs),
// completionMode, podFailurePolicy, backoffLimitPerIndex, successPolicy and
// managedBy.
func validateJobUpdate(obj, old runtime.Object) field.ErrorList {
	job, ok1 := obj.(*batchv1.Job)
	o, ok2 := old.(*batchv1.Job)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	_, hadPrefixed := o.Spec.Template.Labels[batchv1.ControllerUidLabel]
	errs := validateJob(job, hadPrefixed)
	spec, oldSpec, p := &job.Spec, &o.Spec, field.NewPath("spec")
	errs = append(errs, validateCompletionsUpdate(spec, oldSpec, p.Child("completions"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.Selector, oldSpec.Selector, p.Child("selector"))...)
	errs = append(errs, validateJobTemplateUpdate(job, o, p.Child("template"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.CompletionMode, oldSpec.CompletionMode, p.Child("completionMode"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, p.Child("podFailurePolicy"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.SuccessPolicy, oldSpec.SuccessPolicy, p.Child("successPolicy"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.ManagedBy, oldSpec.ManagedBy, p.Child("managedBy"))...)
	return errs
}

// validateCompletionsUpdate: completions is immutable, except that an
// Indexed job may change it together with parallelism (elastic jobs).
func validateCompletionsUpdate(spec, oldSpec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if !indexed {
		return apimachineryvalidation.ValidateImmutableField(spec.Completions, oldSpec.Completions, fldPath)
	}
	if apiequality.Semantic.DeepEqual(spec.Completions, oldSpec.Completions) || spec.Completions == nil {
		return nil // nil is reported by the spec validation
	}
	if spec.Parallelism == nil || *spec.Completions != *spec.Parallelism {
		return field.ErrorList{field.Invalid(fldPath, *spec.Completions, "can only be modified in tandem with spec.parallelism")}
	}
	return nil
}

// validateJobTemplateUpdate keeps spec.template immutable. A job that is
// suspended and has never started may change its pods' scheduling
// directives (node selector, tolerations, node affinity, scheduling gates)
// and template labels and annotations, as upstream allows for queueing
// controllers.
func validateJobTemplateUpdate(job, old *batchv1.Job, fldPath *field.Path) field.ErrorList {
	t := &job.Spec.Template
	oldT := &old.Spec.Template
	suspended := old.Spec.Suspend != nil && *old.Spec.Suspend
	if suspended && old.Status.StartTime == nil {
		oldT = oldT.DeepCopy()
		switch {
		case t.Spec.Affinity == nil && oldT.Spec.Affinity != nil:
			oldT.Spec.Affinity.NodeAffinity = nil
			if apiequality.Semantic.DeepEqual(*oldT.Spec.Affinity, corev1.Affinity{}) {
				oldT.Spec.Affinity = nil
			}
		case t.Spec.Affinity != nil && oldT.Spec.Affinity == nil:
			oldT.Spec.Affinity = &corev1.Affinity{NodeAffinity: t.Spec.Affinity.NodeAffinity}
		case t.Spec.Affinity != nil && oldT.Spec.Affinity != nil:
			oldT.Spec.Affinity.NodeAffinity = t.Spec.Affinity.NodeAffinity
		}
		oldT.Spec.NodeSelector = t.Spec.NodeSelector
		oldT.Spec.Tolerations = t.Spec.Tolerations
		oldT.Spec.SchedulingGates = t.Spec.SchedulingGates
		oldT.Labels = t.Labels
		oldT.Annotations = t.Annotations
	}
	return apimachineryvalidation.ValidateImmutableField(t, oldT, fldPath)
}

// validateJobStatusUpdate checks a status write: counters non-negative.
// Upstream checks much more (condition transitions, index sets, uncounted
// pods); the job controller is skiff's own and keeps those consistent.
func validateJobStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return wrongType(obj)
	}
	s, p := &job.Status, field.NewPath("status")
	var errs field.ErrorList
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(s.Active), p.Child("active"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(s.Succeeded), p.Child("succeeded"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(s.Failed), p.Child("failed"))...)
	errs = append(errs, nonnegative32(s.Ready, p.Child("ready"))...)
	errs = append(errs, nonnegative32(s.Terminating, p.Child("terminating"))...)
	if s.CompletionTime != nil && s.StartTime != nil && s.CompletionTime.Before(s.StartTime) {
		errs = append(errs, field.Invalid(p.Child("completionTime"), s.CompletionTime, "completionTime cannot be set before startTime"))
	}
	if s.UncountedTerminatedPods != nil {
		u := s.UncountedTerminatedPods
		if dup := firstDuplicate(append(slices.Clone(u.Succeeded), u.Failed...)); dup != "" {
			errs = append(errs, field.Duplicate(p.Child("uncountedTerminatedPods"), dup))
		}
	}
	return errs
}

func firstDuplicate[T comparable](items []T) T {
	seen := make(map[T]bool, len(items))
	var zero T
	for _, it := range items {
		if seen[it] {
			return it
		}
		seen[it] = true
	}
	return zero
}

// hasErrorAt reports whether errs holds an error for the field at p.
func hasErrorAt(errs field.ErrorList, p *field.Path) bool {
	f := p.String()
	for _, e := range errs {
		if e.Field == f {
			return true
		}
	}
	return false
}

// nonnegative32 is ValidateNonnegativeField for an optional int32.
func nonnegative32(v *int32, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apimachineryvalidation.ValidateNonnegativeField(int64(*v), fldPath)
}
