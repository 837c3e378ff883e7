// Package e2e builds the skiff binary, starts `skiff server
// --disable-agent`, and drives it with the machine's stock kubectl.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

var skiffBin string

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		fmt.Println("SKIP e2e: kubectl is not installed:", err)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "skiff-e2e")
	if err != nil {
		panic(err)
	}
	skiffBin = filepath.Join(dir, "skiff")
	build := exec.Command("go", "build", "-o", skiffBin, "github.com/skiff-io/skiff/cmd/skiff")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("building skiff:", err)
		os.Exit(1)
	}
	startToolBuilds()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kubectl runs the stock kubectl against the cluster and returns its
// combined output; it fails the test on a non-zero exit unless allowFail.
type kubectl struct {
	t *testing.T
	c *framework.Cluster
	// kubeconfig, when set, is used instead of the cluster's admin one.
	kubeconfig string
}

// as is k acting with a bearer token instead of the admin's certificate.
func (k kubectl) as(name, token string) kubectl {
	k.kubeconfig = tokenKubeconfig(k.t, k.c, name, token)
	return k
}

func (k kubectl) run(stdin string, args ...string) (string, error) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kubeconfig := k.c.Kubeconfig
	if k.kubeconfig != "" {
		kubeconfig = k.kubeconfig
	}
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return dropStreamRace(k.t, string(out)), err
}

// unknownStream is the line kubectl's WebSocket client logs when the
// server's "connected" message (an empty frame on the first output
// channel, as upstream's servers send it) arrives before the client has
// set up that channel: a race inside kubectl, harmless, seen under load.
var unknownStream = regexp.MustCompile(`(?m)^E\d{4} [0-9:.]+ +\d+ websocket\.go:\d+\] Unknown stream id \d+, discarding message\n`)

// dropStreamRace removes those lines from kubectl's output, saying so.
func dropStreamRace(t *testing.T, out string) string {
	if !unknownStream.MatchString(out) {
		return out
	}
	t.Logf("kubectl's WebSocket client logged its stream setup race (dropped from its output): %q", unknownStream.FindString(out))
	return unknownStream.ReplaceAllString(out, "")
}

func (k kubectl) ok(args ...string) string {
	k.t.Helper()
	out, err := k.run("", args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, tail(k.c.ServerLog(), 30))
	}
	return out
}

func (k kubectl) okIn(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.run(stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (k kubectl) failsIn(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.run(stdin, args...)
	if err == nil {
		k.t.Fatalf("kubectl %s: want failure, got:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func (k kubectl) fails(args ...string) string {
	k.t.Helper()
	out, err := k.run("", args...)
	if err == nil {
		k.t.Fatalf("kubectl %s: want failure, got:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// waitFor polls cond every 250 ms until it holds, and fails t with cond's
// last state and the server's log if it does not within timeout.
func (k kubectl) waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v; last state: %s\nserver log:\n%s", what, timeout, last, tail(k.c.ServerLog(), 40))
}

// jsonpath is `kubectl get obj -o jsonpath=path`, trimmed; "" on error.
func (k kubectl) jsonpath(obj, path string) string {
	out, _ := k.run("", "get", obj, "-o", "jsonpath="+path)
	return strings.TrimSpace(out)
}

// tokenKubeconfig writes a kubeconfig for the cluster that authenticates
// with a bearer token only, and returns its path.
func tokenKubeconfig(t *testing.T, c *framework.Cluster, name, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: %s
  context:
    cluster: skiff
    user: %s
current-context: %s
`, c.Port, filepath.Join(c.DataDir, "tls", "ca.crt"), name, token, name, name, name)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {tier: front}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: skiff.io/test/server:v1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
`

func TestKubectl(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)
	k := kubectl{t: t, c: c}

	out := k.okIn(manifest, "apply", "-f", "-")
	mustContain(t, "apply", out, "namespace/shop created", "deployment.apps/web created", "service/web created", "configmap/settings created")
	out = k.okIn(manifest, "apply", "-f", "-")
	mustContain(t, "re-apply", out, "deployment.apps/web unchanged", "configmap/settings unchanged")

	out = k.ok("get", "deploy", "-n", "shop", "-o", "wide")
	mustContain(t, "get -o wide", out, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "CONTAINERS", "IMAGES", "SELECTOR", "web", "0/3", "skiff.io/test/server:v1", "app=web")
	out = k.ok("get", "svc", "web", "-n", "shop")
	mustContain(t, "get svc", out, "ClusterIP", "10.43.", "80/TCP")
	out = k.ok("get", "deploy", "web", "-n", "shop", "-o", "yaml")
	mustContain(t, "get -o yaml", out, "kind: Deployment", "maxSurge: 25%", "revisionHistoryLimit: 10", "progressDeadlineSeconds: 600", "imagePullPolicy: IfNotPresent")
	out = k.ok("get", "cm", "settings", "-n", "shop", "-o", "json")
	mustContain(t, "get -o json", out, `"color": "blue"`, `"resourceVersion"`)
	if out := k.ok("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"); out != "3" {
		t.Fatalf("jsonpath replicas = %q", out)
	}
	// The controllers make the pods; with no nodes they stay Pending.
	waitFor(t, k, 30*time.Second, "3 pending web pods", func() bool {
		out, _ := k.run("", "get", "po", "-n", "shop")
		return strings.Count(out, "Pending") == 3 && strings.Count(out, "web-") == 3
	})
	mustContain(t, "get all", k.ok("get", "all", "-n", "shop"), "service/web", "deployment.apps/web", "replicaset.apps/web-", "pod/web-")
	mustContain(t, "api-resources", k.ok("api-resources"), "deployments", "deploy", "apps/v1", "true", "Deployment")

	k.ok("label", "cm", "settings", "-n", "shop", "team=blue")
	k.ok("annotate", "cm", "settings", "-n", "shop", "owner=ops")
	mustContain(t, "label selector", k.ok("get", "cm", "-n", "shop", "-l", "team=blue", "-o", "name"), "configmap/settings")
	if out := k.ok("get", "cm", "settings", "-n", "shop", "-o", "jsonpath={.metadata.annotations.owner}"); out != "ops" {
		t.Fatalf("annotation = %q", out)
	}

	k.ok("patch", "cm", "settings", "-n", "shop", "--type=merge", "-p", `{"data":{"merge":"1"}}`)
	k.ok("patch", "cm", "settings", "-n", "shop", "--type=json", "-p", `[{"op":"add","path":"/data/json","value":"2"}]`)
	k.ok("patch", "deploy", "web", "-n", "shop", "--type=strategic", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"skiff.io/test/server:v2"}]}}}}`)
	if out := k.ok("get", "cm", "settings", "-n", "shop", "-o", "jsonpath={.data.merge}{.data.json}"); out != "12" {
		t.Fatalf("patched data = %q", out)
	}
	if out := k.ok("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.metadata.generation}"); out != "skiff.io/test/server:v2 2" {
		t.Fatalf("strategic patch: image and generation = %q", out)
	}

	// replace with a stale object is a conflict.
	stale := k.ok("get", "cm", "settings", "-n", "shop", "-o", "yaml")
	k.ok("patch", "cm", "settings", "-n", "shop", "-p", `{"data":{"newer":"x"}}`)
	out, err := k.run(strings.Replace(stale, "color: blue", "color: red", 1), "replace", "-f", "-")
	if err == nil || !strings.Contains(out, "Conflict") || !strings.Contains(out, "the object has been modified") {
		t.Fatalf("stale replace: want Conflict, got %v:\n%s", err, out)
	}

	// dry-run=server stores nothing.
	out = k.ok("create", "cm", "ghost", "-n", "shop", "--from-literal=a=b", "--dry-run=server")
	mustContain(t, "dry-run", out, "configmap/ghost created (server dry run)")
	k.fails("get", "cm", "ghost", "-n", "shop")

	// Pagination.
	for i := 0; i < 12; i++ {
		k.ok("create", "cm", fmt.Sprintf("page-%02d", i), "-n", "shop", "--from-literal=i=x")
	}
	out = k.ok("get", "cm", "-n", "shop", "--chunk-size=5", "-o", "name")
	if n := strings.Count(out, "configmap/page-"); n != 12 {
		t.Fatalf("chunked get listed %d of 12 page configmaps:\n%s", n, out)
	}

	// Bad input is refused with the server's message.
	out = k.fails("create", "cm", "Bad_Name", "-n", "shop")
	mustContain(t, "invalid name", out, "Invalid value", "Bad_Name")
	bogus := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bogus\n  namespace: shop\nbogusField: 1\n"
	out, err = k.run(bogus, "apply", "-f", "-")
	if err == nil || !strings.Contains(out, `unknown field "bogusField"`) {
		t.Fatalf("strict validation: want unknown field error, got %v:\n%s", err, out)
	}

	// Watch: a change made while `kubectl get -w` runs shows up in it.
	testWatch(t, c)

	k.ok("delete", "cm", "settings", "-n", "shop")
	k.fails("get", "cm", "settings", "-n", "shop")

	// kill -9 and restart keep every object.
	before := k.ok("get", "cm,deploy,svc", "-n", "shop", "-o", "name")
	c.Kill9(t)
	c.Restart(t)
	after := k.ok("get", "cm,deploy,svc", "-n", "shop", "-o", "name")
	if before != after {
		t.Fatalf("objects changed across kill -9:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Namespace deletion removes everything, then the namespace.
	k.ok("delete", "namespace", "shop", "--wait=true", "--timeout=60s")
	out, _ = k.run("", "get", "namespace", "shop")
	mustContain(t, "namespace gone", out, "NotFound")
}

func testWatch(t *testing.T, c *framework.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.Kubeconfig, "get", "cm", "-n", "shop", "-w", "--output-watch-events")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The initial listing comes first; then a change.
	waitLine(t, lines, "settings", &stderr)
	k := kubectl{t: t, c: c}
	k.ok("create", "cm", "watched", "-n", "shop", "--from-literal=w=1")
	l := waitLine(t, lines, "watched", &stderr)
	mustContain(t, "watch event", l, "ADDED")
}

func waitLine(t *testing.T, lines <-chan string, want string, stderr *bytes.Buffer) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended before %q; stderr: %s", want, stderr.String())
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("no watch line with %q; stderr: %s", want, stderr.String())
		}
	}
}
