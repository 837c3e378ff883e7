// Package resourcemetrics produces the numbers of the metrics.k8s.io API
// (NodeMetrics and PodMetrics, what `kubectl top` and the
// HorizontalPodAutoscaler read) inside the skiff API server, in place of
// a separately deployed metrics-server.
//
// # How it fits
//
// A Scraper GETs every Ready node's kubelet /metrics/resource (the
// Prometheus text our kubelet writes in internal/kubelet/server/metrics.go,
// and upstream kubelets write under the same names) every Interval, turns
// the cumulative CPU counters into rates, and publishes the result to a
// Store. internal/apiserver serves metrics.k8s.io/v1beta1 from the Store,
// joining labels and creation timestamps from the Node and Pod objects it
// already has. The caller supplies the node list and the HTTP client
// (addresses, TLS, credentials); this package does no serving and no I/O
// of its own. Nothing is written to etcd: the numbers live in memory and
// are rebuilt within two intervals of a restart.
//
// # Organization
//
//   - exposition.go: the format itself, written by skiff's kubelet and
//     by simulated nodes (Exposition.Write), so writer and reader agree.
//   - parse.go: a streaming parser for the five families we use, bounded
//     in body size, line length and series count, tolerant of everything
//     else.
//   - usage.go: the rate math on one node's readings, as pure state
//     transitions, and the building of the API objects.
//   - store.go: the Store, one immutable snapshot swapped per pass.
//   - scraper.go: the passes, their parallelism, timeouts and logging.
//
// # Semantics, as metrics-server
//
// CPU usage is (cumulative2 - cumulative1) / (t2 - t1) between two
// consecutive readings of one container or node, reported with window
// t2 - t1 and timestamp t2; memory is the working set of the latest
// reading. A container seen for the first time, or restarted (its start
// time changed, or its counter went down), uses its start time as an
// earlier reading of zero, so a new pod has CPU usage after its first
// scrape. A pod is reported only when every container its kubelet lists
// has both values; a node likewise. Zero counters and working sets count
// as missing. A pod's timestamp and window are those of its container with
// the earliest reading. CPU is a Quantity in nanocores (DecimalSI),
// memory in bytes (BinarySI).
//
// # Where it differs from metrics-server
//
//   - The start-time stand-in applies when the container started between
//     5s and two intervals before the reading; metrics-server uses 10s and
//     one interval. The lower bound lets `kubectl top pod` show a new pod
//     sooner; the upper one tolerates one delayed scrape while still
//     refusing to report a long-running container's lifetime average as
//     its current usage (after an API server restart, say).
//   - A node that fails a scrape leaves the results at once; its readings
//     are kept for two intervals so the rate can span the gap when it
//     comes back, and dropped after. The failure is logged when it starts
//     and when it ends, not at every scrape.
//   - A kubelet that sends more than 32 MiB or 100,000 series of our
//     families fails its scrape; metrics-server has no such bound.
//   - Swap usage (node_swap_usage_bytes, container_swap_usage_bytes) is
//     not read or reported.
package resourcemetrics
