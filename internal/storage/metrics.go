package storage

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestDuration times every etcd request a Store makes.
var requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "skiff_etcd_request_duration_seconds",
	Help:    "Latency of etcd requests made by the storage layer, by operation and resource prefix.",
	Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
}, []string{"operation", "type"})

// Collectors returns the storage layer's metrics for the API server to
// register; nothing is registered globally.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{requestDuration}
}

// observe records one request of op on the resource at prefix that
// started at start.
func observe(op, prefix string, start time.Time) {
	requestDuration.WithLabelValues(op, prefix).Observe(time.Since(start).Seconds())
}
