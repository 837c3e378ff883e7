package sim_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/sim"
	"github.com/skiff-io/skiff/test/framework"
)

// sample is one line of a Prometheus text body.
type sample struct {
	value float64
	ms    int64 // timestamp; 0 when absent
}

// parseSamples maps each sample line's name{labels} to its value; it
// fails the test on a line it cannot read.
func parseSamples(t *testing.T, body string) map[string]sample {
	t.Helper()
	out := map[string]sample{}
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			t.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		s := sample{value: v}
		if len(f) == 3 {
			if s.ms, err = strconv.ParseInt(f[2], 10, 64); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
		}
		out[f[0]] = s
	}
	return out
}

func TestKubeletEndpoint(t *testing.T) {
	cluster := framework.StartInProcess(t)
	client := unlimitedClient(t, cluster)
	ctx := context.Background()

	cfg := sim.Defaults()
	cfg.Nodes = 3
	cfg.NamePrefix = "kub-"
	cfg.KubeletPort = 0
	cfg.HeartbeatInterval = time.Second
	s := sim.New(client, cfg)
	startSim(t, s)
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.WaitReady(waitCtx); err != nil {
		t.Fatal(err)
	}

	node, err := client.CoreV1().Nodes().Get(ctx, "kub-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 || port == sim.DefaultKubeletPort {
		t.Fatalf("kubelet port %d, want the free port the simulator picked", port)
	}
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	if ip != "127.0.0.3" {
		t.Fatalf("InternalIP %q, want 127.0.0.3", ip)
	}

	// hot sets its usage; cool uses half its requests (the default
	// fraction); away runs on another node.
	hot := newPod("hot", "kub-1", "nginx", corev1.RestartPolicyAlways)
	hot.Annotations = map[string]string{sim.AnnotationCPUUsage: "250m", sim.AnnotationMemoryUsage: "64Mi"}
	cool := newPod("cool", "kub-1", "nginx", corev1.RestartPolicyAlways)
	cool.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("400m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
	}
	cool.Spec.Containers = append(cool.Spec.Containers, corev1.Container{Name: "idle", Image: "nginx"})
	away := newPod("away", "kub-0", "nginx", corev1.RestartPolicyAlways)
	pods := client.CoreV1().Pods("default")
	for _, p := range []*corev1.Pod{hot, cool, away} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
	}
	for _, name := range []string{"hot", "cool", "away"} {
		poll(t, name+" Running", 10*time.Second, func(ctx context.Context) (bool, error) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
	}

	// The admin's client certificate is of the cluster CA, as the API
	// server's kubelet client certificate is.
	rc, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := rest.TLSConfigFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	withCert.RootCAs = nil
	withCert.InsecureSkipVerify = true // the simulator's serving certificate may still be self-signed
	httpClient := func(tc *tls.Config) *http.Client {
		tr := &http.Transport{TLSClientConfig: tc}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	authed := httpClient(withCert)
	anonymous := httpClient(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // see above
	get := func(c *http.Client, host, path string) (int, string, error) {
		resp, err := c.Get("https://" + net.JoinHostPort(host, strconv.Itoa(port)) + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	t.Run("the API server reaches it, verifying its certificate", func(t *testing.T) {
		// The simulator's serving certificate comes from the cluster CA
		// through a CSR; the API server refuses the self-signed one.
		poll(t, "nodes/kub-1/proxy/metrics/resource through the API server", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/kub-1/proxy/metrics/resource").DoRaw(ctx)
			return err == nil, nil
		})
	})

	t.Run("metrics", func(t *testing.T) {
		code, body, err := get(authed, ip, "/metrics/resource")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics/resource: %d %v\n%s", code, err, body)
		}
		got := parseSamples(t, body)
		p, err := pods.Get(ctx, "hot", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		started := p.Status.ContainerStatuses[0].State.Running.StartedAt.Time

		key := func(family, pod, container string) string {
			return fmt.Sprintf(`%s{container=%q,namespace="default",pod=%q}`, family, container, pod)
		}
		cpu, ok := got[key("container_cpu_usage_seconds_total", "hot", "main")]
		if !ok {
			t.Fatalf("no cpu sample for hot/main:\n%s", body)
		}
		// Status times have a resolution of a second.
		if elapsed := time.UnixMilli(cpu.ms).Sub(started).Seconds(); math.Abs(cpu.value-0.25*elapsed) > 0.25*1.01 {
			t.Errorf("hot cpu %v after %vs, want 0.25 cores", cpu.value, elapsed)
		}
		if now := time.Now().UnixMilli(); cpu.ms < now-10_000 || cpu.ms > now {
			t.Errorf("timestamp %d, now %d", cpu.ms, now)
		}
		for _, tc := range []struct {
			key  string
			want float64
		}{
			{key("container_memory_working_set_bytes", "hot", "main"), 64 << 20},
			{key("container_memory_working_set_bytes", "cool", "main"), 64 << 20},
			{key("container_memory_working_set_bytes", "cool", "idle"), 0},
			{key("container_cpu_usage_seconds_total", "cool", "idle"), 0},
			{key("container_start_time_seconds", "hot", "main"), float64(started.Unix())},
			{"node_memory_working_set_bytes", 128<<20 + 256<<20}, // pods and the node's own
			{`pod_memory_working_set_bytes{namespace="default",pod="cool"}`, 64 << 20},
			{"resource_scrape_error", 0},
		} {
			if s, ok := got[tc.key]; !ok || s.value != tc.want {
				t.Errorf("%s = %v (present %v), want %v", tc.key, s.value, ok, tc.want)
			}
		}
		coolCPU := got[key("container_cpu_usage_seconds_total", "cool", "main")].value
		if coolCPU <= 0 {
			t.Errorf("cool cpu = %v, want 0.2 cores' worth", coolCPU)
		}
		if n := got["node_cpu_usage_seconds_total"].value; n <= 0 {
			t.Errorf("node cpu %v, want > 0", n)
		}
		if strings.Contains(body, `pod="away"`) {
			t.Error("a pod of another node is reported")
		}

		// The counters grow.
		poll(t, "cpu counter growing", 10*time.Second, func(context.Context) (bool, error) {
			_, body, err := get(authed, ip, "/metrics/resource")
			if err != nil {
				return false, err
			}
			later := parseSamples(t, body)
			return later[key("container_cpu_usage_seconds_total", "hot", "main")].value > cpu.value &&
				later["node_cpu_usage_seconds_total"].value > got["node_cpu_usage_seconds_total"].value, nil
		})
	})

	t.Run("healthz and other paths", func(t *testing.T) {
		if code, body, err := get(authed, ip, "/healthz"); err != nil || code != http.StatusOK || body != "ok" {
			t.Errorf("GET /healthz: %d %q %v", code, body, err)
		}
		if code, _, err := get(authed, ip, "/pods"); err != nil || code != http.StatusNotFound {
			t.Errorf("GET /pods: %d %v, want 404", code, err)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		if code, _, err := get(anonymous, ip, "/metrics/resource"); err != nil || code != http.StatusUnauthorized {
			t.Errorf("GET without a client certificate: %d %v, want 401", code, err)
		}
	})

	t.Run("not a node", func(t *testing.T) {
		// 127.0.0.1 is no node's; 127.0.0.9 would be kub-7's.
		for _, host := range []string{"127.0.0.1", "127.0.0.9"} {
			if code, _, err := get(authed, host, "/metrics/resource"); err != nil || code != http.StatusNotFound {
				t.Errorf("GET from %s: %d %v, want 404", host, code, err)
			}
		}
	})

	t.Run("killed node does not answer", func(t *testing.T) {
		if code, _, err := get(authed, "127.0.0.4", "/healthz"); err != nil || code != http.StatusOK {
			t.Fatalf("kub-2 before Kill: %d %v", code, err)
		}
		s.Kill("kub-2")
		if code, _, err := get(authed, "127.0.0.4", "/healthz"); err == nil {
			t.Errorf("kub-2 after Kill answered %d", code)
		}
	})
}
