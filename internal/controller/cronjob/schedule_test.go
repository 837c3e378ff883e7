package cronjob

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func mustParse(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMostRecent(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name          string
		spec          string
		earliest, now string
		want          string
		wantOK        bool
	}{
		{"nothing due yet", "*/5 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T10:04:59Z", "", false},
		{"one due", "*/5 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T10:05:30Z", "2026-01-01T10:05:00Z", true},
		{"exactly at schedule", "*/5 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z", "2026-01-01T10:05:00Z", true},
		{"earliest itself is not due again", "*/5 * * * *", "2026-01-01T10:05:00Z", "2026-01-01T10:06:00Z", "", false},
		{"many missed: most recent wins", "* * * * *", "2025-01-01T00:00:00Z", "2026-01-01T10:07:42Z", "2026-01-01T10:07:00Z", true},
		{"daily, missed for months", "30 4 * * *", "2025-06-01T00:00:00Z", "2026-01-01T03:00:00Z", "2025-12-31T04:30:00Z", true},
		{"yearly within window", "0 0 1 1 *", "2025-06-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z", true},
		{"now before earliest", "* * * * *", "2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mostRecent(mustParse(t, tt.spec), at(tt.earliest), at(tt.now))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v (got %v)", ok, tt.wantOK, got)
			}
			if ok && !got.Equal(at(tt.want)) {
				t.Errorf("mostRecent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScheduleWindow(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created.Add(time.Hour)
	last := metav1.NewTime(created.Add(30 * time.Minute))
	tests := []struct {
		name     string
		last     *metav1.Time
		deadline *int64
		want     time.Time
	}{
		{"creation", nil, nil, created},
		{"last schedule", &last, nil, last.Time},
		{"deadline closer than last", &last, ptr.To[int64](60), now.Add(-time.Minute)},
		{"deadline further than last", &last, ptr.To[int64](7200), last.Time},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
				Spec: batchv1.CronJobSpec{StartingDeadlineSeconds: tt.deadline}, Status: batchv1.CronJobStatus{LastScheduleTime: tt.last}}
			if got := scheduleWindow(cj, now); !got.Equal(tt.want) {
				t.Errorf("scheduleWindow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		policy batchv1.ConcurrencyPolicy
		active int
		want   action
	}{
		{batchv1.AllowConcurrent, 0, actCreate},
		{batchv1.AllowConcurrent, 2, actCreate},
		{"", 1, actCreate},
		{batchv1.ForbidConcurrent, 0, actCreate},
		{batchv1.ForbidConcurrent, 1, actSkip},
		{batchv1.ReplaceConcurrent, 0, actCreate},
		{batchv1.ReplaceConcurrent, 1, actReplaceAndCreate},
	}
	for _, tt := range tests {
		if got := decide(tt.policy, tt.active); got != tt.want {
			t.Errorf("decide(%q, %d) = %v, want %v", tt.policy, tt.active, got, tt.want)
		}
	}
}

func TestHistoryToDelete(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	job := func(name string, minute int, typ batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if typ != "" {
			ct := metav1.NewTime(base.Add(time.Duration(minute) * time.Minute))
			j.Status.Conditions = []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: ct}}
			if typ == batchv1.JobComplete {
				j.Status.CompletionTime = &ct
			}
		}
		return j
	}
	jobs := []*batchv1.Job{
		job("ok4", 4, batchv1.JobComplete), job("ok1", 1, batchv1.JobComplete), job("ok3", 3, batchv1.JobComplete),
		job("ok2", 2, batchv1.JobComplete), job("fail1", 1, batchv1.JobFailed), job("fail2", 2, batchv1.JobFailed),
		job("running", 0, ""),
	}
	names := func(js []*batchv1.Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"ok1", "fail1"}, names(historyToDelete(jobs, nil, nil))); diff != "" {
		t.Errorf("default limits (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ok1", "ok2", "ok3", "ok4", "fail1", "fail2"}, names(historyToDelete(jobs, ptr.To[int32](0), ptr.To[int32](0)))); diff != "" {
		t.Errorf("zero limits (-want +got):\n%s", diff)
	}
	if got := historyToDelete(jobs, ptr.To[int32](10), ptr.To[int32](10)); len(got) != 0 {
		t.Errorf("high limits delete %v", names(got))
	}
}

func TestNewJob(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "ns", UID: "u"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}}}}
	at := time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC)
	j := newJob(cj, at)
	if j.Name != "hello-29454365" {
		t.Errorf("name = %q", j.Name)
	}
	if j.Annotations[batchv1.CronJobScheduledTimestampAnnotation] != "2026-01-01T10:05:00Z" || j.Labels["a"] != "b" {
		t.Errorf("metadata = %v %v", j.Annotations, j.Labels)
	}
	if ref := metav1.GetControllerOf(j); ref == nil || ref.Kind != "CronJob" || ref.UID != "u" {
		t.Errorf("controller ref = %+v", ref)
	}
	if cj.Spec.JobTemplate.Annotations != nil {
		t.Error("template modified")
	}
}
