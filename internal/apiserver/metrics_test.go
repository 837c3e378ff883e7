package apiserver

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The request metrics carry upstream's labels and verb values, which
// dashboards and alerts select on (verb="LIST", scope="namespace", ...).
func TestRequestMetricsLabels(t *testing.T) {
	tests := []struct {
		method, path, contentType string
		want                      []string // verb, dry_run, group, version, resource, subresource, scope
	}{
		{"GET", "/api/v1/namespaces/default/pods", "", []string{"LIST", "", "", "v1", "pods", "", "namespace"}},
		{"GET", "/api/v1/pods?watch=true", "", []string{"WATCH", "", "", "v1", "pods", "", "cluster"}},
		{"GET", "/api/v1/nodes/n1", "", []string{"GET", "", "", "v1", "nodes", "", "resource"}},
		{"POST", "/apis/apps/v1/namespaces/a/deployments?dryRun=All", "", []string{"POST", "All", "apps", "v1", "deployments", "", "namespace"}},
		{"PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale", "", []string{"PUT", "", "apps", "v1", "deployments", "scale", "resource"}},
		{"PATCH", "/api/v1/namespaces/a/configmaps/c", "application/apply-patch+yaml", []string{"APPLY", "", "", "v1", "configmaps", "", "resource"}},
		{"PATCH", "/api/v1/namespaces/a/configmaps/c", "application/merge-patch+json", []string{"PATCH", "", "", "v1", "configmaps", "", "resource"}},
		{"DELETE", "/api/v1/namespaces/a/pods", "", []string{"DELETECOLLECTION", "", "", "v1", "pods", "", "namespace"}},
		{"POST", "/api/v1/namespaces/a/pods/p/exec", "", []string{"CONNECT", "", "", "v1", "pods", "exec", "resource"}},
		{"GET", "/api/v1/nodes/n1/proxy/metrics", "", []string{"CONNECT", "", "", "v1", "nodes", "proxy", "resource"}},
		{"GET", "/healthz", "", []string{"GET", "", "", "", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			m := newMetrics(prometheus.NewRegistry())
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			m.observe(r, parseRequest(r), 200, time.Millisecond)
			labels := append(append([]string{}, tt.want...), "apiserver", "200")
			if got := testutil.ToFloat64(m.requests.WithLabelValues(labels...)); got != 1 {
				t.Errorf("apiserver_request_total{%s} = %v, want 1", strings.Join(labels, ","), got)
			}
		})
	}
}
