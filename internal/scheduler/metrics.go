package scheduler

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the scheduler's Prometheus metrics under upstream
// kube-scheduler's names, labels and buckets (pkg/scheduler/metrics), so
// that its dashboards and alerts carry over. They outlive a Scheduler:
// under leader election each term builds a new one on the same Metrics.
// A nil *Metrics records nothing.
type Metrics struct {
	attempts       *prometheus.CounterVec
	attemptLatency *prometheus.HistogramVec
	algorithm      prometheus.Histogram
	sli            *prometheus.HistogramVec
	podAttempts    prometheus.Histogram
	preemptions    prometheus.Counter
	victims        prometheus.Histogram
	// The children every attempt touches, looked up once.
	scheduled, unschedulable, failed             prometheus.Counter
	scheduledLat, unschedulableLat, errorLatency prometheus.Observer

	// queue is the current term's queue, read at scrape time for
	// scheduler_pending_pods.
	queue   atomic.Pointer[Queue]
	pending *prometheus.Desc
}

// Result label values of scheduler_schedule_attempts_total.
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

// NewMetrics creates the scheduler's metrics for the profile named
// profile ("" means default-scheduler) and registers them on reg.
func NewMetrics(reg prometheus.Registerer, profile string) *Metrics {
	if profile == "" {
		profile = DefaultSchedulerName
	}
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scheduler_schedule_attempts_total",
			Help: "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
		}, []string{"result", "profile"}),
		attemptLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scheduler_scheduling_attempt_duration_seconds",
			Help:    "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"result", "profile"}),
		algorithm: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scheduler_scheduling_algorithm_duration_seconds",
			Help:    "Scheduling algorithm latency in seconds",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		sli: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scheduler_pod_scheduling_sli_duration_seconds",
			Help:    "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 20),
		}, []string{"attempts"}),
		podAttempts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scheduler_pod_scheduling_attempts",
			Help:    "Number of attempts to successfully schedule a pod.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 5),
		}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scheduler_preemption_attempts_total",
			Help: "Total preemption attempts in the cluster till now",
		}),
		victims: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scheduler_preemption_victims",
			Help:    "Number of selected preemption victims",
			Buckets: prometheus.ExponentialBuckets(1, 2, 7),
		}),
		pending: prometheus.NewDesc("scheduler_pending_pods",
			"Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed.",
			[]string{"queue"}, nil),
	}
	m.scheduled = m.attempts.WithLabelValues(resultScheduled, profile)
	m.unschedulable = m.attempts.WithLabelValues(resultUnschedulable, profile)
	m.failed = m.attempts.WithLabelValues(resultError, profile)
	m.scheduledLat = m.attemptLatency.WithLabelValues(resultScheduled, profile)
	m.unschedulableLat = m.attemptLatency.WithLabelValues(resultUnschedulable, profile)
	m.errorLatency = m.attemptLatency.WithLabelValues(resultError, profile)
	if reg != nil {
		reg.MustRegister(m.attempts, m.attemptLatency, m.algorithm, m.sli, m.podAttempts, m.preemptions, m.victims, pendingCollector{m})
	}
	return m
}

// pendingCollector reports the current queue's lengths when scraped, so
// that the queue's hot path keeps no gauges up to date.
type pendingCollector struct{ m *Metrics }

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.pending }

func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	q := c.m.queue.Load()
	if q == nil {
		return // not leading: no queue
	}
	active, backoff, unschedulable := q.Len()
	ch <- prometheus.MustNewConstMetric(c.m.pending, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(c.m.pending, prometheus.GaugeValue, float64(backoff), "backoff")
	ch <- prometheus.MustNewConstMetric(c.m.pending, prometheus.GaugeValue, float64(unschedulable), "unschedulable")
}

// serving makes q the queue scheduler_pending_pods reports.
func (m *Metrics) serving(q *Queue) {
	if m != nil {
		m.queue.Store(q)
	}
}

// algorithmDone records the time a decision took.
func (m *Metrics) algorithmDone(began time.Time) {
	if m != nil {
		m.algorithm.Observe(time.Since(began).Seconds())
	}
}

// unschedulableAttempt records an attempt that found no node, and the
// preemption it led to, if any (victims < 0: none was tried).
func (m *Metrics) unschedulableAttempt(began time.Time, victims int) {
	if m == nil {
		return
	}
	m.unschedulable.Inc()
	m.unschedulableLat.Observe(time.Since(began).Seconds())
	if victims >= 0 {
		m.preemptions.Inc()
		if victims > 0 {
			m.victims.Observe(float64(victims))
		}
	}
}

// boundAttempt records a successful binding of qp, attempt began: the
// attempt, and the pod's whole time in the queue by its number of
// attempts ("1" to "14", then "15+", as upstream bounds the label).
func (m *Metrics) boundAttempt(began time.Time, qp *queuedPod) {
	if m == nil {
		return
	}
	now := time.Now()
	m.scheduled.Inc()
	m.scheduledLat.Observe(now.Sub(began).Seconds())
	attempts := qp.attempts + 1
	m.podAttempts.Observe(float64(attempts))
	label := "15+"
	if attempts < 15 {
		label = strconv.Itoa(attempts)
	}
	m.sli.WithLabelValues(label).Observe(now.Sub(qp.added).Seconds())
}

// errorAttempt records an attempt that failed for a reason other than
// the cluster (a binding the API server refused).
func (m *Metrics) errorAttempt(began time.Time) {
	if m == nil {
		return
	}
	m.failed.Inc()
	m.errorLatency.Observe(time.Since(began).Seconds())
}
