package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

// failingNFT is a fake whose transactions fail while fail is set.
type failingNFT struct {
	*knftables.Fake
	fail atomic.Bool
}

func (f *failingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	if f.fail.Load() {
		return errors.New("injected nft failure")
	}
	return f.Fake.Run(ctx, tx)
}

// sample is the value of the series of family name with the given labels
// (besides ip_family="IPv4", which every labelled one here has) in reg:
// a counter's or gauge's value, a histogram's sample count. false: no
// such series.
func sample(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// hasLabels reports whether m has the label pairs kv (name, value, ...),
// and ip_family="IPv4" if it has ip_family at all.
func hasLabels(m *dto.Metric, kv []string) bool {
	have := map[string]string{}
	for _, l := range m.Label {
		have[l.GetName()] = l.GetValue()
	}
	if f, ok := have["ip_family"]; ok && f != "IPv4" {
		return false
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if have[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// TestMetrics runs a Proxier with a registry against a fake clientset and
// nftables and checks that kube-proxy's metrics follow its syncs: the
// first (full) sync, the changes that queue partial ones with their
// network programming latency, a Local policy without local endpoints, and
// a failed sync followed by a full one.
func TestMetrics(t *testing.T) {
	w := threeServices(ready("10.42.1.1", "node-a"), ready("10.42.1.2", "node-b"))
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range w.services {
		if _, err := client.CoreV1().Services("ns").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range w.slices {
		if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	nft := &failingNFT{Fake: knftables.NewFake(knftables.IPv4Family, "skiff")}
	p, err := newProxier(Config{
		NodeName: "node-a", NodeIPs: []string{"127.0.0.1"}, ClusterCIDR: "10.42.0.0/16",
		Client: client, MinSyncPeriod: time.Millisecond, Log: testLog(t), Registerer: reg,
		// The cap of the retry backoff after the injected failure.
		SyncPeriod: 100 * time.Millisecond,
	}, nft)
	if err != nil {
		t.Fatal(err)
	}
	p.prepareHost = func() bool { return true }

	if _, ok := sample(t, reg, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"); ok {
		t.Error("last sync timestamp exported before any sync")
	}
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	select {
	case <-p.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not sync")
	}

	value := func(name string, labels ...string) float64 {
		v, ok := sample(t, reg, name, labels...)
		if !ok {
			t.Fatalf("%s%v: no series", name, labels)
		}
		return v
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		eventually(t, what, 10*time.Second, cond)
	}

	if got := value("kubeproxy_sync_full_proxy_rules_duration_seconds"); got != 1 {
		t.Errorf("full syncs after the first sync: %v, want 1", got)
	}
	if got := value("kubeproxy_sync_proxy_rules_duration_seconds"); got < 1 {
		t.Errorf("syncs after the first sync: %v, want at least 1", got)
	}
	if last := value("kubeproxy_sync_proxy_rules_last_timestamp_seconds"); time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("last sync timestamp %v is not recent", last)
	}
	if got := value("kubeproxy_sync_proxy_rules_service_changes_total"); got != 3 {
		t.Errorf("service changes: %v, want 3 (the three services added)", got)
	}
	if got := value("kubeproxy_sync_proxy_rules_endpoint_changes_total"); got != 3 {
		t.Errorf("endpoint changes: %v, want 3 (the three slices added)", got)
	}
	if _, ok := sample(t, reg, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"); !ok {
		t.Error("no last queued timestamp after changes")
	}
	if got := value("kubeproxy_network_programming_duration_seconds"); got != 0 {
		t.Errorf("network programming observed for slices that predate the proxy: %v", got)
	}

	// An endpointslice controller write with a trigger time: a partial
	// sync that programs it, measured from that time.
	partial := value("kubeproxy_sync_partial_proxy_rules_duration_seconds")
	b := w.slices[1].DeepCopy()
	b.Endpoints = b.Endpoints[:1]
	b.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().UTC().Format(time.RFC3339Nano)}
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("network programming observed", func() bool {
		return value("kubeproxy_network_programming_duration_seconds") == 1
	})
	if got := value("kubeproxy_sync_proxy_rules_endpoint_changes_total"); got != 4 {
		t.Errorf("endpoint changes after one update: %v, want 4", got)
	}
	if got := value("kubeproxy_sync_partial_proxy_rules_duration_seconds"); got <= partial {
		t.Errorf("partial syncs: %v, want more than %v", got, partial)
	}
	if got := value("kubeproxy_sync_proxy_rules_endpoint_changes_pending"); got != 0 {
		t.Errorf("endpoint changes pending after the sync: %v", got)
	}
	if got := value("kubeproxy_sync_full_proxy_rules_duration_seconds"); got != 1 {
		t.Errorf("full syncs: %v, want still 1", got)
	}

	// internalTrafficPolicy Local with its only endpoint on another node.
	d := testService("d", "10.43.0.4", internalLocal)
	if _, err := client.CoreV1().Services("ns").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, testSlice("d", "d-1", ready("10.42.3.1", "node-b")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("a service without local endpoints counted", func() bool {
		return value("kubeproxy_sync_proxy_rules_no_local_endpoints_total", "traffic_policy", "internal") == 1
	})
	if got := value("kubeproxy_sync_proxy_rules_no_local_endpoints_total", "traffic_policy", "external"); got != 0 {
		t.Errorf("external no-local services: %v, want 0", got)
	}
	if err := client.CoreV1().Services("ns").Delete(ctx, "d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the service without local endpoints gone", func() bool {
		return value("kubeproxy_sync_proxy_rules_no_local_endpoints_total", "traffic_policy", "internal") == 0
	})

	// A failed transaction, then the full sync that repairs it.
	full := value("kubeproxy_sync_full_proxy_rules_duration_seconds")
	nft.fail.Store(true)
	if err := client.CoreV1().Services("ns").Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("a sync failure counted", func() bool {
		return value("kubeproxy_sync_proxy_rules_nftables_sync_failures_total") >= 1
	})
	mark := float64(time.Now().UnixNano()) / 1e9
	nft.fail.Store(false)
	waitFor("a successful sync after the failure", func() bool {
		return value("kubeproxy_sync_proxy_rules_last_timestamp_seconds") > mark
	})
	if got := value("kubeproxy_sync_full_proxy_rules_duration_seconds"); got <= full {
		t.Errorf("full syncs: %v, want more than %v after a failure", got, full)
	}
}

// TestMetricsPerProxier: each proxier registers its own collectors, so
// two of them (two nodes in one process) take two registries, and a
// second one on the same registry is an error rather than a panic.
func TestMetricsPerProxier(t *testing.T) {
	newOn := func(reg prometheus.Registerer) error {
		_, err := newProxier(Config{Client: fake.NewClientset(), Registerer: reg}, knftables.NewFake(knftables.IPv4Family, "skiff"))
		return err
	}
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	if err := newOn(a); err != nil {
		t.Fatal(err)
	}
	if err := newOn(b); err != nil {
		t.Fatalf("a second proxier on its own registry: %v", err)
	}
	var already prometheus.AlreadyRegisteredError
	if err := newOn(a); !errors.As(err, &already) {
		t.Errorf("a second proxier on the same registry: %v, want AlreadyRegisteredError", err)
	}
	if err := newOn(nil); err != nil {
		t.Errorf("no registry: %v", err)
	}
}
