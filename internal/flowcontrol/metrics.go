package flowcontrol

import "github.com/prometheus/client_golang/prometheus"

// The reasons a request is rejected, as upstream's
// apiserver_flowcontrol_rejected_requests_total labels them.
const (
	reasonQueueFull        = "queue-full"
	reasonConcurrencyLimit = "concurrency-limit"
	reasonTimeout          = "time-out"
	reasonCancelled        = "cancelled"
)

var reasons = [...]string{reasonQueueFull, reasonConcurrencyLimit, reasonTimeout, reasonCancelled}

// metricsSet holds upstream's apiserver_flowcontrol_* metrics that are
// cheap to keep (a few of upstream's many).
type metricsSet struct {
	dispatched     *prometheus.CounterVec   // priority_level, flow_schema
	rejected       *prometheus.CounterVec   // priority_level, flow_schema, reason
	waitDuration   *prometheus.HistogramVec // priority_level, flow_schema, execute
	inQueue        *prometheus.GaugeVec     // priority_level, flow_schema
	executing      *prometheus.GaugeVec     // priority_level, flow_schema
	executingSeats *prometheus.GaugeVec     // priority_level
	nominalLimit   *prometheus.GaugeVec     // priority_level
	currentLimit   *prometheus.GaugeVec     // priority_level
}

func newMetrics(reg prometheus.Registerer) *metricsSet {
	ls := []string{"priority_level", "flow_schema"}
	m := &metricsSet{
		dispatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_flowcontrol_dispatched_requests_total",
			Help: "Number of requests executed by API Priority and Fairness subsystem",
		}, ls),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_flowcontrol_rejected_requests_total",
			Help: "Number of requests rejected by API Priority and Fairness subsystem",
		}, append(ls, "reason")),
		waitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_flowcontrol_request_wait_duration_seconds",
			Help:    "Length of time a request spent waiting in its queue",
			Buckets: []float64{0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30},
		}, append(ls, "execute")),
		inQueue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_flowcontrol_current_inqueue_requests",
			Help: "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
		}, ls),
		executing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_flowcontrol_current_executing_requests",
			Help: "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
		}, ls),
		executingSeats: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_flowcontrol_current_executing_seats",
			Help: "Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem",
		}, []string{"priority_level"}),
		nominalLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_flowcontrol_nominal_limit_seats",
			Help: "Nominal number of execution seats configured for each priority level",
		}, []string{"priority_level"}),
		currentLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_flowcontrol_current_limit_seats",
			Help: "current derived number of execution seats available to each priority level",
		}, []string{"priority_level"}),
	}
	if reg != nil {
		reg.MustRegister(m.dispatched, m.rejected, m.waitDuration, m.inQueue, m.executing,
			m.executingSeats, m.nominalLimit, m.currentLimit)
	}
	return m
}

// schemaMetrics are one flow schema's series, resolved once per
// configuration so that a request only touches atomics.
type schemaMetrics struct {
	dispatched         prometheus.Counter
	rejected           [len(reasons)]prometheus.Counter
	waitExecuted       prometheus.Observer
	waitRejected       prometheus.Observer
	inQueue, executing prometheus.Gauge
}

func (m *metricsSet) forSchema(level, schema string) *schemaMetrics {
	sm := &schemaMetrics{
		dispatched:   m.dispatched.WithLabelValues(level, schema),
		waitExecuted: m.waitDuration.WithLabelValues(level, schema, "true"),
		waitRejected: m.waitDuration.WithLabelValues(level, schema, "false"),
		inQueue:      m.inQueue.WithLabelValues(level, schema),
		executing:    m.executing.WithLabelValues(level, schema),
	}
	for i, r := range reasons {
		sm.rejected[i] = m.rejected.WithLabelValues(level, schema, r)
	}
	return sm
}

func (sm *schemaMetrics) reject(reason string) {
	for i, r := range reasons {
		if r == reason {
			sm.rejected[i].Inc()
		}
	}
}
