package batch

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCronJobDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   batchv1.CronJobSpec
		want batchv1.CronJobSpec
	}{{
		name: "empty",
		want: batchv1.CronJobSpec{
			ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptrTo(false),
			SuccessfulJobsHistoryLimit: ptrTo[int32](3), FailedJobsHistoryLimit: ptrTo[int32](1),
		},
	}, {
		name: "set values kept, job template spec not defaulted",
		in: batchv1.CronJobSpec{
			ConcurrencyPolicy: batchv1.ForbidConcurrent, Suspend: ptrTo(true),
			SuccessfulJobsHistoryLimit: ptrTo[int32](0), FailedJobsHistoryLimit: ptrTo[int32](5),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Parallelism: ptrTo[int32](2)}},
		},
		want: batchv1.CronJobSpec{
			ConcurrencyPolicy: batchv1.ForbidConcurrent, Suspend: ptrTo(true),
			SuccessfulJobsHistoryLimit: ptrTo[int32](0), FailedJobsHistoryLimit: ptrTo[int32](5),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Parallelism: ptrTo[int32](2)}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := &batchv1.CronJob{Spec: tt.in}
			resource(t, "cronjobs").Strategy.Default(cj)
			if diff := cmp.Diff(tt.want, cj.Spec, cmpopts.IgnoreFields(batchv1.JobSpec{}, "Template")); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateCronJob(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cj *batchv1.CronJob)
		want   []errKey
	}{
		{"valid", func(*batchv1.CronJob) {}, nil},
		{"valid names and ranges", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "0-30/10 9-17 ? JAN-MAR mon-fri" }, nil},
		{"valid descriptor", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@hourly" }, nil},
		{"valid time zone", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("America/Argentina/Buenos_Aires") }, nil},
		{"no schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "" }, []errKey{{required, "spec.schedule"}}},
		{"six fields", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "0 * * * * *" }, []errKey{{invalid, "spec.schedule"}}},
		{"out of range", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "61 * * * *" }, []errKey{{invalid, "spec.schedule"}}},
		{"garbage", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "every day" }, []errKey{{invalid, "spec.schedule"}}},
		{"TZ in schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "CRON_TZ=UTC 0 * * * *" }, []errKey{{invalid, "spec.schedule"}}},
		{"unknown time zone", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("Mars/Olympus") }, []errKey{{invalid, "spec.timeZone"}}},
		{"empty time zone", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("") }, []errKey{{invalid, "spec.timeZone"}}},
		{"local time zone", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("Local") }, []errKey{{invalid, "spec.timeZone"}}},
		{"path in time zone", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("../etc/passwd") }, []errKey{{invalid, "spec.timeZone"}}},
		{"name too long", func(cj *batchv1.CronJob) { cj.Name = strings.Repeat("a", 53) }, []errKey{{invalid, "metadata.name"}}},
		{"name at limit", func(cj *batchv1.CronJob) { cj.Name = strings.Repeat("a", 52) }, nil},
		{"concurrency policy", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = "Sometimes" },
			[]errKey{{notSupported, "spec.concurrencyPolicy"}}},
		{"negative limits", func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = ptrTo[int64](-1)
			cj.Spec.SuccessfulJobsHistoryLimit = ptrTo[int32](-1)
			cj.Spec.FailedJobsHistoryLimit = ptrTo[int32](-1)
		}, []errKey{{invalid, "spec.startingDeadlineSeconds"}, {invalid, "spec.successfulJobsHistoryLimit"}, {invalid, "spec.failedJobsHistoryLimit"}}},
		{"template selector", func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
			cj.Spec.JobTemplate.Spec.ManualSelector = ptrTo(true)
		}, []errKey{{invalid, "spec.jobTemplate.spec.selector"}, {notSupported, "spec.jobTemplate.spec.manualSelector"}}},
		{"template restart policy", func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, []errKey{{required, "spec.jobTemplate.spec.template.spec.restartPolicy"}}},
		{"template labels", func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Labels = map[string]string{"bad key!": "v"}
		}, []errKey{{invalid, "spec.jobTemplate.metadata.labels"}}},
		{"template job spec", func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.BackoffLimit = ptrTo[int32](-1) },
			[]errKey{{invalid, "spec.jobTemplate.spec.backoffLimit"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "cronjobs")
			cj := cronJob()
			r.Strategy.Default(cj)
			tt.mutate(cj)
			checkErrs(t, r.Strategy.Validate(cj), tt.want)
		})
	}
}

func TestScheduleErrorMessage(t *testing.T) {
	cj := cronJob()
	cj.Spec.Schedule = "* * *"
	r := resource(t, "cronjobs")
	r.Strategy.Default(cj)
	errs := r.Strategy.Validate(cj)
	if len(errs) != 1 || errs[0].Detail != "expected exactly 5 fields, found 3: [* * *]" {
		t.Errorf("errors = %v, want upstream's parser message", errs)
	}
}

func TestCronJobUpdate(t *testing.T) {
	tests := []struct {
		name   string
		old    func(cj *batchv1.CronJob)
		mutate func(cj *batchv1.CronJob)
		want   []errKey
		gen    int64
	}{
		{"no change", nil, func(*batchv1.CronJob) {}, nil, 1},
		{"omitted defaults are no change", nil, func(cj *batchv1.CronJob) {
			cj.Spec.Suspend, cj.Spec.ConcurrencyPolicy = nil, ""
		}, nil, 1},
		{"schedule change", nil, func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@daily" }, nil, 2},
		{"job template is mutable", nil, func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image = "perl:6"
		}, nil, 2},
		{"TZ kept where it was", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC 0 * * * *" },
			func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC 5 * * * *" }, nil, 2},
		{"TZ and timeZone", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC 0 * * * *" },
			func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("UTC") }, []errKey{{invalid, "spec.schedule"}}, 2},
		{"TZ added", nil, func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC 0 * * * *" }, []errKey{{invalid, "spec.schedule"}}, 2},
		{"long name not checked", func(cj *batchv1.CronJob) { cj.Name = strings.Repeat("b", 60) },
			func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptrTo(true) }, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "cronjobs")
			old := cronJob()
			old.Generation = 1
			if tt.old != nil {
				tt.old(old)
			}
			r.Strategy.Default(old)
			cj := old.DeepCopy()
			tt.mutate(cj)
			checkErrs(t, update(t, r, cj, old), tt.want)
			if cj.Generation != tt.gen {
				t.Errorf("generation = %d, want %d", cj.Generation, tt.gen)
			}
		})
	}
}

func TestCronJobTable(t *testing.T) {
	now := time.Now()
	last := metav1.NewTime(now.Add(-4 * time.Minute))
	cj := cronJob()
	cj.CreationTimestamp = metav1.NewTime(now.Add(-26 * time.Hour))
	cj.Spec.JobTemplate.Spec.Selector = nil
	tbl := resource(t, "cronjobs").Table
	got := tbl.Row(cj)
	want := []interface{}{"hello", "*/5 * * * *", "<none>", "<unset>", int64(0), "<none>", "26h", "pi", "perl:5.34", "<none>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	cj.Spec.TimeZone = ptrTo("Europe/Paris")
	cj.Spec.Suspend = ptrTo(true)
	cj.Status.Active = []corev1.ObjectReference{{Name: "a"}, {Name: "b"}}
	cj.Status.LastScheduleTime = &last
	got = tbl.Row(cj)
	want = []interface{}{"hello", "*/5 * * * *", "Europe/Paris", "True", int64(2), "4m", "26h", "pi", "perl:5.34", "<none>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(got) != len(tbl.Columns) {
		t.Errorf("%d cells for %d columns", len(got), len(tbl.Columns))
	}
	var names []string
	for _, c := range tbl.Columns {
		if c.Priority == 1 {
			names = append(names, c.Name+"+")
		} else {
			names = append(names, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers+", "Images+", "Selector+"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}
