package cronjob

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
)

// parseSchedule parses a CronJob's standard cron schedule and time zone
// (nil: the controller's local time zone, as upstream).
func parseSchedule(cj *batchv1.CronJob) (cron.Schedule, *time.Location, error) {
	loc := time.Local
	if cj.Spec.TimeZone != nil {
		l, err := time.LoadLocation(*cj.Spec.TimeZone)
		if err != nil {
			return nil, nil, fmt.Errorf("time zone %q: %w", *cj.Spec.TimeZone, err)
		}
		loc = l
	}
	s, err := cron.ParseStandard(cj.Spec.Schedule)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %w", cj.Spec.Schedule, err)
	}
	return s, loc, nil
}

// mostRecent returns the latest schedule time after earliest and at or
// before now, and whether there is one. It searches backwards from now in
// doubling windows, so a CronJob that last ran long ago costs a few dozen
// calls of Next, not one per missed minute.
func mostRecent(s cron.Schedule, earliest, now time.Time) (time.Time, bool) {
	if s == nil || now.Before(earliest) {
		return time.Time{}, false
	}
	for w := time.Minute; ; w *= 2 {
		start := now.Add(-w)
		atEarliest := !start.After(earliest) || w > 1<<20*time.Hour
		if atEarliest {
			start = earliest
		}
		t := s.Next(start)
		if !t.IsZero() && !t.After(now) {
			for {
				n := s.Next(t)
				if n.IsZero() || n.After(now) {
					return t, true
				}
				t = n
			}
		}
		if atEarliest {
			return time.Time{}, false
		}
	}
}

// scheduleWindow is the earliest instant after which a CronJob's next run
// may be scheduled: its last schedule time (or creation), but no earlier
// than startingDeadlineSeconds before now.
func scheduleWindow(cj *batchv1.CronJob, now time.Time) time.Time {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if dl := now.Add(-time.Duration(*d) * time.Second); dl.After(earliest) {
			earliest = dl
		}
	}
	return earliest
}

// action is what a CronJob does at a due schedule time.
type action int

const (
	actCreate           action = iota // create the Job
	actSkip                           // Forbid with a Job still active: wait
	actReplaceAndCreate               // Replace: delete the active Jobs, then create
)

// decide applies concurrencyPolicy to a due schedule time given how many
// of the CronJob's Jobs are still active.
func decide(policy batchv1.ConcurrencyPolicy, active int) action {
	if active == 0 {
		return actCreate
	}
	switch policy {
	case batchv1.ForbidConcurrent:
		return actSkip
	case batchv1.ReplaceConcurrent:
		return actReplaceAndCreate
	}
	return actCreate
}

// jobName is the name of the Job for scheduled time t: the CronJob's name
// and t in minutes since the epoch, so that a retried create for the same
// time collides instead of running twice.
func jobName(cronJob string, t time.Time) string {
	return fmt.Sprintf("%s-%d", cronJob, t.Unix()/60)
}
