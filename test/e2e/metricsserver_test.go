package e2e

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/image"
	"github.com/skiff-io/skiff/test/framework"
)

// The real metrics-server, built from its Go module, runs as a pod from
// its own release manifest on a server whose built-in resource metrics API
// is switched off (--metric-resolution=0), and serves `kubectl top`
// through API aggregation: the APIService v1beta1.metrics.k8s.io sends
// the API server's requests to its Service, authenticated with the
// front-proxy client certificate that metrics-server trusts through the
// extension-apiserver-authentication ConfigMap; metrics-server scrapes
// the kubelet's /metrics/resource as its ServiceAccount (a TokenReview,
// then nodes/metrics), at the port the Node's status names.

const (
	metricsServerModule  = "sigs.k8s.io/metrics-server"
	metricsServerVersion = "v0.8.0"
	// metricsServerImage is the image the release manifest names (its
	// manifests/components/release sets it); the test writes it, so the
	// node never pulls.
	metricsServerImage = "registry.k8s.io/metrics-server/metrics-server:" + metricsServerVersion
)

var metricsServerBuild = &toolBuild{what: "metrics-server " + metricsServerVersion, build: buildMetricsServer, done: make(chan struct{})}

// buildMetricsServer installs metrics-server at metricsServerVersion into
// the tool cache, static (CGO_ENABLED=0: its image holds nothing else, as
// the release's distroless/static one holds no libc).
func buildMetricsServer() (string, string, error) {
	gobin := filepath.Join(toolCache(), "metrics-server-"+metricsServerVersion)
	bin := filepath.Join(gobin, "metrics-server")
	if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Path == metricsServerModule &&
		info.Main.Version == metricsServerVersion && buildSetting(info, "CGO_ENABLED") == "0" {
		return bin, "", nil // built by an earlier run
	}
	pkg := metricsServerModule + "/cmd/metrics-server@" + metricsServerVersion
	if out, err := goCommand(os.TempDir(), []string{"GOBIN=" + gobin, "CGO_ENABLED=0"}, "install", pkg); err != nil {
		return "", downloadSkip(out), fmt.Errorf("go install %s: %w\n%s", pkg, err, out)
	}
	return bin, "", nil
}

// buildSetting is the value of the build setting key, "" when unset.
func buildSetting(info *buildinfo.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// TestMetricsServer installs metrics-server from its release manifest and
// reads the resource metrics it serves through the API server.
func TestMetricsServer(t *testing.T) {
	bin := metricsServerBuild.get(t)
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	manifest := metricsServerManifest(t)
	images := t.TempDir()
	framework.BuildImages(t, images)
	writeMetricsServerImage(t, bin, images)
	// The node has an address of its own in a network namespace: a
	// server on loopback, as StartNode's, publishes no endpoints for
	// default/kubernetes and names its node 127.0.0.1, so a pod could
	// reach neither the API server nor the kubelet.
	network := framework.NewNetwork(t, "skms0", "10.199.73.0/24")
	c := framework.StartNodeIn(t, skiffBin, images, network.AddNode(t, "skms-server"), "--metric-resolution=0")
	k := kubectl{t: t, c: c}
	t.Cleanup(func() {
		if t.Failed() {
			logMetricsServer(t, k)
		}
	})

	k.okIn(manifest, "apply", "-f", "-")
	kubectlWait(t, c, 2*time.Minute, "deployment/metrics-server", "-n", "kube-system")
	kubectlWait(t, c, 2*time.Minute, "apiservice/v1beta1.metrics.k8s.io")
	// kubectl's columns: the APIService names the service, the built-in
	// groups are Local.
	out := k.ok("get", "apiservices")
	mustContain(t, "kubectl get apiservices", out, "NAME", "SERVICE", "AVAILABLE",
		"v1beta1.metrics.k8s.io", "kube-system/metrics-server", "v1.apps", "Local")

	// metrics-server answers for a node or a pod once it holds two
	// scrapes of it (a CPU rate needs two points), 15 s apart.
	waitFor(t, k, 90*time.Second, "kubectl top node to list the node", func() bool {
		var err error
		out, err = k.run("", "top", "node")
		return err == nil && strings.Contains(out, c.NodeName())
	})
	mustContain(t, "kubectl top node", out, "CPU(cores)", "MEMORY(bytes)", c.NodeName())
	waitFor(t, k, 90*time.Second, "kubectl top pod -A to list metrics-server's pod", func() bool {
		var err error
		out, err = k.run("", "top", "pod", "-A")
		return err == nil && strings.Contains(out, "metrics-server-")
	})
	mustContain(t, "kubectl top pod -A", out, "kube-system", "metrics-server-")

	var nodes struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Usage map[string]string `json:"usage"`
		} `json:"items"`
	}
	raw := k.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
	if err := json.Unmarshal([]byte(raw), &nodes); err != nil {
		t.Fatalf("GET /apis/metrics.k8s.io/v1beta1/nodes: %v\n%s", err, raw)
	}
	if nodes.Kind != "NodeMetricsList" || len(nodes.Items) != 1 || nodes.Items[0].Metadata.Name != c.NodeName() ||
		nodes.Items[0].Usage["cpu"] == "" || nodes.Items[0].Usage["memory"] == "" {
		t.Fatalf("GET /apis/metrics.k8s.io/v1beta1/nodes: want a NodeMetricsList of node %s with its cpu and memory:\n%s", c.NodeName(), raw)
	}
}

// metricsServerManifest is metrics-server's release manifest, as its
// Makefile makes it (kubectl kustomize manifests/overlays/release), with
// --kubelet-insecure-tls added (testdata/metrics-server): the module's
// manifests/ is copied beside that kustomization, since kustomize reads
// no file outside the directory it builds.
func metricsServerManifest(t *testing.T) string {
	t.Helper()
	out, err := goCommand(os.TempDir(), nil, "mod", "download", "-json", metricsServerModule+"@"+metricsServerVersion)
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v\n%s", metricsServerModule, metricsServerVersion, err, out)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download -json %s@%s: no module directory (%v):\n%s", metricsServerModule, metricsServerVersion, err, out)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "manifests"), os.DirFS(filepath.Join(mod.Dir, "manifests"))); err != nil {
		t.Fatalf("copying metrics-server's manifests: %v", err)
	}
	kustomization, err := os.ReadFile("testdata/metrics-server/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), kustomization, 0o644); err != nil {
		t.Fatal(err)
	}
	// Standard output only: kustomize warns on standard error.
	cmd := exec.Command("kubectl", "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	manifest, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"image: " + metricsServerImage, "- --kubelet-insecure-tls", "kind: APIService"} {
		if !bytes.Contains(manifest, []byte(want)) {
			t.Fatalf("metrics-server's release manifest lacks %q:\n%s", want, manifest)
		}
	}
	return string(manifest)
}

// writeMetricsServerImage writes metrics-server's image, under the name
// the release manifest gives it, into the images directory a node imports
// at start: the binary as the release image's entrypoint and user (its
// Dockerfile: distroless/static, USER 65534), and /tmp.
func writeMetricsServerImage(t *testing.T, bin, images string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = image.WriteOCI(&buf, metricsServerImage, image.ImageConfig{Entrypoint: []string{"/metrics-server"}, User: "65534"},
		[]image.File{
			{Path: "metrics-server", Mode: 0o755, Data: data},
			{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "metrics-server.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// kubectlWait runs `kubectl wait --for=condition=Available` on obj with
// its own deadline (kubectl.run gives a command 60 s).
func kubectlWait(t *testing.T, c *framework.Cluster, timeout time.Duration, obj string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	args = append([]string{"--kubeconfig", c.Kubeconfig, "wait", "--for=condition=Available", obj, "--timeout=" + timeout.String()}, args...)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "kubectl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args[2:], " "), err, out)
	}
	t.Logf("%s Available after %v", obj, time.Since(start).Round(time.Millisecond))
}

// logMetricsServer logs what explains a failure: the APIService's
// conditions, metrics-server's pod and the end of its log.
func logMetricsServer(t *testing.T, k kubectl) {
	for _, args := range [][]string{
		{"get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions}"},
		{"get", "pods,endpointslices", "-n", "kube-system", "-l", "k8s-app=metrics-server", "-o", "wide"},
		{"describe", "pod", "-n", "kube-system", "-l", "k8s-app=metrics-server"},
		{"logs", "-n", "kube-system", "deployment/metrics-server", "--tail=40"},
	} {
		out, _ := k.run("", args...)
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), tail(out, 40))
	}
}
