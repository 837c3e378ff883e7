package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/component-base/metrics/legacyregistry"
)

// upstreamMetricPrefixes name the metrics that upstream's libraries
// record in their own registry (component-base's legacyregistry) and that
// the server exports beside its own, under upstream's names: the webhook
// and policy admission plugins and the CRD conversion webhook client.
// Nothing else of that registry is exported: its Go and process
// collectors would duplicate the server's.
var upstreamMetricPrefixes = []string{
	"apiserver_admission_",
	"apiserver_validating_admission_policy_",
	"apiserver_webhooks_",
	"apiserver_crd_conversion_webhook_",
}

// upstreamMetrics gathers those metrics from the legacy registry.
type upstreamMetrics struct{}

func (upstreamMetrics) Gather() ([]*dto.MetricFamily, error) {
	all, err := legacyregistry.DefaultGatherer.Gather()
	var out []*dto.MetricFamily
	for _, f := range all {
		for _, p := range upstreamMetricPrefixes {
			if strings.HasPrefix(f.GetName(), p) {
				out = append(out, f)
				break
			}
		}
	}
	return out, err
}

// withUpstreamMetrics adds upstream's admission metrics to g.
func withUpstreamMetrics(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.Gatherers{g, upstreamMetrics{}}
}
