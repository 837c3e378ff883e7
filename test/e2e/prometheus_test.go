package e2e

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// A real Prometheus, built from its Go module, scrapes a running cluster the
// way Prometheus's example Kubernetes configuration does: it discovers the
// nodes through the API (kubernetes_sd_configs) and scrapes each node's
// /metrics and /metrics/cadvisor through nodes/proxy, and the control
// plane's /metrics directly, all as a service account with only the
// permissions its ClusterRole grants. The API server is a static target:
// the test cluster listens on loopback, so default/kubernetes has no
// endpoints to discover (docs/compatibility.md).

const prometheusVersion = "v0.316.0" // Prometheus 3.x: the module's versions are v0.3xx

var prometheusBuild = &toolBuild{what: "prometheus " + prometheusVersion, build: buildPrometheus, done: make(chan struct{})}

// buildPrometheus installs the prometheus server at prometheusVersion into
// the tool cache, with Kubernetes service discovery only (its build tags
// leave out the cloud providers' SDKs, most of a cold build) and without
// its web UI's assets (embedded only with the builtinassets tag; the HTTP
// API is whole).
func buildPrometheus() (string, string, error) {
	gobin := filepath.Join(toolCache(), "prometheus-"+prometheusVersion)
	bin := filepath.Join(gobin, "prometheus")
	if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Path == "github.com/prometheus/prometheus" && info.Main.Version == prometheusVersion {
		return bin, "", nil // built by an earlier run
	}
	pkg := "github.com/prometheus/prometheus/cmd/prometheus@" + prometheusVersion
	if out, err := goCommand(os.TempDir(), []string{"GOBIN=" + gobin}, "install", "-tags", "remove_all_sd,enable_kubernetes_sd", pkg); err != nil {
		return "", downloadSkip(out), fmt.Errorf("go install %s: %w\n%s", pkg, err, out)
	}
	return bin, "", nil
}

// The scrape configuration: Prometheus's documented Kubernetes jobs, with
// the API server's address (%[1]d), CA (%[2]s) and token file (%[3]s)
// filled in; prometheusNodeJob is added once per node endpoint, with the
// job's name (%[4]s) and path (%[5]s).
const prometheusConfig = `global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
- job_name: kubernetes-apiservers
  scheme: https
  tls_config: {ca_file: %[2]s}
  authorization: {credentials_file: %[3]s}
  static_configs:
  - targets: [127.0.0.1:%[1]d]
`

const prometheusNodeJob = `- job_name: %[4]s
  scheme: https
  tls_config: {ca_file: %[2]s}
  authorization: {credentials_file: %[3]s}
  kubernetes_sd_configs:
  - role: node
    api_server: https://127.0.0.1:%[1]d
    tls_config: {ca_file: %[2]s}
    authorization: {credentials_file: %[3]s}
  relabel_configs:
  - action: labelmap
    regex: __meta_kubernetes_node_label_(.+)
  - target_label: __address__
    replacement: 127.0.0.1:%[1]d
  - source_labels: [__meta_kubernetes_node_name]
    regex: (.+)
    target_label: __metrics_path__
    replacement: /api/v1/nodes/$1/proxy/%[5]s
`

// The service account Prometheus runs as: what the Prometheus Helm chart's
// server ClusterRole grants.
const prometheusRBAC = `apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: prometheus}
rules:
- apiGroups: [""]
  resources: [nodes, nodes/proxy, nodes/metrics, services, endpoints, pods]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- nonResourceURLs: [/metrics, /metrics/cadvisor]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: prometheus}
subjects:
- {kind: ServiceAccount, name: prometheus, namespace: monitoring}
`

// scrapeWithPrometheus starts Prometheus against c and checks one query per
// component: the API server, the scheduler and the controllers share the
// control plane's /metrics; the kubelet, the proxy and DNS the node's
// /metrics; container usage is on /metrics/cadvisor. The cluster must run
// the Deployment web (one replica at least) and the pod bb, and have had a
// Service and DNS queries from a pod.
func scrapeWithPrometheus(t *testing.T, k kubectl, c *framework.Cluster) {
	bin := prometheusBuild.get(t)
	k.okIn(prometheusRBAC, "apply", "-f", "-")
	t.Cleanup(func() {
		_, _ = k.run("", "delete", "namespace", "monitoring", "--wait=false")
		_, _ = k.run("", "delete", "clusterrolebinding,clusterrole", "prometheus")
	})
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(strings.TrimSpace(k.ok("create", "token", "prometheus", "-n", "monitoring", "--duration=1h"))), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	ca := filepath.Join(c.DataDir, "tls", "ca.crt")
	yml := fmt.Sprintf(prometheusConfig, c.Port, ca, token) +
		fmt.Sprintf(prometheusNodeJob, c.Port, ca, token, "kubernetes-nodes", "metrics") +
		fmt.Sprintf(prometheusNodeJob, c.Port, ca, token, "kubernetes-cadvisor", "metrics/cadvisor")
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(framework.FreePort(t))
	p := startPrometheus(t, bin, config, filepath.Join(dir, "data"), listen)

	// Every target up: three jobs, one target each on one node.
	waitQuery(t, p, listen, `sum by (job) (up)`, 60*time.Second, func(r []promSample) string {
		up := map[string]float64{}
		for _, s := range r {
			up[s.Metric["job"]] = s.value()
		}
		for _, job := range []string{"kubernetes-apiservers", "kubernetes-nodes", "kubernetes-cadvisor"} {
			if up[job] != 1 {
				return fmt.Sprintf("job %s: %v targets up", job, up[job])
			}
		}
		return ""
	})
	checks := []struct{ component, query, want string }{
		{"API server", `sum(apiserver_request_total{job="kubernetes-apiservers",resource="pods",verb="LIST"})`, "> 0"},
		{"scheduler", `sum(scheduler_schedule_attempts_total{job="kubernetes-apiservers",result="scheduled"})`, ">= 4"},
		{"controllers", `sum(workqueue_adds_total{job="kubernetes-apiservers",name="deployment"})`, "> 0"},
		{"kubelet", `sum(kubelet_running_pods{job="kubernetes-nodes"})`, ">= 2"}, // bb and at least one web
		{"proxy", `sum(kubeproxy_sync_proxy_rules_duration_seconds_count{job="kubernetes-nodes"})`, "> 0"},
		{"DNS", `sum(coredns_dns_requests_total{job="kubernetes-nodes"})`, "> 0"},
		{"cAdvisor", `count(container_cpu_usage_seconds_total{job="kubernetes-cadvisor",namespace="default",pod=~"web-.*",container="web"})`, ">= 1"},
		{"cAdvisor network", `sum(container_network_receive_bytes_total{job="kubernetes-cadvisor",namespace="default",pod=~"web-.*"})`, "> 0"},
		{"cAdvisor rate", `sum(rate(container_cpu_usage_seconds_total{job="kubernetes-cadvisor",namespace="default",container="web"}[20s]))`, "> 0"},
		{"cAdvisor memory", `min(container_memory_working_set_bytes{job="kubernetes-cadvisor",namespace="default",container="web"})`, "> 0"},
	}
	for _, ch := range checks {
		waitQuery(t, p, listen, ch.query, 60*time.Second, func(r []promSample) string {
			if len(r) != 1 {
				return fmt.Sprintf("%s: %d series", ch.component, len(r))
			}
			if !compare(r[0].value(), ch.want) {
				return fmt.Sprintf("%s: %v, want %s", ch.component, r[0].value(), ch.want)
			}
			return ""
		})
		t.Logf("%s: %s", ch.component, ch.query)
	}
}

type promProcess struct {
	mu  sync.Mutex
	out strings.Builder
}

func (p *promProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *promProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startPrometheus(t *testing.T, bin, config, data, listen string) *promProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+config, "--storage.tsdb.path="+data,
		"--web.listen-address="+listen, "--log.level=warn")
	p := &promProcess{}
	cmd.Stdout, cmd.Stderr = p, p
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(p.log(), 30))
		}
	})
	return p
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, _ := strconv.ParseFloat(str, 64)
	return v
}

// waitQuery runs an instant query until check accepts its result (check
// returns "" then, or what is wrong).
func waitQuery(t *testing.T, p *promProcess, listen, query string, timeout time.Duration, check func([]promSample) string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		resp, err := client.Get("http://" + listen + "/api/v1/query?query=" + url.QueryEscape(query))
		if err == nil {
			var body struct {
				Status string `json:"status"`
				Error  string `json:"error"`
				Data   struct {
					Result []promSample `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			switch {
			case err != nil:
				last = err.Error()
			case body.Status != "success":
				last = body.Error
			default:
				if last = check(body.Data.Result); last == "" {
					return
				}
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s: %s after %v\ntargets:\n%s\nprometheus log:\n%s", query, last, timeout, targetHealth(listen), tail(p.log(), 20))
		}
		time.Sleep(time.Second)
	}
}

// compare reports whether v satisfies want, "> N" or ">= N".
func compare(v float64, want string) bool {
	op, num, _ := strings.Cut(want, " ")
	n, _ := strconv.ParseFloat(num, 64)
	if op == ">=" {
		return v >= n
	}
	return v > n
}

// targetHealth lists Prometheus's targets with their health and last
// scrape error, for a failure message.
func targetHealth(listen string) string {
	resp, err := http.Get("http://" + listen + "/api/v1/targets")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapePool string `json:"scrapePool"`
				ScrapeURL  string `json:"scrapeUrl"`
				Health     string `json:"health"`
				LastError  string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, tg := range body.Data.ActiveTargets {
		fmt.Fprintf(&b, "  %s %s: %s %s\n", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastError)
	}
	return b.String()
}
