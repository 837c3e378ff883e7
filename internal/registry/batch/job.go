package batch

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

// The unprefixed labels upstream still puts on job pods next to the
// batch.kubernetes.io/ ones, for selectors written before those existed.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

func jobResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "jobs",
		Singular:     "job",
		Kind:         "Job",
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &batchv1.Job{} },
		NewList:      func() runtime.Object { return &batchv1.JobList{} },
		Status:       true,
		Strategy: registry.Strategy{
			PrepareForCreate: prepareJobForCreate,
			PrepareForUpdate: prepareJobForUpdate,
			Default:          func(obj runtime.Object) { defaultJob(obj) },
			Validate: func(obj runtime.Object) field.ErrorList {
				job, ok := obj.(*batchv1.Job)
				if !ok {
					return wrongType(obj)
				}
				return validateJob(job, true)
			},
			ValidateUpdate:       validateJobUpdate,
			ValidateStatusUpdate: validateJobStatusUpdate,
			WarningsOnCreate: func(obj runtime.Object) []string {
				job, ok := obj.(*batchv1.Job)
				if !ok {
					return nil
				}
				if msgs := validation.IsDNS1123Label(job.Name); len(msgs) != 0 {
					return []string{"metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [" + strings.Join(msgs, " ") + "]"}
				}
				return nil
			},
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Status", Type: "string", Description: "Status of the job."},
				{Name: "Completions", Type: "string", Description: batchv1.JobStatus{}.SwaggerDoc()["succeeded"]},
				{Name: "Duration", Type: "string", Description: "Time required to complete the job."},
				registry.AgeColumn,
				containersColumn,
				imagesColumn,
				{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
			},
			Row: jobRow,
		},
		Fields: jobFields,
	}
}

// defaultJob is upstream's SetDefaults_Job plus the pod template defaults.
func defaultJob(obj runtime.Object) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	spec := &job.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptrTo[int32](1)
		spec.Parallelism = ptrTo[int32](1)
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptrTo[int32](1)
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			// Failures are counted per index; the global limit is off.
			spec.BackoffLimit = ptrTo[int32](math.MaxInt32)
		} else {
			spec.BackoffLimit = ptrTo[int32](6)
		}
	}
	if spec.Template.Labels != nil && len(job.Labels) == 0 {
		job.Labels = make(map[string]string, len(spec.Template.Labels))
		for k, v := range spec.Template.Labels {
			job.Labels[k] = v
		}
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if spec.ManualSelector == nil {
		spec.ManualSelector = ptrTo(false)
	}
	if spec.PodFailurePolicy != nil {
		for i := range spec.PodFailurePolicy.Rules {
			for j := range spec.PodFailurePolicy.Rules[i].OnPodConditions {
				if c := &spec.PodFailurePolicy.Rules[i].OnPodConditions[j]; c.Status == "" {
					c.Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = ptrTo(batchv1.TerminatingOrFailed)
		}
	}
	core.DefaultPodTemplateSpec(&spec.Template)
}

// prepareJobForCreate resets status, sets generation 1 and, unless the
// client asked for a manual selector, generates the selector and pod labels
// from the job's uid and name (metadata.uid is set by the server before
// PrepareForCreate runs).
//
// Upstream defaults while decoding, before this runs, and copies the
// template labels to an unlabelled job when it decodes the stored object;
// skiff's Default runs after PrepareForCreate, which gives the job the same
// labels (including the generated ones) in one pass.
func prepareJobForCreate(ctx context.Context, obj runtime.Object) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	registry.DefaultPrepareForCreate(ctx, obj)
	if job.Spec.ManualSelector == nil || !*job.Spec.ManualSelector {
		generateSelector(job)
	}
}

// generateSelector labels the pod template with the job's name and uid
// (both prefixed and legacy labels, leaving labels the client set alone for
// validation to judge) and selects on batch.kubernetes.io/controller-uid.
func generateSelector(job *batchv1.Job) {
	t := &job.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for _, l := range []struct{ key, value string }{
		{legacyJobNameLabel, job.Name},
		{batchv1.JobNameLabel, job.Name},
		{legacyControllerUIDLabel, string(job.UID)},
		{batchv1.ControllerUidLabel, string(job.UID)},
	} {
		if _, found := t.Labels[l.key]; !found {
			t.Labels[l.key] = l.value
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{}
	}
	if job.Spec.Selector.MatchLabels == nil {
		job.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, found := job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !found {
		job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(job.UID)
	}
}

// prepareJobForUpdate keeps status and bumps the generation on a spec
// change (after defaulting, so omitted defaults are no change).
func prepareJobForUpdate(_ context.Context, obj, old runtime.Object) {
	job, ok1 := obj.(*batchv1.Job)
	o, ok2 := old.(*batchv1.Job)
	if !ok1 || !ok2 {
		return
	}
	defaultJob(job)
	job.Status = o.Status
	job.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(job.Spec, o.Spec) {
		job.Generation = o.Generation + 1
	}
}

// jobRow is upstream's job printer.
func jobRow(obj runtime.Object) []interface{} {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return nil
	}
	var completions string
	switch {
	case job.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
	case job.Spec.Parallelism != nil && *job.Spec.Parallelism > 1:
		completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, *job.Spec.Parallelism)
	default:
		completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
	}
	var dur string
	switch {
	case job.Status.StartTime == nil:
	case job.Status.CompletionTime == nil:
		dur = duration.HumanDuration(time.Since(job.Status.StartTime.Time))
	default:
		dur = duration.HumanDuration(job.Status.CompletionTime.Sub(job.Status.StartTime.Time))
	}
	names, images := containerCells(job.Spec.Template.Spec.Containers)
	return []interface{}{
		job.Name, jobStatus(job), completions, dur, registry.Age(job),
		names, images, metav1.FormatLabelSelector(job.Spec.Selector),
	}
}

// jobStatus is the STATUS column: the first of these that holds.
func jobStatus(job *batchv1.Job) string {
	switch {
	case hasCondition(job, batchv1.JobComplete):
		return "Complete"
	case hasCondition(job, batchv1.JobFailed):
		return "Failed"
	case job.DeletionTimestamp != nil:
		return "Terminating"
	case hasCondition(job, batchv1.JobSuspended):
		return "Suspended"
	case hasCondition(job, batchv1.JobFailureTarget):
		return "FailureTarget"
	case hasCondition(job, batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

func hasCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// jobFields adds status.successful, the field selector upstream serves
// for jobs.
func jobFields(obj runtime.Object) fields.Set {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return fields.Set{}
	}
	return fields.Set{
		"metadata.name":      job.Name,
		"metadata.namespace": job.Namespace,
		"status.successful":  strconv.Itoa(int(job.Status.Succeeded)),
	}
}
