package batch

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	// Time zones are validated with time.LoadLocation; the embedded
	// database makes that work on hosts without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

// maxCronJobNameLength leaves room for the 11 characters the cronjob
// controller appends to job names ("-" and a schedule timestamp) within a
// 63-character DNS label.
const maxCronJobNameLength = 63 - 11

func cronJobResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "cronjobs",
		Singular:     "cronjob",
		Kind:         "CronJob",
		ShortNames:   []string{"cj"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &batchv1.CronJob{} },
		NewList:      func() runtime.Object { return &batchv1.CronJobList{} },
		Status:       true,
		Strategy: registry.Strategy{
			PrepareForUpdate: prepareCronJobForUpdate,
			Default:          func(obj runtime.Object) { defaultCronJob(obj) },
			Validate: func(obj runtime.Object) field.ErrorList {
				cj, ok := obj.(*batchv1.CronJob)
				if !ok {
					return wrongType(obj)
				}
				var errs field.ErrorList
				if len(cj.Name) > maxCronJobNameLength {
					errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name,
						fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
				}
				return append(errs, validateCronJobSpec(&cj.Spec, false, field.NewPath("spec"))...)
			},
			// The name length limit is not checked on update, so that older
			// cronjobs with longer names can still be changed and deleted.
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				cj, ok1 := obj.(*batchv1.CronJob)
				o, ok2 := old.(*batchv1.CronJob)
				if !ok1 || !ok2 {
					return wrongType(obj)
				}
				return validateCronJobSpec(&cj.Spec, strings.Contains(o.Spec.Schedule, "TZ"), field.NewPath("spec"))
			},
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Schedule", Type: "string", Description: batchv1.CronJobSpec{}.SwaggerDoc()["schedule"]},
				{Name: "Timezone", Type: "string", Description: batchv1.CronJobSpec{}.SwaggerDoc()["timeZone"]},
				{Name: "Suspend", Type: "boolean", Description: batchv1.CronJobSpec{}.SwaggerDoc()["suspend"]},
				{Name: "Active", Type: "integer", Description: batchv1.CronJobStatus{}.SwaggerDoc()["active"]},
				{Name: "Last Schedule", Type: "string", Description: batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]},
				registry.AgeColumn,
				containersColumn,
				imagesColumn,
				{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
			},
			Row: cronJobRow,
		},
	}
}

// defaultCronJob is upstream's SetDefaults_CronJob plus the defaults of the
// job template's pod template. The job template's own spec is not
// defaulted: jobs get their defaults when the controller creates them.
func defaultCronJob(obj runtime.Object) {
	cj, ok := obj.(*batchv1.CronJob)
	if !ok {
		return
	}
	spec := &cj.Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = ptrTo[int32](3)
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = ptrTo[int32](1)
	}
	core.DefaultPodTemplateSpec(&spec.JobTemplate.Spec.Template)
}

// prepareCronJobForUpdate defaults before the default preparation, so that
// omitted defaults do not count as a spec change.
func prepareCronJobForUpdate(ctx context.Context, obj, old runtime.Object) {
	defaultCronJob(obj)
	registry.DefaultPrepareForUpdate(ctx, obj, old)
}

// validateCronJobSpec is upstream's ValidateCronJobSpec. allowTZInSchedule
// is set on updates of cronjobs whose stored schedule already uses TZ=.
func validateCronJobSpec(spec *batchv1.CronJobSpec, allowTZInSchedule bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := fldPath.Child("schedule")
	if spec.Schedule == "" {
		errs = append(errs, field.Required(sp, ""))
	} else {
		if _, err := cron.ParseStandard(spec.Schedule); err != nil {
			errs = append(errs, field.Invalid(sp, spec.Schedule, err.Error()))
		}
		hasTZ := strings.Contains(spec.Schedule, "TZ")
		switch {
		case allowTZInSchedule && hasTZ && spec.TimeZone != nil:
			errs = append(errs, field.Invalid(sp, spec.Schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
		case !allowTZInSchedule && hasTZ:
			errs = append(errs, field.Invalid(sp, spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		}
	}
	errs = append(errs, validateTimeZone(spec.TimeZone, fldPath.Child("timeZone"))...)
	if spec.StartingDeadlineSeconds != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(*spec.StartingDeadlineSeconds, fldPath.Child("startingDeadlineSeconds"))...)
	}
	cp := fldPath.Child("concurrencyPolicy")
	switch spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		errs = append(errs, field.Required(cp, ""))
	default:
		errs = append(errs, field.NotSupported(cp, spec.ConcurrencyPolicy, []string{
			string(batchv1.AllowConcurrent), string(batchv1.ForbidConcurrent), string(batchv1.ReplaceConcurrent)}))
	}
	errs = append(errs, validateJobTemplate(&spec.JobTemplate, fldPath.Child("jobTemplate"))...)
	errs = append(errs, nonnegative32(spec.SuccessfulJobsHistoryLimit, fldPath.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, nonnegative32(spec.FailedJobsHistoryLimit, fldPath.Child("failedJobsHistoryLimit"))...)
	return errs
}

// validateJobTemplate checks spec.jobTemplate: its metadata's labels and
// annotations and its job spec, whose selector the controller generates
// for each job (so the template may not set one).
func validateJobTemplate(t *batchv1.JobTemplateSpec, fldPath *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(t.Labels, fldPath.Child("metadata", "labels"))
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(t.Annotations, fldPath.Child("metadata", "annotations"))...)
	sp := fldPath.Child("spec")
	errs = append(errs, validateJobSpecCommon(&t.Spec, sp)...)
	if t.Spec.Selector != nil {
		errs = append(errs, field.Invalid(sp.Child("selector"), t.Spec.Selector, "`selector` will be auto-generated"))
	}
	if t.Spec.ManualSelector != nil && *t.Spec.ManualSelector {
		errs = append(errs, field.NotSupported(sp.Child("manualSelector"), *t.Spec.ManualSelector, []string{"nil", "false"}))
	}
	return errs
}

// validTimeZonePart is one element of an IANA zone name ("America",
// "Argentina", "Buenos_Aires", "GMT+5").
var validTimeZonePart = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

// validateTimeZone checks spec.timeZone: nil, or an explicit IANA zone
// that loads.
func validateTimeZone(tz *string, fldPath *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fldPath, *tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZonePart.MatchString(part) {
			return field.ErrorList{field.Invalid(fldPath, *tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	var errs field.ErrorList
	if strings.EqualFold(*tz, "Local") {
		errs = append(errs, field.Invalid(fldPath, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		errs = append(errs, field.Invalid(fldPath, *tz, err.Error()))
	}
	return errs
}

// cronJobRow is upstream's cronjob printer.
func cronJobRow(obj runtime.Object) []interface{} {
	cj, ok := obj.(*batchv1.CronJob)
	if !ok {
		return nil
	}
	last := "<none>"
	if cj.Status.LastScheduleTime != nil {
		last = registry.Since(*cj.Status.LastScheduleTime)
	}
	tz := "<none>"
	if cj.Spec.TimeZone != nil {
		tz = *cj.Spec.TimeZone
	}
	suspend := "<unset>"
	if cj.Spec.Suspend != nil {
		suspend = "False"
		if *cj.Spec.Suspend {
			suspend = "True"
		}
	}
	names, images := containerCells(cj.Spec.JobTemplate.Spec.Template.Spec.Containers)
	return []interface{}{
		cj.Name, cj.Spec.Schedule, tz, suspend, int64(len(cj.Status.Active)), last, registry.Age(cj),
		names, images, metav1.FormatLabelSelector(cj.Spec.JobTemplate.Spec.Selector),
	}
}
