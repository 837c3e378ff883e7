package e2e

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/test/framework"
)

// Third-party clients built on their own libraries, run against the built
// server: an operator on controller-runtime (test/clients/crwatch, its own
// Go module) and the Helm v3 CLI. Both are compiled by the test through
// the Go toolchain, outside skiff's module, so neither enters go.mod; the
// tests skip only when the toolchain cannot download their modules.

const helmVersion = "v3.22.0"

// TestControllerRuntime runs crwatch: a controller-runtime manager whose
// cache watches the ConfigMaps of a namespace and whose reconciler writes
// an annotation through server-side apply, with leader election on a
// Lease between two instances.
func TestControllerRuntime(t *testing.T) {
	crwatch := crwatchBuild.get(t)
	// A node: crwatch also serves its webhooks from a pod.
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	writeCRWatchImage(t, crwatch, images)
	c := framework.StartNode(t, skiffBin, images)
	k := kubectl{t: t, c: c}
	k.ok("create", "namespace", "crw")

	// Server-side apply is the path the program is written for; the merge
	// patch is its fallback for a server that answers apply patches with
	// 415, and the test says which one it exercised.
	mode := "apply"
	if !serverSideApply(t, c) {
		mode = "merge"
		t.Log("the server does not accept application/apply-patch+yaml: crwatch runs with --patch=merge (a JSON merge patch), not server-side apply")
	}
	t.Logf("crwatch writes with --patch=%s", mode)

	// crwatch acts as its own ServiceAccount, with only what its
	// manifest grants (the server enforces RBAC by default).
	manifest, err := os.ReadFile("testdata/crwatch-rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k.okIn(string(manifest), "apply", "-f", "-")
	token := strings.TrimSpace(k.ok("create", "token", "crwatch", "-n", "crw", "--duration=1h"))
	kubeconfig := tokenKubeconfig(t, c, "crwatch", token)

	k.ok("create", "configmap", "a", "-n", "crw", "--from-literal=x=1", "--from-literal=y=2")
	k.ok("label", "configmap", "a", "-n", "crw", "crwatch=on")
	k.ok("create", "configmap", "b", "-n", "crw", "--from-literal=x=1")

	one := startCRWatch(t, crwatch, c, kubeconfig, "one", mode)
	holder := waitLease(t, k, func(h string) bool { return h != "" })
	waitAnnotation(t, k, "a", map[string]string{"x": "1", "y": "2"})
	one.waitLog(t, "elected leader")

	t.Run("field ownership", func(t *testing.T) {
		if mode != "apply" {
			t.Skip("the merge patch path records no Apply entry")
		}
		out := k.ok("get", "configmap", "a", "-n", "crw", "--show-managed-fields", "-o",
			`jsonpath={range .metadata.managedFields[?(@.manager=="crwatch")]}{.operation} {.fieldsV1}{end}`)
		mustContain(t, "crwatch's managedFields entry", out, "Apply ", `"f:crwatch.skiff.io/seen":{}`)
		if strings.Contains(out, "f:data") {
			t.Fatalf("crwatch owns more than its annotation: %s", out)
		}
	})

	t.Run("data change and new label are reconciled", func(t *testing.T) {
		k.ok("patch", "configmap", "a", "-n", "crw", "--type=merge", "-p", `{"data":{"x":"10"}}`)
		waitAnnotation(t, k, "a", map[string]string{"x": "10", "y": "2"})
		k.ok("label", "configmap", "b", "-n", "crw", "crwatch=on")
		waitAnnotation(t, k, "b", map[string]string{"x": "1"})
	})

	t.Run("unlabelled configmap is left alone", func(t *testing.T) {
		k.ok("create", "configmap", "c", "-n", "crw", "--from-literal=x=1")
		k.ok("patch", "configmap", "a", "-n", "crw", "--type=merge", "-p", `{"data":{"z":"3"}}`)
		waitAnnotation(t, k, "a", map[string]string{"x": "10", "y": "2", "z": "3"})
		// c was created before the write to a, and one worker takes
		// events in order: had crwatch annotated c, it would have by now.
		if out := k.ok("get", "configmap", "c", "-n", "crw", "-o", "jsonpath={.metadata.annotations}"); out != "" {
			t.Fatalf("unlabelled configmap c was annotated: %s", out)
		}
	})

	t.Run("a manager that takes the field is overridden", func(t *testing.T) {
		// kubectl annotate is an Update by another manager: it takes the
		// field from crwatch, whose next apply must force it back.
		k.ok("annotate", "configmap", "a", "-n", "crw", "--overwrite", "crwatch.skiff.io/seen=bogus")
		waitAnnotation(t, k, "a", map[string]string{"x": "10", "y": "2", "z": "3"})
	})

	t.Run("leadership passes on over the Lease", func(t *testing.T) {
		two := startCRWatch(t, crwatch, c, kubeconfig, "two", mode)
		two.waitLog(t, "Attempting to acquire leader lease")
		// Let two try for a few retry periods: one renews the Lease
		// meanwhile (every 250ms), and two must keep waiting.
		renewed := map[string]bool{}
		waitFor(t, k, 30*time.Second, "three renewals of the Lease by one", func() bool {
			out, _ := k.run("", "get", "lease", "crwatch", "-n", "crw", "-o", "jsonpath={.spec.renewTime}")
			renewed[out] = true
			return len(renewed) >= 4
		})
		if got := leaseHolder(k); got != holder {
			t.Fatalf("lease holder changed to %q while %q ran", got, holder)
		}
		if strings.Contains(two.log(), "elected leader") {
			t.Fatalf("instance two was elected while one held the lease:\n%s", two.log())
		}
		one.stop(t) // releases the Lease on the way out
		next := waitLease(t, k, func(h string) bool { return h != "" && h != holder })
		two.waitLog(t, "elected leader")
		t.Logf("lease passed from %s to %s", holder, next)
		k.ok("patch", "configmap", "b", "-n", "crw", "--type=merge", "-p", `{"data":{"x":"2"}}`)
		waitAnnotation(t, k, "b", map[string]string{"x": "2"})
		two.waitLog(t, "crw/b")
		out := k.ok("get", "lease", "crwatch", "-n", "crw", "-o", "jsonpath={.spec.leaseTransitions}")
		if out != "1" {
			t.Fatalf("leaseTransitions %q, want 1", out)
		}
	})

	t.Run("a custom resource with a status subresource", func(t *testing.T) {
		if mode != "apply" {
			t.Skip("the widgets controller writes its ConfigMaps with server-side apply")
		}
		crd, err := os.ReadFile("testdata/crwatch-widget-crd.yaml")
		if err != nil {
			t.Fatal(err)
		}
		k.okIn(string(crd), "apply", "-f", "-")
		k.ok("wait", "--for=condition=Established", "crd/widgets.crwatch.skiff.io", "--timeout=30s")
		widgets := startCRWatch(t, crwatch, c, kubeconfig, "widgets", mode, "--widgets", "--lease-name=crwatch-widgets")
		k.okIn("apiVersion: crwatch.skiff.io/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: crw\nspec:\n  data:\n    a: \"1\"\n", "apply", "-f", "-")
		waitWidget := func(gen string, data map[string]string) {
			t.Helper()
			want := gen + " " + dataHash(data)
			waitFor(t, k, 30*time.Second, "widget w1 status "+want, func() bool {
				out, _ := k.run("", "get", "widget", "w1", "-n", "crw", "-o", "jsonpath={.status.observedGeneration} {.status.seen}")
				return out == want
			})
		}
		waitWidget("1", map[string]string{"a": "1"})
		widgets.waitLog(t, "widget status")
		if got := k.ok("get", "configmap", "w1", "-n", "crw", "-o", "jsonpath={.data.a} {.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].controller}"); got != "1 Widget true" {
			t.Fatalf("the widget's configmap: %q", got)
		}
		// A spec change is a new generation; the status follows it.
		k.ok("patch", "widget", "w1", "-n", "crw", "--type=merge", "-p", `{"spec":{"data":{"b":"2"}}}`)
		waitWidget("2", map[string]string{"a": "1", "b": "2"})
		out := k.ok("get", "widgets", "-n", "crw")
		mustContain(t, "kubectl get widgets", out, "SEEN", "OBSERVED", dataHash(map[string]string{"a": "1", "b": "2"}))
		// A status written through the main resource is dropped.
		k.ok("patch", "widget", "w1", "-n", "crw", "--type=merge", "-p", `{"status":{"seen":"bogus"}}`)
		if got := k.ok("get", "widget", "w1", "-n", "crw", "-o", "jsonpath={.status.seen}"); got == "bogus" {
			t.Fatal("status written through the main resource")
		}
		// The garbage collector deletes the ConfigMap with its owner
		// (it finds a new resource within its 30 s discovery resync).
		k.ok("delete", "widget", "w1", "-n", "crw")
		waitFor(t, k, 60*time.Second, "the widget's configmap deleted", func() bool {
			_, err := k.run("", "get", "configmap", "w1", "-n", "crw")
			return err != nil
		})
	})

	t.Run("webhooks", func(t *testing.T) {
		if mode != "apply" {
			t.Skip("needs the Widget definition of the subtest before")
		}
		crwatchWebhooks(t, kubectl{t: t, c: c})
	})
}

// helmCLI returns a function that runs the Helm CLI against c in
// namespace, with its own cache, config and data homes, and fails t when
// a command fails.
func helmCLI(t *testing.T, helmBin string, c *framework.Cluster, namespace string) func(args ...string) string {
	home := t.TempDir()
	return func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, helmBin, append([]string{"--kubeconfig", c.Kubeconfig, "-n", namespace}, args...)...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, tail(c.ServerLog(), 30))
		}
		t.Logf("helm %s: %v", args[0], time.Since(start).Round(time.Millisecond))
		return string(out)
	}
}

// TestHelm installs, upgrades, rolls back and uninstalls a chart (a
// Deployment, a Service and a ConfigMap) with the Helm v3 CLI, waiting on
// the Deployment each time; simulated nodes make its pods Ready.
func TestHelm(t *testing.T) {
	helmBin := helmBuild.get(t)
	c := framework.StartBinary(t, skiffBin)
	k := kubectl{t: t, c: c}
	framework.StartSim(t, skiffBin, c, "helm", "--nodes=1", "--heartbeat-interval=1s", "--start-delay=100ms")
	waitFor(t, k, 30*time.Second, "a Ready node", func() bool {
		out, _ := k.run("", "get", "nodes", "--no-headers")
		return strings.Count(out, " Ready ") == 1
	})
	chart, err := filepath.Abs("testdata/chart")
	if err != nil {
		t.Fatal(err)
	}
	helm := helmCLI(t, helmBin, c, "charts")
	// state is what the chart's objects say, read through kubectl.
	state := func() string {
		t.Helper()
		dep := k.ok("get", "deployment", "web", "-n", "charts", "-o",
			`jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.labels.app\.kubernetes\.io/managed-by} {.metadata.annotations.meta\.helm\.sh/release-name}`)
		cm := k.ok("get", "configmap", "web-settings", "-n", "charts", "-o", "jsonpath={.data.greeting} {.data.image}")
		svc := k.ok("get", "service", "web", "-n", "charts", "-o", "jsonpath={.spec.ports[0].port}->{.spec.ports[0].targetPort}")
		return dep + " | " + cm + " | " + svc
	}
	// rolledOut waits until every pod of the release runs image and is Ready.
	rolledOut := func(image string, replicas int) {
		t.Helper()
		k.ok("rollout", "status", "deployment/web", "-n", "charts", "--timeout=60s")
		waitFor(t, k, 60*time.Second, fmt.Sprintf("%d ready pods of %s", replicas, image), func() bool {
			out, _ := k.run("", "get", "pods", "-n", "charts", "-l", "app.kubernetes.io/instance=web", "-o",
				`jsonpath={range .items[*]}{.spec.containers[0].image}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}`)
			return strings.Count(out, image+"=True") == replicas && len(strings.Fields(out)) == replicas
		})
	}

	t.Run("install", func(t *testing.T) {
		out := helm("install", "web", chart, "--create-namespace", "--wait", "--timeout=90s")
		mustContain(t, "helm install", out, "NAME: web", "STATUS: deployed", "REVISION: 1")
		if got, want := state(), "2 skiff.io/test/server:v1 Helm web | hello skiff.io/test/server:v1 | 80->http"; got != want {
			t.Fatalf("after install: %q, want %q", got, want)
		}
		rolledOut("skiff.io/test/server:v1", 2)
	})

	t.Run("upgrade", func(t *testing.T) {
		out := helm("upgrade", "web", chart, "--set", "image.tag=v2", "--set", "greeting=bonjour", "--set", "replicas=3", "--wait", "--timeout=90s")
		mustContain(t, "helm upgrade", out, "has been upgraded", "STATUS: deployed", "REVISION: 2")
		if got, want := state(), "3 skiff.io/test/server:v2 Helm web | bonjour skiff.io/test/server:v2 | 80->http"; got != want {
			t.Fatalf("after upgrade: %q, want %q", got, want)
		}
		rolledOut("skiff.io/test/server:v2", 3)
	})

	t.Run("rollback", func(t *testing.T) {
		out := helm("rollback", "web", "1", "--wait", "--timeout=90s")
		mustContain(t, "helm rollback", out, "Rollback was a success")
		if got, want := state(), "2 skiff.io/test/server:v1 Helm web | hello skiff.io/test/server:v1 | 80->http"; got != want {
			t.Fatalf("after rollback: %q, want %q", got, want)
		}
		rolledOut("skiff.io/test/server:v1", 2)
	})

	t.Run("list and history", func(t *testing.T) {
		type release struct {
			Name, Namespace, Revision, Status, Chart string
			AppVersion                               string `json:"app_version"`
		}
		var got []release
		if err := json.Unmarshal([]byte(helm("list", "-o", "json")), &got); err != nil {
			t.Fatalf("helm list -o json: %v", err)
		}
		want := []release{{Name: "web", Namespace: "charts", Revision: "3", Status: "deployed", Chart: "web-0.1.0", AppVersion: "v1"}}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("helm list (-want +got):\n%s", d)
		}
		type revision struct {
			Revision    int
			Status      string
			Description string
		}
		var history []revision
		if err := json.Unmarshal([]byte(helm("history", "web", "-o", "json")), &history); err != nil {
			t.Fatalf("helm history -o json: %v", err)
		}
		wantHistory := []revision{
			{1, "superseded", "Install complete"},
			{2, "superseded", "Upgrade complete"},
			{3, "deployed", "Rollback to 1"},
		}
		if d := cmp.Diff(wantHistory, history); d != "" {
			t.Fatalf("helm history (-want +got):\n%s", d)
		}
		// Helm keeps its releases in Secrets of its own type.
		secrets := strings.Fields(k.ok("get", "secrets", "-n", "charts", "-l", "owner=helm,name=web", "-o", "jsonpath={.items[*].metadata.name}"))
		sort.Strings(secrets)
		if d := cmp.Diff([]string{"sh.helm.release.v1.web.v1", "sh.helm.release.v1.web.v2", "sh.helm.release.v1.web.v3"}, secrets); d != "" {
			t.Fatalf("release secrets (-want +got):\n%s", d)
		}
	})

	t.Run("uninstall", func(t *testing.T) {
		out := helm("uninstall", "web", "--wait", "--timeout=90s")
		mustContain(t, "helm uninstall", out, `release "web" uninstalled`)
		waitFor(t, k, 60*time.Second, "the release's objects and pods gone", func() bool {
			out, _ := k.run("", "get", "deployments,replicasets,pods,services,configmaps,secrets", "-n", "charts",
				"-l", "app.kubernetes.io/instance=web", "-o", "name")
			rel, _ := k.run("", "get", "secrets", "-n", "charts", "-l", "owner=helm", "-o", "name")
			cm, _ := k.run("", "get", "configmap", "web-settings", "-n", "charts", "--ignore-not-found", "-o", "name")
			svc, _ := k.run("", "get", "service", "web", "-n", "charts", "--ignore-not-found", "-o", "name")
			return strings.TrimSpace(out+rel+cm+svc) == ""
		})
		if out := strings.TrimSpace(helm("list", "-q")); out != "" {
			t.Fatalf("helm list after uninstall: %q", out)
		}
	})
}

// dataHash is crwatch's DataHash: the first 16 hex digits of the SHA-256
// of the data's "key=value\n" lines in key order.
func dataHash(data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// waitAnnotation waits until crwatch has annotated ConfigMap name in
// namespace crw with the hash of data.
func waitAnnotation(t *testing.T, k kubectl, name string, data map[string]string) {
	t.Helper()
	want := dataHash(data)
	var last string
	waitFor(t, k, 30*time.Second, fmt.Sprintf("configmap %s annotated with %s", name, want), func() bool {
		last, _ = k.run("", "get", "configmap", name, "-n", "crw", "-o", `jsonpath={.metadata.annotations.crwatch\.skiff\.io/seen}`)
		return last == want
	})
}

// leaseHolder is the crwatch Lease's holder, "" while there is no Lease
// (kubectl's error is not a holder).
func leaseHolder(k kubectl) string {
	out, err := k.run("", "get", "lease", "crwatch", "-n", "crw", "-o", "jsonpath={.spec.holderIdentity}")
	if err != nil {
		return ""
	}
	return out
}

// waitLease waits until the crwatch Lease's holder satisfies ok and
// returns it.
func waitLease(t *testing.T, k kubectl, ok func(holder string) bool) string {
	t.Helper()
	var h string
	waitFor(t, k, 30*time.Second, "the crwatch Lease's holder", func() bool {
		h = leaseHolder(k)
		return ok(h)
	})
	return h
}

// serverSideApply reports whether the server accepts server-side apply
// patches (before it did, it answered 415 Unsupported Media Type).
func serverSideApply(t *testing.T, c *framework.Cluster) bool {
	t.Helper()
	body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa-probe","namespace":"crw"}}`)
	force := true
	_, err := c.Client.CoreV1().ConfigMaps("crw").Patch(context.Background(), "ssa-probe", types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: "e2e-probe", Force: &force})
	switch {
	case err == nil:
		if err := c.Client.CoreV1().ConfigMaps("crw").Delete(context.Background(), "ssa-probe", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		return true
	case apierrors.IsUnsupportedMediaType(err):
		return false
	default:
		t.Fatalf("probing server-side apply: %v", err)
		return false
	}
}

// crwatchProcess is a running crwatch.
type crwatchProcess struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	stopped bool
}

// startCRWatch runs an instance of crwatch against the cluster's
// namespace crw with short leader election periods; it is stopped in
// t.Cleanup unless the test stopped it.
func startCRWatch(t *testing.T, bin string, c *framework.Cluster, kubeconfig, name, mode string, extra ...string) *crwatchProcess {
	t.Helper()
	logPath := filepath.Join(c.DataDir, "crwatch-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--kubeconfig", kubeconfig, "--namespace", "crw", "--name", name, "--patch", mode,
		"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=250ms"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting crwatch: %v", err)
	}
	p := &crwatchProcess{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("crwatch %s log:\n%s", name, tail(p.log(), 40))
		}
	})
	return p
}

func (p *crwatchProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// stop sends SIGTERM and waits for a clean exit.
func (p *crwatchProcess) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("crwatch did not stop within 15s of SIGTERM:\n%s", tail(p.log(), 20))
	}
	if !strings.Contains(p.log(), "crwatch stopped") {
		t.Errorf("crwatch did not stop cleanly:\n%s", tail(p.log(), 20))
	}
}

func (p *crwatchProcess) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("crwatch log lacks %q after 30s:\n%s", want, tail(p.log(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A toolBuild is a Go program compiled once per test binary run. TestMain
// starts both builds in the background, so that their cold module downloads
// and compiles overlap the other end-to-end tests, which mostly wait.
type toolBuild struct {
	once  sync.Once
	done  chan struct{}
	what  string
	took  time.Duration
	path  string
	skip  string // why the build cannot run here
	err   error
	build func() (path, skip string, err error)
}

var (
	crwatchBuild = &toolBuild{what: "crwatch", build: buildCRWatch, done: make(chan struct{})}
	helmBuild    = &toolBuild{what: "helm " + helmVersion, build: buildHelm, done: make(chan struct{})}
)

// startToolBuilds begins building the third-party clients in the
// background, those of the tests -run selects.
func startToolBuilds() {
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		re, err := regexp.Compile(f.Value.String())
		if err != nil {
			return
		}
		for _, b := range []struct {
			test  string
			build *toolBuild
		}{{"TestControllerRuntime", crwatchBuild}, {"TestHelm", helmBuild}, {"TestServices", prometheusBuild},
			{"TestMetricsServer", metricsServerBuild}} {
			if re.MatchString(b.test) {
				b.build.start()
			}
		}
		return
	}
	crwatchBuild.start()
	helmBuild.start()
	prometheusBuild.start()
	metricsServerBuild.start()
}

func (b *toolBuild) start() {
	b.once.Do(func() {
		go func() {
			defer close(b.done)
			began := time.Now()
			b.path, b.skip, b.err = b.build()
			b.took = time.Since(began)
		}()
	})
}

// get waits for the build and returns the program's path; it skips t when
// the modules cannot be downloaded here and fails it on any other error.
func (b *toolBuild) get(t *testing.T) string {
	t.Helper()
	b.start()
	<-b.done
	switch {
	case b.skip != "":
		t.Skipf("cannot build %s: the Go toolchain cannot download its modules: %s", b.what, b.skip)
	case b.err != nil:
		t.Fatalf("building %s: %v", b.what, b.err)
	}
	t.Logf("%s built in %v (in the background)", b.what, b.took.Round(time.Millisecond))
	return b.path
}

// buildCRWatch compiles test/clients/crwatch (its own module) into the
// tool cache on every run (the source may have changed); the Go build
// cache makes a rebuild a matter of seconds.
func buildCRWatch() (string, string, error) {
	bin := filepath.Join(toolCache(), "crwatch")
	src, err := filepath.Abs(filepath.Join("..", "clients", "crwatch"))
	if err != nil {
		return "", "", err
	}
	if out, err := goCommand(src, nil, "mod", "download"); err != nil {
		return "", downloadSkip(out), fmt.Errorf("go mod download in %s: %w\n%s", src, err, out)
	}
	// Static: the same binary runs in a container image with nothing else.
	if out, err := goCommand(src, []string{"CGO_ENABLED=0"}, "build", "-o", bin, "."); err != nil {
		return "", "", fmt.Errorf("go build in %s: %w\n%s", src, err, out)
	}
	return bin, "", nil
}

// buildHelm installs the Helm CLI at helmVersion with `go install`, outside
// skiff's module, into the tool cache, where later runs find it already
// built.
func buildHelm() (string, string, error) {
	gobin := filepath.Join(toolCache(), "helm-"+helmVersion)
	bin := filepath.Join(gobin, "helm")
	if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Path == "helm.sh/helm/v3" && info.Main.Version == helmVersion {
		return bin, "", nil // built by an earlier run
	}
	if out, err := goCommand(os.TempDir(), []string{"GOBIN=" + gobin}, "install", "helm.sh/helm/v3/cmd/helm@"+helmVersion); err != nil {
		return "", downloadSkip(out), fmt.Errorf("go install helm.sh/helm/v3/cmd/helm@%s: %w\n%s", helmVersion, err, out)
	}
	return bin, "", nil
}

// toolCache is where the tools are kept between runs: skiff-e2e in the
// user's cache directory ($XDG_CACHE_HOME or ~/.cache).
func toolCache() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "skiff-e2e")
}

// goCommand runs the go tool in dir, outside any workspace.
func goCommand(dir string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w (after 15m)", ctx.Err())
	}
	return string(out), err
}

// downloadSkip returns the line of the go tool's output that says a module
// could not be fetched (no network, no proxy, GOPROXY=off), or "" when the
// failure is something else and must fail the test.
func downloadSkip(out string) string {
	for _, line := range strings.Split(out, "\n") {
		for _, sign := range []string{"dial tcp", "no such host", "GOPROXY=off", "lookup disabled", "i/o timeout",
			"connection refused", "TLS handshake timeout", "proxyconnect", "network is unreachable"} {
			if strings.Contains(line, sign) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}
