package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the request metrics upstream's apiserver exports, under the
// same names so that dashboards carry over.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
		}, []string{"verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "apiserver_request_duration_seconds",
			Help: "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
			// Upstream's buckets.
			Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
		}, []string{"verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

// reportedVerbs are the verb label values upstream reports for each
// Kubernetes verb (its route instrumentation's, upper case).
var reportedVerbs = map[string]string{
	"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT",
	"patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETECOLLECTION",
}

// observe records one request under upstream's labels: the verb upper
// case (APPLY for a server-side apply, CONNECT for exec, attach,
// port-forward and proxy, the HTTP method for non-resource requests),
// dry_run "All" or "", scope cluster, namespace or resource (a named
// object), component "apiserver".
func (m *metrics) observe(r *http.Request, info requestInfo, code int, d time.Duration) {
	verb := reportedVerbs[info.verb]
	switch {
	case !info.isResource || verb == "":
		verb = r.Method
	case verb == "PATCH" && r.Header.Get("Content-Type") == "application/apply-patch+yaml":
		verb = "APPLY"
	}
	if info.isResource && isConnect(info.sub) {
		verb = "CONNECT"
	}
	resource, scope := "", ""
	if info.isResource {
		resource = info.resource
		switch {
		case info.name != "":
			scope = "resource"
		case info.namespace != "":
			scope = "namespace"
		default:
			scope = "cluster"
		}
	}
	dryRun := ""
	if info.dryRun {
		dryRun = "All"
	}
	m.requests.WithLabelValues(verb, dryRun, info.group, info.version, resource, info.sub, scope, "apiserver", strconv.Itoa(code)).Inc()
	if verb != "WATCH" && verb != "CONNECT" { // their duration is their lifetime, not a latency
		m.latency.WithLabelValues(verb, dryRun, info.group, info.version, resource, info.sub, scope, "apiserver").Observe(d.Seconds())
	}
}

// isConnect reports whether sub is a subresource upstream serves with the
// CONNECT verb: a stream or a proxy.
func isConnect(sub string) bool {
	switch sub {
	case "exec", "attach", "portforward", "proxy":
		return true
	}
	return false
}

func (m *metrics) handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
