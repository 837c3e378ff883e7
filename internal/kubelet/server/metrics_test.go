package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics parses a text exposition into its families by name.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return fams
}

// labelsOf is a sample's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestMetricsServesTheRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_test_events_total", Help: "Events seen in the test."}, []string{"kind"})
	reg.MustRegister(c)
	c.WithLabelValues("a").Add(3)
	h := startServerConfig(t, &fakePods{}, &fakeRuntime{}, func(cfg *Config) { cfg.Metrics = reg }, nil)

	code, body := h.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", code, body)
	}
	fam := parseMetrics(t, body)["skiff_test_events_total"]
	if fam.GetType() != dto.MetricType_COUNTER || len(fam.GetMetric()) != 1 ||
		labelsOf(fam.GetMetric()[0])["kind"] != "a" || fam.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Errorf("GET /metrics: skiff_test_events_total = %v; body:\n%s", fam, body)
	}

	// A client that asks for OpenMetrics gets it, as promhttp serves it.
	req, err := http.NewRequest(http.MethodGet, h.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(string(b), "# EOF\n") {
		t.Errorf("OpenMetrics: Content-Type %q, body:\n%s", ct, b)
	}
}

func TestMetricsWithoutRegistryIsNotFound(t *testing.T) {
	h := startServer(t, &fakePods{}, &fakeRuntime{}, nil)
	code, body := h.get(t, "/metrics")
	if st := decodeStatus(t, body); code != http.StatusNotFound || st.Reason != "NotFound" {
		t.Errorf("GET /metrics without Config.Metrics = %d %+v, want a 404 NotFound Status", code, st)
	}
}

// Every metrics path is the nodes/metrics subresource: refused without it,
// served with it.
func TestMetricsNeedNodesMetrics(t *testing.T) {
	paths := []string{"/metrics", "/metrics/cadvisor", "/metrics/resource"}
	for _, allowed := range []bool{false, true} {
		reviews := &fakeReviews{allow: func(a Attributes) bool { return a.Subresource != "metrics" || allowed }}
		h := startServerConfig(t, &fakePods{}, &fakeRuntime{},
			func(cfg *Config) { cfg.Metrics = prometheus.NewRegistry(); cfg.Auth = reviews }, nil)
		for _, path := range paths {
			code, body := h.get(t, path)
			if allowed {
				if code != http.StatusOK {
					t.Errorf("GET %s with nodes/metrics = %d %s", path, code, body)
				}
				continue
			}
			want := "Forbidden (user=kube-apiserver-kubelet-client, verb=get, resource=nodes, subresource=metrics)"
			if code != http.StatusForbidden || strings.TrimSpace(body) != want {
				t.Errorf("GET %s without nodes/metrics = %d %q, want 403 %q", path, code, body, want)
			}
		}
	}
}
