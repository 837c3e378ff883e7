package proxy

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// metrics are the proxy's Prometheus metrics under kube-proxy's names, help
// strings, labels and buckets (k8s.io/kubernetes pkg/proxy/metrics), so
// that kube-proxy's dashboards and alerts carry over. They are the ones
// kube-proxy registers in nftables mode, with the ip_family label upstream
// added in 1.33 (always "IPv4" here), plus the full/partial sync histograms
// (upstream's nftables proxier observes them since its partial syncs, 1.31,
// though 1.32 registers them in iptables mode only). Left out: the cleanup
// failure counter (stale chains are deleted inside the sync transaction, so
// a failed cleanup is a failed sync), the healthz/livez counters (no health
// server) and any rule count (upstream has none for nftables: most of the
// work is map lookups, which a rule count does not measure).
//
// A nil *metrics records nothing.
type metrics struct {
	syncDuration, fullSyncDuration, partialSyncDuration prometheus.Observer
	networkProgramming                                  prometheus.Observer
	syncFailures                                        prometheus.Counter
	endpointChanges, serviceChanges                     prometheus.Counter
	endpointsPending, servicesPending                   prometheus.Gauge
	noLocalInternal, noLocalExternal                    prometheus.Gauge
	// The timestamps are resolved when set: upstream exports them only
	// after the first sync (or change), and a zero would read as a proxy
	// that has not synced since 1970.
	lastSync, lastQueued *prometheus.GaugeVec
}

// ipFamily is the ip_family label value: the proxy programs IPv4 only.
const ipFamily = string(corev1.IPv4Protocol)

// syncBuckets are upstream's buckets for the sync durations: 1ms to ~16s.
var syncBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// networkProgrammingBuckets are upstream's: 0.25s and 0.5s, every second
// to 59s, every 5s to 115s, every 30s to 5 minutes (and 0, as upstream's
// merge starts from a zero bucket).
func networkProgrammingBuckets() []float64 {
	b := []float64{0}
	b = append(b, prometheus.LinearBuckets(0.25, 0.25, 2)...)
	b = append(b, prometheus.LinearBuckets(1, 1, 59)...)
	b = append(b, prometheus.LinearBuckets(60, 5, 12)...)
	return append(b, prometheus.LinearBuckets(120, 30, 7)...)
}

// newMetrics creates the proxy's metrics and registers them on reg; nil
// reg means no metrics. Each proxy has its own collectors, so that several
// nodes in one process (tests) each register on their own registry.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	family := []string{"ip_family"}
	syncDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kubeproxy_sync_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds", Buckets: syncBuckets,
	}, family)
	fullSyncDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kubeproxy_sync_full_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds for full resyncs", Buckets: syncBuckets,
	}, family)
	partialSyncDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kubeproxy_sync_partial_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds for partial resyncs", Buckets: syncBuckets,
	}, family)
	networkProgramming := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kubeproxy_network_programming_duration_seconds", Help: "In Cluster Network Programming Latency in seconds", Buckets: networkProgrammingBuckets(),
	}, family)
	lastSync := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", Help: "The last time proxy rules were successfully synced",
	}, family)
	lastQueued := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", Help: "The last time a sync of proxy rules was queued",
	}, family)
	syncFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total", Help: "Cumulative proxy nftables sync failures",
	}, family)
	noLocal := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total", Help: "Number of services with a Local traffic policy and no endpoints",
	}, []string{"ip_family", "traffic_policy"})
	endpointChanges := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kubeproxy_sync_proxy_rules_endpoint_changes_total", Help: "Cumulative proxy rules Endpoint changes",
	})
	endpointsPending := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", Help: "Pending proxy rules Endpoint changes",
	})
	serviceChanges := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kubeproxy_sync_proxy_rules_service_changes_total", Help: "Cumulative proxy rules Service changes",
	})
	servicesPending := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kubeproxy_sync_proxy_rules_service_changes_pending", Help: "Pending proxy rules Service changes",
	})
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{
		syncDuration, fullSyncDuration, partialSyncDuration, networkProgramming, lastSync, lastQueued,
		syncFailures, noLocal, endpointChanges, endpointsPending, serviceChanges, servicesPending,
	} {
		if err := reg.Register(c); err != nil {
			for _, d := range done { // all or nothing
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("proxy: metrics: %w", err)
		}
		done = append(done, c)
	}
	return &metrics{
		syncDuration:        syncDuration.WithLabelValues(ipFamily),
		fullSyncDuration:    fullSyncDuration.WithLabelValues(ipFamily),
		partialSyncDuration: partialSyncDuration.WithLabelValues(ipFamily),
		networkProgramming:  networkProgramming.WithLabelValues(ipFamily),
		syncFailures:        syncFailures.WithLabelValues(ipFamily),
		endpointChanges:     endpointChanges,
		serviceChanges:      serviceChanges,
		endpointsPending:    endpointsPending,
		servicesPending:     servicesPending,
		// upstream's traffic_policy values
		noLocalInternal: noLocal.WithLabelValues(ipFamily, "internal"),
		noLocalExternal: noLocal.WithLabelValues(ipFamily, "external"),
		lastSync:        lastSync,
		lastQueued:      lastQueued,
	}, nil
}

// changed records one EndpointSlice (slice) or Service event, which
// queues a sync.
func (m *metrics) changed(slice bool) {
	if m == nil {
		return
	}
	if slice {
		m.endpointChanges.Inc()
	} else {
		m.serviceChanges.Inc()
	}
	m.lastQueued.WithLabelValues(ipFamily).SetToCurrentTime()
}

// pending records how many services have Service and EndpointSlice changes
// that no sync has taken yet.
func (m *metrics) pending(services, endpoints int) {
	if m == nil {
		return
	}
	m.servicesPending.Set(float64(services))
	m.endpointsPending.Set(float64(endpoints))
}

// synced records a sync that began at start, full or partial, and whether
// it failed. After a success it records the services with a Local policy
// and no local endpoint, and how long ago each change it carried was made
// (the EndpointSlices' last-change-trigger-time).
func (m *metrics) synced(start time.Time, full bool, err error, noLocal noLocalCounts, triggers []time.Time) {
	if m == nil {
		return
	}
	now := time.Now()
	took := now.Sub(start).Seconds()
	m.syncDuration.Observe(took)
	if full {
		m.fullSyncDuration.Observe(took)
	} else {
		m.partialSyncDuration.Observe(took)
	}
	if err != nil {
		m.syncFailures.Inc()
		return
	}
	for _, t := range triggers {
		m.networkProgramming.Observe(now.Sub(t).Seconds())
	}
	m.noLocalInternal.Set(float64(noLocal.internal))
	m.noLocalExternal.Set(float64(noLocal.external))
	m.lastSync.WithLabelValues(ipFamily).Set(float64(now.UnixNano()) / 1e9)
}
