package batch

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestJobDefaults(t *testing.T) {
	nonIndexed, indexed := batchv1.NonIndexedCompletion, batchv1.IndexedCompletion
	tof, failed := batchv1.TerminatingOrFailed, batchv1.Failed
	pfp := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}},
	}}}
	pfpDefaulted := pfp.DeepCopy()
	pfpDefaulted.Rules[0].OnPodConditions[0].Status = corev1.ConditionTrue
	tests := []struct {
		name string
		in   batchv1.JobSpec
		want batchv1.JobSpec
	}{{
		name: "empty",
		want: batchv1.JobSpec{
			Completions: ptrTo[int32](1), Parallelism: ptrTo[int32](1), BackoffLimit: ptrTo[int32](6),
			CompletionMode: &nonIndexed, Suspend: ptrTo(false), ManualSelector: ptrTo(false), PodReplacementPolicy: &tof,
		},
	}, {
		name: "parallelism only: completions stay unset",
		in:   batchv1.JobSpec{Parallelism: ptrTo[int32](3)},
		want: batchv1.JobSpec{
			Parallelism: ptrTo[int32](3), BackoffLimit: ptrTo[int32](6),
			CompletionMode: &nonIndexed, Suspend: ptrTo(false), ManualSelector: ptrTo(false), PodReplacementPolicy: &tof,
		},
	}, {
		name: "completions only: parallelism 1",
		in:   batchv1.JobSpec{Completions: ptrTo[int32](5)},
		want: batchv1.JobSpec{
			Completions: ptrTo[int32](5), Parallelism: ptrTo[int32](1), BackoffLimit: ptrTo[int32](6),
			CompletionMode: &nonIndexed, Suspend: ptrTo(false), ManualSelector: ptrTo(false), PodReplacementPolicy: &tof,
		},
	}, {
		name: "per-index backoff turns the global limit off",
		in:   batchv1.JobSpec{Completions: ptrTo[int32](4), CompletionMode: &indexed, BackoffLimitPerIndex: ptrTo[int32](1)},
		want: batchv1.JobSpec{
			Completions: ptrTo[int32](4), Parallelism: ptrTo[int32](1), BackoffLimit: ptrTo[int32](math.MaxInt32),
			BackoffLimitPerIndex: ptrTo[int32](1), CompletionMode: &indexed, Suspend: ptrTo(false), ManualSelector: ptrTo(false),
			PodReplacementPolicy: &tof,
		},
	}, {
		name: "pod failure policy: Failed replacement, condition status True",
		in:   batchv1.JobSpec{PodFailurePolicy: pfp.DeepCopy(), Suspend: ptrTo(true), ManualSelector: ptrTo(true)},
		want: batchv1.JobSpec{
			Completions: ptrTo[int32](1), Parallelism: ptrTo[int32](1), BackoffLimit: ptrTo[int32](6),
			CompletionMode: &nonIndexed, Suspend: ptrTo(true), ManualSelector: ptrTo(true), PodReplacementPolicy: &failed,
			PodFailurePolicy: pfpDefaulted,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &batchv1.Job{Spec: tt.in}
			resource(t, "jobs").Strategy.Default(j)
			if diff := cmp.Diff(tt.want, j.Spec, cmpopts.IgnoreFields(batchv1.JobSpec{}, "Template")); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobCreateGeneratesSelector(t *testing.T) {
	tests := []struct {
		name           string
		mutate         func(j *batchv1.Job)
		wantSelector   *metav1.LabelSelector
		wantPodLabels  map[string]string
		wantJobLabels  map[string]string
		wantGeneration int64
	}{{
		name:         "no labels",
		mutate:       func(*batchv1.Job) {},
		wantSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "0b2c-uid"}},
		wantPodLabels: map[string]string{
			"batch.kubernetes.io/controller-uid": "0b2c-uid", "batch.kubernetes.io/job-name": "pi",
			"controller-uid": "0b2c-uid", "job-name": "pi",
		},
		wantJobLabels: map[string]string{
			"batch.kubernetes.io/controller-uid": "0b2c-uid", "batch.kubernetes.io/job-name": "pi",
			"controller-uid": "0b2c-uid", "job-name": "pi",
		},
		wantGeneration: 1,
	}, {
		name: "own labels kept on the job",
		mutate: func(j *batchv1.Job) {
			j.Labels = map[string]string{"team": "a"}
			j.Spec.Template.Labels = map[string]string{"app": "pi"}
		},
		wantSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "0b2c-uid"}},
		wantPodLabels: map[string]string{
			"app": "pi", "batch.kubernetes.io/controller-uid": "0b2c-uid", "batch.kubernetes.io/job-name": "pi",
			"controller-uid": "0b2c-uid", "job-name": "pi",
		},
		wantJobLabels:  map[string]string{"team": "a"},
		wantGeneration: 1,
	}, {
		name: "manual selector left alone",
		mutate: func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptrTo(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			j.Spec.Template.Labels = map[string]string{"app": "pi"}
		},
		wantSelector:   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}},
		wantPodLabels:  map[string]string{"app": "pi"},
		wantJobLabels:  map[string]string{"app": "pi"},
		wantGeneration: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := job()
			j.Generation = 5
			j.Status.Active = 3
			tt.mutate(j)
			if errs := create(t, resource(t, "jobs"), j); len(errs) != 0 {
				t.Fatalf("create: %v", errs)
			}
			if diff := cmp.Diff(tt.wantSelector, j.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPodLabels, j.Spec.Template.Labels); diff != "" {
				t.Errorf("pod labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantJobLabels, j.Labels); diff != "" {
				t.Errorf("job labels (-want +got):\n%s", diff)
			}
			if j.Generation != tt.wantGeneration || j.Status.Active != 0 {
				t.Errorf("generation %d, status.active %d; want %d, 0", j.Generation, j.Status.Active, tt.wantGeneration)
			}
		})
	}
}

func TestValidateJob(t *testing.T) {
	indexed := batchv1.IndexedCompletion
	tests := []struct {
		name   string
		mutate func(j *batchv1.Job) // applied after PrepareForCreate and Default
		want   []errKey
	}{
		{"valid", func(*batchv1.Job) {}, nil},
		{"restart policy always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]errKey{{required, "spec.template.spec.restartPolicy"}}},
		{"restart policy unknown", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "Sometimes" },
			[]errKey{{notSupported, "spec.template.spec.restartPolicy"}}},
		{"negative counts", func(j *batchv1.Job) {
			j.Spec.Parallelism = ptrTo[int32](-1)
			j.Spec.Completions = ptrTo[int32](-1)
			j.Spec.BackoffLimit = ptrTo[int32](-1)
			j.Spec.ActiveDeadlineSeconds = ptrTo[int64](-1)
			j.Spec.TTLSecondsAfterFinished = ptrTo[int32](-1)
		}, []errKey{{invalid, "spec.parallelism"}, {invalid, "spec.completions"}, {invalid, "spec.backoffLimit"},
			{invalid, "spec.activeDeadlineSeconds"}, {invalid, "spec.ttlSecondsAfterFinished"}}},
		{"selector does not match", func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["batch.kubernetes.io/controller-uid"] = "other"
		}, []errKey{{invalid, "spec.selector"}, {invalid, "spec.template.metadata.labels"}}},
		{"conflicting pod label", func(j *batchv1.Job) { j.Spec.Template.Labels["job-name"] = "other" },
			[]errKey{{invalid, "spec.template.metadata.labels[job-name]"}}},
		{"missing generated label", func(j *batchv1.Job) { delete(j.Spec.Template.Labels, "batch.kubernetes.io/job-name") },
			[]errKey{{required, "spec.template.metadata.labels[batch.kubernetes.io/job-name]"}}},
		{"no uid", func(j *batchv1.Job) { j.UID = "" },
			[]errKey{{required, "metadata.uid"}, {invalid, "spec.template.metadata.labels[controller-uid]"},
				{invalid, "spec.template.metadata.labels[batch.kubernetes.io/controller-uid]"}, {invalid, "spec.selector"}}},
		// As upstream, a missing selector selects nothing, so the template
		// does not match either.
		{"manual selector missing", func(j *batchv1.Job) { j.Spec.ManualSelector = ptrTo(true); j.Spec.Selector = nil },
			[]errKey{{required, "spec.selector"}, {invalid, "spec.template.metadata.labels"}}},
		{"indexed needs completions", func(j *batchv1.Job) { j.Spec.CompletionMode = &indexed; j.Spec.Completions = nil },
			[]errKey{{required, "spec.completions"}}},
		{"unknown completion mode", func(j *batchv1.Job) { m := batchv1.CompletionMode("Ranked"); j.Spec.CompletionMode = &m },
			[]errKey{{notSupported, "spec.completionMode"}}},
		{"per-index backoff needs indexed", func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptrTo[int32](1) },
			[]errKey{{forbidden, "spec.backoffLimitPerIndex"}}},
		{"max failed indexes", func(j *batchv1.Job) {
			j.Spec.CompletionMode = &indexed
			j.Spec.MaxFailedIndexes = ptrTo[int32](2)
		}, []errKey{{required, "spec.backoffLimitPerIndex"}, {invalid, "spec.maxFailedIndexes"}}},
		{"valid pod failure policy", func(j *batchv1.Job) {
			j.Spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptrTo("pi"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1, 42}}},
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
			}}
		}, nil},
		{"bad pod failure policy", func(j *batchv1.Job) {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: "Explode", OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptrTo("nope"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{0, 3, 3, 2}}},
				{Action: batchv1.PodFailurePolicyActionFailIndex},
			}}
		}, []errKey{
			{invalid, "spec.template.spec.restartPolicy"},
			{notSupported, "spec.podReplacementPolicy"},
			{notSupported, "spec.podFailurePolicy.rules[0].action"},
			{invalid, "spec.podFailurePolicy.rules[0].onExitCodes.containerName"},
			{invalid, "spec.podFailurePolicy.rules[0].onExitCodes.values[0]"},
			{duplicate, "spec.podFailurePolicy.rules[0].onExitCodes.values[2]"},
			{invalid, "spec.podFailurePolicy.rules[0].onExitCodes.values[3]"},
			{invalid, "spec.podFailurePolicy.rules[1].action"},
			{invalid, "spec.podFailurePolicy.rules[1]"},
		}},
		{"success policy", func(j *batchv1.Job) {
			j.Spec.CompletionMode = &indexed
			j.Spec.Completions = ptrTo[int32](5)
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{
				{SucceededIndexes: ptrTo("0,2-4"), SucceededCount: ptrTo[int32](2)},
				{SucceededIndexes: ptrTo("3,1")},
				{SucceededCount: ptrTo[int32](6)},
				{},
			}}
		}, []errKey{
			{invalid, "spec.successPolicy.rules[1].succeededIndexes"},
			{invalid, "spec.successPolicy.rules[2].succeededCount"},
			{required, "spec.successPolicy.rules[3]"},
		}},
		{"success policy needs indexed", func(j *batchv1.Job) {
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededCount: ptrTo[int32](1)}}}
		}, []errKey{{invalid, "spec.completionMode"}}},
		{"pod replacement unknown", func(j *batchv1.Job) { p := batchv1.PodReplacementPolicy("Never"); j.Spec.PodReplacementPolicy = &p },
			[]errKey{{notSupported, "spec.podReplacementPolicy"}}},
		{"managedBy", func(j *batchv1.Job) { j.Spec.ManagedBy = ptrTo("not a path") },
			[]errKey{{invalid, "spec.managedBy"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "jobs")
			j := job()
			if errs := create(t, r, j); len(errs) != 0 {
				t.Fatalf("create: %v", errs)
			}
			tt.mutate(j)
			checkErrs(t, r.Strategy.Validate(j), tt.want)
		})
	}
}

func TestJobUpdate(t *testing.T) {
	indexed := batchv1.IndexedCompletion
	tests := []struct {
		name   string
		old    func(j *batchv1.Job) // applied before create
		mutate func(j *batchv1.Job)
		want   []errKey
		gen    int64
	}{
		{"no change", nil, func(*batchv1.Job) {}, nil, 1},
		{"parallelism and suspend mutable", nil, func(j *batchv1.Job) {
			j.Spec.Parallelism = ptrTo[int32](4)
			j.Spec.Suspend = ptrTo(true)
			j.Spec.ActiveDeadlineSeconds = ptrTo[int64](100)
		}, nil, 2},
		{"completions immutable", nil, func(j *batchv1.Job) { j.Spec.Completions = ptrTo[int32](3) },
			[]errKey{{invalid, "spec.completions"}}, 2},
		{"elastic indexed", func(j *batchv1.Job) {
			j.Spec.CompletionMode = &indexed
			j.Spec.Completions, j.Spec.Parallelism = ptrTo[int32](2), ptrTo[int32](2)
		}, func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = ptrTo[int32](5), ptrTo[int32](5) }, nil, 2},
		{"indexed completions alone", func(j *batchv1.Job) {
			j.Spec.CompletionMode = &indexed
			j.Spec.Completions, j.Spec.Parallelism = ptrTo[int32](2), ptrTo[int32](2)
		}, func(j *batchv1.Job) { j.Spec.Completions = ptrTo[int32](5) }, []errKey{{invalid, "spec.completions"}}, 2},
		{"template immutable", nil, func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:6" },
			[]errKey{{invalid, "spec.template"}}, 2},
		{"scheduling directives of a running job", nil, func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
		}, []errKey{{invalid, "spec.template"}}, 2},
		{"scheduling directives of a suspended job", func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true) }, func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
			j.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
			j.Spec.Template.Annotations = map[string]string{"queue": "q"}
		}, nil, 2},
		{"suspended job's containers still immutable", func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true) }, func(j *batchv1.Job) {
			j.Spec.Template.Spec.Containers[0].Image = "perl:6"
		}, []errKey{{invalid, "spec.template"}}, 2},
		{"selector immutable", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptrTo(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			j.Spec.Template.Labels = map[string]string{"app": "pi", "x": "y"}
		}, func(j *batchv1.Job) { j.Spec.Selector.MatchLabels["x"] = "y" }, []errKey{{invalid, "spec.selector"}}, 2},
		{"completion mode immutable", func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptrTo[int32](2), ptrTo[int32](2)
		}, func(j *batchv1.Job) { j.Spec.CompletionMode = &indexed }, []errKey{{invalid, "spec.completionMode"}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "jobs")
			old := job()
			if tt.old != nil {
				tt.old(old)
			}
			if errs := create(t, r, old); len(errs) != 0 {
				t.Fatalf("create: %v", errs)
			}
			j := old.DeepCopy()
			tt.mutate(j)
			checkErrs(t, update(t, r, j, old), tt.want)
			if j.Generation != tt.gen {
				t.Errorf("generation = %d, want %d", j.Generation, tt.gen)
			}
		})
	}
}

func TestJobStatusValidation(t *testing.T) {
	start := metav1.NewTime(time.Now())
	before := metav1.NewTime(start.Add(-time.Minute))
	tests := []struct {
		name   string
		status batchv1.JobStatus
		want   []errKey
	}{
		{"valid", batchv1.JobStatus{Active: 1, Succeeded: 2, StartTime: &start}, nil},
		{"negative", batchv1.JobStatus{Active: -1, Ready: ptrTo[int32](-1)}, []errKey{{invalid, "status.active"}, {invalid, "status.ready"}}},
		{"completed before start", batchv1.JobStatus{StartTime: &start, CompletionTime: &before}, []errKey{{invalid, "status.completionTime"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, resource(t, "jobs").Strategy.ValidateStatusUpdate(&batchv1.Job{Status: tt.status}, &batchv1.Job{}), tt.want)
		})
	}
}

func TestJobTable(t *testing.T) {
	now := time.Now()
	created := metav1.NewTime(now.Add(-5 * time.Hour))
	start := metav1.NewTime(now.Add(-90 * time.Minute))
	done := metav1.NewTime(now.Add(-89 * time.Minute))
	deleting := metav1.NewTime(now)
	base := func() *batchv1.Job {
		j := job()
		j.CreationTimestamp = created
		j.Spec.Template.Spec.Containers = append(j.Spec.Template.Spec.Containers, corev1.Container{Name: "log", Image: "busybox"})
		j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u"}}
		return j
	}
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	tests := []struct {
		name   string
		mutate func(j *batchv1.Job)
		want   []interface{}
	}{
		{"running", func(j *batchv1.Job) { j.Spec.Completions = ptrTo[int32](3); j.Status.Succeeded = 1 },
			[]interface{}{"pi", "Running", "1/3", "", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
		{"complete", func(j *batchv1.Job) {
			j.Spec.Completions = ptrTo[int32](1)
			j.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &start, CompletionTime: &done, Conditions: cond(batchv1.JobComplete)}
		}, []interface{}{"pi", "Complete", "1/1", "60s", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
		{"work queue", func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo[int32](4) },
			[]interface{}{"pi", "Running", "0/1 of 4", "", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
		{"failed", func(j *batchv1.Job) { j.Status.Conditions = cond(batchv1.JobFailed) },
			[]interface{}{"pi", "Failed", "0/1", "", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
		{"terminating", func(j *batchv1.Job) {
			j.DeletionTimestamp = &deleting
			j.Status.Conditions = cond(batchv1.JobSuspended)
		},
			[]interface{}{"pi", "Terminating", "0/1", "", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
		{"suspended", func(j *batchv1.Job) { j.Status.Conditions = cond(batchv1.JobSuspended) },
			[]interface{}{"pi", "Suspended", "0/1", "", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
		{"false condition ignored", func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionFalse}}
		}, []interface{}{"pi", "Running", "0/1", "", "5h", "pi,log", "perl:5.34,busybox", "batch.kubernetes.io/controller-uid=u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := base()
			tt.mutate(j)
			tbl := resource(t, "jobs").Table
			got := tbl.Row(j)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if len(got) != len(tbl.Columns) {
				t.Errorf("%d cells for %d columns", len(got), len(tbl.Columns))
			}
		})
	}
	var names []string
	for _, c := range resource(t, "jobs").Table.Columns {
		if c.Priority == 1 {
			names = append(names, c.Name+"+")
		} else {
			names = append(names, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Status", "Completions", "Duration", "Age", "Containers+", "Images+", "Selector+"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}

func TestJobFields(t *testing.T) {
	j := job()
	j.Status.Succeeded = 2
	want := fields.Set{"metadata.name": "pi", "metadata.namespace": "default", "status.successful": "2"}
	if diff := cmp.Diff(want, resource(t, "jobs").Fields(j)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestJobNameWarning(t *testing.T) {
	r := resource(t, "jobs")
	if w := r.Strategy.WarningsOnCreate(job()); len(w) != 0 {
		t.Errorf("warnings for a DNS label name: %v", w)
	}
	j := job()
	j.Name = "pi.v2"
	if w := r.Strategy.WarningsOnCreate(j); len(w) != 1 {
		t.Errorf("warnings for %q = %v, want one", j.Name, w)
	}
}
