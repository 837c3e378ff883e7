package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/skiff-io/skiff/internal/resourcemetrics"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// A container's usage as the fake kubelet reports it: cumulative CPU
// growing at cores per second since start, a constant working set.
type fakeUsage struct {
	namespace, pod, container string
	cores                     float64
	memory                    int64
	noMemory                  bool
}

func renderUsage(now, start time.Time, usage []fakeUsage) string {
	up := now.Sub(start).Seconds()
	v := func(x float64) *resourcemetrics.Value { return &resourcemetrics.Value{V: x, At: now} }
	e := resourcemetrics.Exposition{Node: resourcemetrics.NodeUsage{CPUSeconds: v(1.5 * up), MemoryBytes: v(1 << 30)}}
	for _, u := range usage {
		c := resourcemetrics.ContainerUsage{Name: u.container, Start: start, CPUSeconds: v(u.cores * up)}
		if !u.noMemory {
			c.MemoryBytes = v(float64(u.memory))
		}
		e.Pods = append(e.Pods, resourcemetrics.PodUsage{Namespace: u.namespace, Name: u.pod, Containers: []resourcemetrics.ContainerUsage{c}})
	}
	var b bytes.Buffer
	e.Write(&b)
	return b.String()
}

// TestResourceMetrics: the API server scrapes a kubelet's
// /metrics/resource and serves metrics.k8s.io as metrics-server does —
// rates over the cumulative counters, pods without a full sample left
// out, selectors on the pods' labels, no watch, RBAC through the
// aggregated view role — and the stock `kubectl top` reads it.
func TestResourceMetrics(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers(), func(cfg *server.Config) {
		cfg.MetricResolution = 300 * time.Millisecond
	})
	ctx := ctxT(t)
	cs := c.Client
	k := startFakeKubelet(t, c.DataDir)
	start := time.Now().Add(-20 * time.Second)
	k.setUsage(func(now time.Time) string {
		return renderUsage(now, start, []fakeUsage{
			{"mx", "web-1", "app", 0.25, 50 << 20, false},
			{"mx", "db-1", "a", 0.1, 10 << 20, false},
			{"mx", "db-1", "b", 0.05, 10 << 20, false},
			{"mx", "partial", "app", 0.2, 0, true},
			{"other", "web-1", "app", 0.5, 1 << 20, false},
			{"mx", "pending", "app", 0.5, 1 << 20, false},
		})
	})
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "m1", Labels: map[string]string{"pool": "blue"}},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.port)}},
			Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"mx", "other"} {
		mustNamespace(t, cs, ns)
	}
	for _, p := range []struct{ ns, name, app string }{
		{"mx", "web-1", "web"}, {"mx", "db-1", "db"}, {"mx", "partial", "web"}, {"mx", "idle", "web"}, {"other", "web-1", "web"},
		{"mx", "pending", "web"},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"app": p.app}},
			Spec:       corev1.PodSpec{NodeName: "m1", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		}
		created, err := cs.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.name == "pending" { // as metrics-server: only Running pods have metrics
			continue
		}
		created.Status.Phase = corev1.PodRunning
		if _, err := cs.CoreV1().Pods(p.ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mc := metricsclient.NewForConfigOrDie(c.Config)
	var pods *metricsv1beta1.PodMetricsList
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		pods, err = mc.MetricsV1beta1().PodMetricses("mx").List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 2, nil
	}); err != nil {
		t.Fatalf("pod metrics in mx never listed 2 pods (the two with full samples): %+v", pods)
	}

	t.Run("usage", func(t *testing.T) {
		byName := map[string]metricsv1beta1.PodMetrics{}
		for _, p := range pods.Items {
			byName[p.Name] = p
		}
		web, db := byName["web-1"], byName["db-1"]
		if len(web.Containers) != 1 || len(db.Containers) != 2 {
			t.Fatalf("containers: web-1 %+v, db-1 %+v", web.Containers, db.Containers)
		}
		checkNear(t, "web-1 cpu", web.Containers[0].Usage.Cpu(), 0.25)
		if got := web.Containers[0].Usage.Memory().Value(); got != 50<<20 {
			t.Errorf("web-1 memory = %d, want %d", got, 50<<20)
		}
		checkNear(t, "db-1 container b cpu", db.Containers[1].Usage.Cpu(), 0.05)
		if web.Window.Duration <= 0 || web.Timestamp.IsZero() {
			t.Errorf("web-1 window %v timestamp %v: want both set", web.Window, web.Timestamp)
		}
		if web.Labels["app"] != "web" || web.Namespace != "mx" {
			t.Errorf("web-1 labels %v namespace %q: want the pod's", web.Labels, web.Namespace)
		}
		n, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, "m1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkNear(t, "node cpu", n.Usage.Cpu(), 1.5)
		if n.Usage.Memory().Value() != 1<<30 || n.Labels["pool"] != "blue" {
			t.Errorf("node m1: memory %v labels %v", n.Usage.Memory(), n.Labels)
		}
	})

	t.Run("selectors and namespaces", func(t *testing.T) {
		got := func(opts metav1.ListOptions, ns string) []string {
			t.Helper()
			l, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range l.Items {
				names = append(names, p.Namespace+"/"+p.Name)
			}
			return names
		}
		for _, tc := range []struct {
			ns   string
			opts metav1.ListOptions
			want string
		}{
			{"mx", metav1.ListOptions{LabelSelector: "app=web"}, "mx/web-1"},
			{"mx", metav1.ListOptions{FieldSelector: "metadata.name=db-1"}, "mx/db-1"},
			{"", metav1.ListOptions{LabelSelector: "app=web"}, "mx/web-1 other/web-1"},
			{"", metav1.ListOptions{FieldSelector: "metadata.namespace=other"}, "other/web-1"},
			{"mx", metav1.ListOptions{LabelSelector: "app=none"}, ""},
		} {
			if g := strings.Join(got(tc.opts, tc.ns), " "); g != tc.want {
				t.Errorf("list %q %+v = %q, want %q", tc.ns, tc.opts, g, tc.want)
			}
		}
		nodes, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{LabelSelector: "pool=green"})
		if err != nil || len(nodes.Items) != 0 {
			t.Errorf("nodes pool=green: %v, %v; want none", nodes, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		// metrics-server's answers, word for word.
		for name, want := range map[string]string{
			"idle":    `pods.metrics.k8s.io "mx/idle" not found`,
			"pending": `pods.metrics.k8s.io "mx/pending" not found`,
			"ghost":   `pod "ghost" not found`,
		} {
			_, err := mc.MetricsV1beta1().PodMetricses("mx").Get(ctx, name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) || err.Error() != want {
				t.Errorf("get pod metrics %s: %v, want NotFound %q", name, err, want)
			}
		}
		_, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, "ghost", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) || err.Error() != `node "ghost" not found` {
			t.Errorf("get node metrics of no node: %v", err)
		}
		_, err = mc.MetricsV1beta1().PodMetricses("mx").Watch(ctx, metav1.ListOptions{})
		if !apierrors.IsMethodNotSupported(err) {
			t.Errorf("watch: %v, want 405 MethodNotSupported", err)
		}
		_, err = mc.MetricsV1beta1().PodMetricses("mx").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=m1"})
		if !apierrors.IsBadRequest(err) {
			t.Errorf("an unsupported field selector: %v, want 400", err)
		}
	})

	t.Run("authorization", func(t *testing.T) {
		reader := impersonated(c.Config, "system:serviceaccount:mx:reader")
		_, err := metricsclient.NewForConfigOrDie(reader).MetricsV1beta1().PodMetricses("mx").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("a service account without a role: %v, want 403", err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "reader-view", Namespace: "mx"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: "mx"}},
		}
		if _, err := cs.RbacV1().RoleBindings("mx").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := metricsclient.NewForConfigOrDie(reader).MetricsV1beta1().PodMetricses("mx").List(ctx, metav1.ListOptions{})
			return err == nil, nil
		}); err != nil {
			t.Error("view (which aggregates system:aggregated-metrics-reader) does not let a service account read pod metrics")
		}
	})

	t.Run("kubectl top", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl is not installed")
		}
		run := func(args ...string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
			cmd.Env = os.Environ()
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl %v: %v\n%s", args, err, stderr.String())
			}
			return out.String()
		}
		out := run("top", "pod", "-n", "mx", "--sort-by=cpu")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "web-1") || !strings.Contains(lines[1], "50Mi") {
			t.Errorf("kubectl top pod -n mx --sort-by=cpu:\n%s\nwant web-1 (250m, 50Mi) first, then db-1", out)
		}
		out = run("top", "pod", "-A", "-l", "app=web", "--containers")
		if !strings.Contains(out, "other") || !strings.Contains(out, "app") || strings.Contains(out, "db-1") {
			t.Errorf("kubectl top pod -A -l app=web --containers:\n%s", out)
		}
		out = run("top", "node")
		if !strings.Contains(out, "m1") || !strings.Contains(out, "1024Mi") {
			t.Errorf("kubectl top node:\n%s\nwant m1 with 1024Mi", out)
		}
		// The table metrics-server prints for kubectl get.
		out = run("get", "podmetrics", "-n", "mx", "db-1")
		if f := strings.Fields(out); len(f) != 8 || f[0] != "NAME" || f[1] != "CPU" || f[4] != "db-1" || f[6] != "20Mi" {
			t.Errorf("kubectl get podmetrics db-1:\n%s\nwant NAME CPU MEMORY WINDOW and db-1's 20Mi", out)
		}
		// Published in OpenAPI, as an aggregated server's group is.
		out = run("get", "--raw", "/openapi/v3/apis/metrics.k8s.io/v1beta1")
		if !strings.Contains(out, "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics") {
			t.Errorf("openapi v3 of metrics.k8s.io/v1beta1 lacks PodMetrics: %.300s", out)
		}
	})
}

// checkNear fails unless q is within 5 % of want cores.
func checkNear(t *testing.T, what string, q *resource.Quantity, want float64) {
	t.Helper()
	got := q.AsApproximateFloat64()
	if got < want*0.95 || got > want*1.05 {
		t.Errorf("%s = %v (%g cores), want %g", what, q, got, want)
	}
}

// impersonated is cfg acting as user, with the service-account groups
// when user is one.
func impersonated(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	return c
}
