package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/test/framework"
)

// TestKubelet runs real pods: `skiff server` with its node agent (its own
// containerd, runc, the CNI bridge) on this machine, driven by the stock
// kubectl. Every point of the kubelet issue's "Done when" is a subtest.
func TestKubelet(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	c := framework.StartNode(t, skiffBin, images)
	k := kubectl{t: t, c: c}

	const busybox = "docker.io/library/busybox:1.36"
	waitFor, jsonpath := k.waitFor, k.jsonpath
	waitRunning := func(t *testing.T, pod string) string {
		t.Helper()
		waitFor(t, pod+" Running and Ready", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/"+pod, `{.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.podIP}`)
			f := strings.Fields(s)
			return len(f) == 3 && f[0] == "Running" && f[1] == "True", s
		})
		return jsonpath("pod/"+pod, "{.status.podIP}")
	}
	// waitRestarts waits until the container the filter picks (a jsonpath
	// index such as 0 or ?(@.name=="c")) has restarted at least n times.
	waitRestarts := func(t *testing.T, pod, container string, n int, within time.Duration) {
		t.Helper()
		what := fmt.Sprintf("%s container %s restarted %d times", pod, container, n)
		waitFor(t, what, within, func() (bool, string) {
			s := jsonpath("pod/"+pod, `{.status.containerStatuses[`+container+`].restartCount}`)
			got, _ := strconv.Atoi(s)
			return got >= n, s
		})
	}

	t.Run("kubectl run reaches Running with a pod IP", func(t *testing.T) {
		k.t = t
		k.ok("run", "bb", "--image="+busybox, "--", "sh", "-c", "echo started; sleep 3600")
		ip := waitRunning(t, "bb")
		if !strings.HasPrefix(ip, "10.42.") {
			t.Fatalf("pod IP %q is not in the cluster CIDR 10.42.0.0/16", ip)
		}
	})

	t.Run("logs -f streams", func(t *testing.T) {
		k.t = t
		k.ok("run", "ticker", "--image="+busybox, "--", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done")
		waitRunning(t, "ticker")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.Kubeconfig, "logs", "-f", "ticker")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		// Lines written after the follow began must arrive while it runs.
		sc := bufio.NewScanner(out)
		seen := map[string]bool{}
		start := time.Now()
		for sc.Scan() && len(seen) < 8 {
			seen[sc.Text()] = true
		}
		if len(seen) < 8 {
			t.Fatalf("logs -f gave %d distinct lines: %v", len(seen), seen)
		}
		if time.Since(start) < 500*time.Millisecond {
			t.Logf("note: lines arrived in %v (some were written before the follow)", time.Since(start))
		}
	})

	t.Run("exec with and without stdin", func(t *testing.T) {
		k.t = t
		out := k.ok("exec", "bb", "--", "sh", "-c", "echo $HOSTNAME")
		if strings.TrimSpace(out) != "bb" {
			t.Fatalf("exec echo $HOSTNAME = %q, want bb", out)
		}
		out = k.okIn("line one\nline two\n", "exec", "-i", "bb", "--", "sh", "-c", "wc -l")
		if strings.TrimSpace(out) != "2" {
			t.Fatalf("exec -i wc -l = %q, want 2", out)
		}
		_, err := k.run("", "exec", "bb", "--", "sh", "-c", "exit 7")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("exec exit 7: err = %v, want exit code 7", err)
		}
	})

	t.Run("a pod gets its service account's token, the CA and its namespace", func(t *testing.T) {
		k.t = t
		if v := jsonpath("pod/bb", "{.spec.volumes[*].name}"); !strings.HasPrefix(v, "kube-api-access-") {
			t.Fatalf("pod volumes %q, want the kube-api-access volume", v)
		}
		dir := "/var/run/secrets/kubernetes.io/serviceaccount"
		out := k.ok("exec", "bb", "--", "sh", "-c", "cat "+dir+"/namespace; echo; head -1 "+dir+"/ca.crt; cat "+dir+"/token")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || lines[0] != "default" || lines[1] != "-----BEGIN CERTIFICATE-----" || strings.Count(lines[2], ".") != 2 {
			t.Fatalf("mounted files:\n%s\nwant the namespace, a PEM certificate and a JWT", out)
		}
		// The token is what client-go's in-cluster configuration sends: it
		// authenticates as the pod's service account.
		server := k.ok("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
		who, err := exec.Command("kubectl", "--kubeconfig", os.DevNull, "--server", server, "--insecure-skip-tls-verify",
			"--token", lines[2], "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").CombinedOutput()
		if err != nil || string(who) != "system:serviceaccount:default:default" {
			t.Fatalf("whoami with the pod's token: %q, %v", who, err)
		}
	})

	t.Run("port-forward reaches the test server", func(t *testing.T) {
		k.t = t
		k.ok("run", "web", "--image=skiff.io/test/server:v1", "--port=8080")
		waitRunning(t, "web")
		port := framework.FreePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pf := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.Kubeconfig, "port-forward", "pod/web", fmt.Sprintf("%d:8080", port))
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = pf.Wait() }()
		var body string
		waitFor(t, "GET /version through port-forward", 20*time.Second, func() (bool, string) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return resp.StatusCode == 200, body
		})
		if strings.TrimSpace(body) != "v1" {
			t.Fatalf("/version = %q, want v1", body)
		}
	})

	t.Run("cp in and out", func(t *testing.T) {
		k.t = t
		dir := t.TempDir()
		in := filepath.Join(dir, "in.txt")
		if err := os.WriteFile(in, []byte("copied by kubectl cp\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		k.ok("cp", in, "bb:/tmp/in.txt")
		if out := k.ok("exec", "bb", "--", "cat", "/tmp/in.txt"); out != "copied by kubectl cp\n" {
			t.Fatalf("file in the pod = %q", out)
		}
		k.ok("exec", "bb", "--", "sh", "-c", "echo made in the pod > /tmp/out.txt")
		outFile := filepath.Join(dir, "out.txt")
		k.ok("cp", "bb:/tmp/out.txt", outFile)
		if b, err := os.ReadFile(outFile); err != nil || string(b) != "made in the pod\n" {
			t.Fatalf("copied out: %q, %v", b, err)
		}
	})

	t.Run("pods reach each other by pod IP", func(t *testing.T) {
		k.t = t
		ip := jsonpath("pod/web", "{.status.podIP}")
		out := k.ok("exec", "bb", "--", "wget", "-qO-", "http://"+ip+":8080/hostname")
		if strings.TrimSpace(out) != "web" {
			t.Fatalf("bb -> web by pod IP answered %q, want web", out)
		}
	})

	t.Run("crashing container goes into CrashLoopBackOff", func(t *testing.T) {
		k.t = t
		k.ok("run", "crash", "--image="+busybox, "--", "sh", "-c", "echo dying; exit 3")
		waitFor(t, "CrashLoopBackOff with restartCount >= 2", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/crash", `{.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.exitCode}`)
			f := strings.Fields(s)
			if len(f) != 3 {
				return false, s
			}
			n, _ := strconv.Atoi(f[1])
			return f[0] == "CrashLoopBackOff" && n >= 2 && f[2] == "3", s
		})
		out := k.ok("get", "pod", "crash")
		mustContain(t, "get pod crash", out, "CrashLoopBackOff")
		mustContain(t, "logs --previous", k.ok("logs", "crash", "--previous"), "dying")
	})

	t.Run("failing liveness probe restarts the container", func(t *testing.T) {
		k.t = t
		k.okIn(`apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: `+busybox+`
    command: ["sh", "-c", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 1
`, "apply", "-f", "-")
		waitRestarts(t, "live", "0", 1, 60*time.Second)
		mustContain(t, "events", k.ok("get", "events", "--field-selector", "involvedObject.name=live"),
			"Liveness probe failed", "failed liveness probe, will be restarted")
	})

	t.Run("tcp liveness probe restarts only the container whose port is closed", func(t *testing.T) {
		k.t = t
		// Both containers share the pod's network: "open" is probed on the
		// port its server listens on, "closed" on one nobody listens on.
		k.okIn(`apiVersion: v1
kind: Pod
metadata: {name: tcplive}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: open
    image: skiff.io/test/server:v1
    livenessProbe:
      tcpSocket: {port: 8080}
      initialDelaySeconds: 2
      periodSeconds: 1
      failureThreshold: 3
  - name: closed
    image: `+busybox+`
    command: ["sleep", "3600"]
    livenessProbe:
      tcpSocket: {port: 8081}
      periodSeconds: 1
      failureThreshold: 1
`, "apply", "-f", "-")
		waitRestarts(t, "tcplive", `?(@.name=="closed")`, 2, 90*time.Second)
		if s := jsonpath("pod/tcplive", `{.status.containerStatuses[?(@.name=="open")].restartCount}`); s != "0" {
			t.Errorf("the container whose port is open restarted %s times, want 0", s)
		}
		k.ok("delete", "pod", "tcplive", "--wait=false")
	})

	t.Run("failing readiness probe makes the pod not Ready and back", func(t *testing.T) {
		k.t = t
		k.okIn(`apiVersion: v1
kind: Pod
metadata: {name: ready}
spec:
  containers:
  - name: c
    image: `+busybox+`
    command: ["sh", "-c", "touch /tmp/ready; sleep 3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
`, "apply", "-f", "-")
		ready := func(want string) {
			waitFor(t, "Ready="+want, 30*time.Second, func() (bool, string) {
				s := jsonpath("pod/ready", `{.status.conditions[?(@.type=="Ready")].status}`)
				return s == want, s
			})
		}
		ready("True")
		k.ok("exec", "ready", "--", "rm", "/tmp/ready")
		ready("False")
		k.ok("exec", "ready", "--", "touch", "/tmp/ready")
		ready("True")
		if n := jsonpath("pod/ready", `{.status.containerStatuses[0].restartCount}`); n != "0" {
			t.Fatalf("readiness failures restarted the container: restartCount %s", n)
		}
	})

	t.Run("configMap and secret volumes hold content and update", func(t *testing.T) {
		k.t = t
		k.ok("create", "configmap", "cfg", "--from-literal=greeting=hello")
		k.ok("create", "secret", "generic", "sec", "--from-literal=password=s3cret")
		k.okIn(`apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  containers:
  - name: c
    image: `+busybox+`
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
  volumes:
  - name: cfg
    configMap: {name: cfg}
  - name: sec
    secret: {secretName: sec}
`, "apply", "-f", "-")
		waitRunning(t, "vols")
		if out := k.ok("exec", "vols", "--", "cat", "/etc/cfg/greeting", "/etc/sec/password"); out != "hellos3cret" {
			t.Fatalf("volume content = %q, want hellos3cret", out)
		}
		k.okIn(`{"data":{"greeting":"bonjour"}}`, "patch", "configmap", "cfg", "--type=merge", "--patch-file=/dev/stdin")
		k.ok("patch", "secret", "sec", "--type=merge", "-p", `{"stringData":{"password":"n3w"}}`)
		waitFor(t, "updated volume content", 60*time.Second, func() (bool, string) {
			out, _ := k.run("", "exec", "vols", "--", "cat", "/etc/cfg/greeting", "/etc/sec/password")
			return out == "bonjourn3w", out
		})
	})

	t.Run("a claim bound to a local volume keeps a pod's file for the next pod", func(t *testing.T) {
		k.t = t
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := k.run("", "describe", "pod,pvc,pv")
				t.Logf("kubectl describe pod,pvc,pv:\n%s", tail(out, 80))
			}
		})
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		k.okIn(fmt.Sprintf(`apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-manual}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-manual
  local: {path: %s}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [%s]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: local-manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 500Mi}}
`, dir, c.NodeName()), "apply", "-f", "-")
		// WaitForFirstConsumer: no pod, no binding.
		if phase := jsonpath("pvc/data", "{.status.phase}"); phase != "Pending" {
			t.Fatalf("claim phase %q before any pod, want Pending", phase)
		}
		pod := func(name, cmd string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  securityContext: {fsGroup: 2000}
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", %q]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`, name, busybox, cmd)
		}
		k.okIn(pod("writer", "echo kept > /data/f; sleep 3600"), "apply", "-f", "-")
		waitRunning(t, "writer")
		waitFor(t, "the file on the node", 30*time.Second, func() (bool, string) {
			b, err := os.ReadFile(filepath.Join(dir, "f"))
			return err == nil && string(b) == "kept\n", fmt.Sprint(string(b), err)
		})
		out := k.ok("get", "pv,pvc")
		mustContain(t, "kubectl get pv,pvc", out, "local-1", "Bound", "default/data", "local-manual", "1Gi", "RWO", "Retain")
		k.ok("delete", "pod", "writer", "--grace-period=1")
		k.okIn(pod("reader", "cat /data/f; sleep 3600"), "apply", "-f", "-")
		waitRunning(t, "reader")
		waitFor(t, "the next pod reads the file", 30*time.Second, func() (bool, string) {
			out, _ := k.run("", "logs", "reader")
			return strings.TrimSpace(out) == "kept", out
		})
		// A pod whose claim does not exist waits, with upstream's message.
		k.okIn(strings.ReplaceAll(pod("orphan", "sleep 3600"), "claimName: data", "claimName: nothing"), "apply", "-f", "-")
		waitFor(t, "the orphan unschedulable", 30*time.Second, func() (bool, string) {
			msg := jsonpath("pod/orphan", `{.status.conditions[?(@.type=="PodScheduled")].message}`)
			return strings.Contains(msg, `persistentvolumeclaim "nothing" not found`), msg
		})
		k.ok("delete", "pod", "reader", "orphan", "--grace-period=1")
	})

	t.Run("a StatefulSet keeps its data on the default local-path class", func(t *testing.T) {
		k.t = t
		testLocalPathStorage(t, k, c, busybox, waitRunning)
	})

	t.Run("a Helm chart keeps its data across an upgrade", func(t *testing.T) {
		k.t = t
		testHelmPersistence(t, k, c)
	})

	t.Run("delete sends SIGTERM and waits for the grace period", func(t *testing.T) {
		k.t = t
		// One pod traps SIGTERM and writes to a hostPath file the test reads;
		// one ignores SIGTERM and is killed when its grace period ends.
		host := t.TempDir()
		k.okIn(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "trap 'echo got TERM > /host/term; exit 0' TERM; while true; do sleep 0.2; done"]
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - name: host
    hostPath: {path: %[2]s, type: Directory}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 4
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "3600"]
`, busybox, host), "apply", "-f", "-")
		waitRunning(t, "graceful")
		waitRunning(t, "stubborn")

		start := time.Now()
		k.ok("delete", "pod", "graceful", "--timeout=60s")
		took := time.Since(start)
		if b, err := os.ReadFile(filepath.Join(host, "term")); err != nil || string(b) != "got TERM\n" {
			t.Fatalf("the container did not see SIGTERM: %q, %v", b, err)
		}
		if took > 20*time.Second {
			t.Fatalf("deleting a pod that exits on SIGTERM took %v", took)
		}

		start = time.Now()
		k.ok("delete", "pod", "stubborn", "--timeout=60s")
		if took := time.Since(start); took < 3500*time.Millisecond || took > 25*time.Second {
			t.Fatalf("deleting a pod that ignores SIGTERM with a 4 s grace period took %v", took)
		}
	})

	t.Run("the kubelet API authorizes every caller", func(t *testing.T) {
		k.t = t
		port := jsonpath("node/"+framework.NodeName, "{.status.daemonEndpoints.kubeletEndpoint.Port}")
		url := "https://127.0.0.1:" + port + "/pods"
		k.ok("create", "serviceaccount", "kubelet-prober")
		token := strings.TrimSpace(k.ok("create", "token", "kubelet-prober"))
		// The kubelet's certificate is the node's, signed by the cluster
		// CA; its name is not 127.0.0.1, so the client skips the check.
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		get := func(token string) (int, string) {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := get(""); code != http.StatusUnauthorized {
			t.Fatalf("the kubelet API without credentials: %d %q, want 401", code, body)
		}
		code, body := get(token)
		if code != http.StatusForbidden || !strings.Contains(body, "Forbidden (user=system:serviceaccount:default:kubelet-prober, verb=get, resource=nodes, subresource=proxy)") {
			t.Fatalf("the kubelet API for an account without nodes/proxy: %d %q, want 403 naming nodes/proxy", code, body)
		}
		// An account granted nodes/proxy (another one: the kubelet keeps a
		// refusal for 30 s, as upstream's).
		k.ok("create", "serviceaccount", "kubelet-reader")
		k.ok("create", "clusterrole", "kubelet-proxy", "--verb=get", "--resource=nodes/proxy")
		k.ok("create", "clusterrolebinding", "kubelet-reader", "--clusterrole=kubelet-proxy", "--serviceaccount=default:kubelet-reader")
		reader := strings.TrimSpace(k.ok("create", "token", "kubelet-reader"))
		waitFor(t, "the kubelet API for an account with nodes/proxy", 10*time.Second, func() (bool, string) {
			code, body := get(reader)
			return code == http.StatusOK && strings.Contains(body, `"bb"`), body
		})
	})

	t.Run("node stats through nodes/proxy", func(t *testing.T) {
		k.t = t
		var out string
		waitFor(t, "stats of pod bb with memory", 30*time.Second, func() (bool, string) {
			out, _ = k.run("", "get", "--raw", "/api/v1/nodes/"+framework.NodeName+"/proxy/stats/summary")
			return strings.Contains(out, `"name": "bb"`) || strings.Contains(out, `"name":"bb"`), out
		})
		mustContain(t, "stats/summary", out, "workingSetBytes", "usageCoreNanoSeconds")
		metrics := k.ok("get", "--raw", "/api/v1/nodes/"+framework.NodeName+"/proxy/metrics/resource")
		mustContain(t, "metrics/resource", metrics, `container_memory_working_set_bytes{container="bb",namespace="default",pod="bb"}`)
	})

	// TestMultiNode joins agents in network namespaces of their own; this
	// one shares the server's (no overlay: both bridges are local).
	t.Run("skiff agent joins a second node whose pods answer across nodes", func(t *testing.T) {
		k.t = t
		join := newJoinString(t, c)
		framework.StartAgent(t, skiffBin, c, "skiff-e2e-2", join, "skiff1", images)
		// TLS bootstrap: the token filed a CSR, approved and signed by the
		// server; the node now acts with that certificate.
		id, _, _ := strings.Cut(join[strings.LastIndex(join, "::")+2:], ".")
		waitFor(t, "an approved, issued CSR of the joined node", 30*time.Second, func() (bool, string) {
			out := k.ok("get", "csr", "-o", `jsonpath={range .items[*]}{.spec.username} {.spec.signerName} {.status.conditions[0].type} {.status.conditions[0].reason} {.status.certificate}{"\n"}{end}`)
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) == 5 && f[0] == "system:bootstrap:"+id && f[1] == "kubernetes.io/kube-apiserver-client-kubelet" &&
					f[2] == "Approved" && f[3] == "AutoApproved" && f[4] != "" {
					return true, line
				}
			}
			return false, out
		})
		waitServingCert(t, k, "skiff-e2e-2")
		k.ok("run", "far", "--image=skiff.io/test/server:v2", `--overrides={"spec":{"nodeName":"skiff-e2e-2"}}`)
		ip := waitRunning(t, "far")
		if !strings.HasPrefix(ip, "10.42.") || jsonpath("pod/far", "{.spec.nodeName}") != "skiff-e2e-2" {
			t.Fatalf("pod far: IP %q on node %q", ip, jsonpath("pod/far", "{.spec.nodeName}"))
		}
		// bb runs on the server's node: this crosses from one bridge to the other.
		if out := k.ok("exec", "bb", "--", "wget", "-qO-", "http://"+ip+":8080/version"); strings.TrimSpace(out) != "v2" {
			t.Fatalf("bb -> far across nodes answered %q, want v2", out)
		}
		mustContain(t, "logs of a pod on the agent's node", k.ok("logs", "far"), "listening")
		k.ok("delete", "pod", "far", "--timeout=60s")
	})

	t.Run("a restarted server adopts running pods", func(t *testing.T) {
		k.t = t
		before := jsonpath("pod/bb", "{.status.containerStatuses[0].containerID}")
		c.Restart(t)
		c.WaitNodeReady(t, 60*time.Second)
		// The kubelet syncs again; the container must be the same one.
		waitFor(t, "bb still Running after the restart", 30*time.Second, func() (bool, string) {
			s := jsonpath("pod/bb", `{.status.phase} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}`)
			return s == "Running "+before+" 0", s
		})
		if out := k.ok("exec", "bb", "--", "sh", "-c", "echo still here"); !strings.Contains(out, "still here\n") {
			t.Fatalf("exec after restart: %q", out)
		}
		out, err := exec.Command("ctr", "--address", filepath.Join(c.DataDir, "agent", "containerd", "containerd.sock"),
			"-n", "k8s.io", "containers", "ls", "-q").Output()
		if err != nil {
			t.Fatalf("ctr containers ls: %v", err)
		}
		bbID := strings.TrimPrefix(before, "containerd://")
		if n := strings.Count(string(out), bbID); n != 1 {
			t.Fatalf("container %s listed %d times after the restart", bbID, n)
		}
	})
}

// newJoinString makes a join token with `skiff token create`, which prints
// the join string as its last line.
func newJoinString(t testing.TB, c *framework.Cluster) string {
	t.Helper()
	return framework.JoinString(t, skiffBin, c)
}

// refusedJoins checks that `skiff agent` refuses to join, exits non-zero
// and says why, with a join string whose CA hash is wrong, with a token
// that was deleted and with one that has expired.
func refusedJoins(t *testing.T, c *framework.Cluster, join string) {
	t.Helper()
	hash, token, _ := strings.Cut(strings.TrimPrefix(join, "K10"), "::")
	wrongHash := "K10" + strings.Repeat("0", len(hash)) + "::" + token

	deleted := newJoinString(t, c)
	id, _, _ := strings.Cut(deleted[strings.LastIndex(deleted, "::")+2:], ".")
	if out, err := exec.Command(skiffBin, "token", "delete", "--kubeconfig", c.Kubeconfig, id).CombinedOutput(); err != nil {
		t.Fatalf("skiff token delete %s: %v\n%s", id, err, out)
	}
	// An expired token: its Secret's expiration is in the past (the token
	// cleaner may delete it first; either way it must be refused).
	expired := newJoinString(t, c)
	eid, _, _ := strings.Cut(expired[strings.LastIndex(expired, "::")+2:], ".")
	patch := fmt.Sprintf(`{"data":{"expiration":"%s"}}`, base64.StdEncoding.EncodeToString([]byte(time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))))
	if _, err := c.Client.CoreV1().Secrets("kube-system").Patch(context.Background(), "bootstrap-token-"+eid,
		types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("expiring token %s: %v", eid, err)
	}

	for _, tc := range []struct{ what, join, want string }{
		{"a wrong CA hash", wrongHash, "does not match the join token's hash"},
		{"a deleted token", deleted, "refused the join token"},
		{"an expired token", expired, "refused the join token"},
	} {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, skiffBin, "agent", "--server", c.URL(),
			"--token", tc.join, "--data-dir", dir, "--node-name", "refused", "--kubelet-port", "0").CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Errorf("skiff agent with %s: err %v (timed out: %v), want a non-zero exit\n%s", tc.what, err, timedOut, tail(string(out), 10))
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("skiff agent with %s said:\n%s\nwant %q", tc.what, tail(string(out), 10), tc.want)
		}
	}
	if _, err := c.Client.CoreV1().Nodes().Get(context.Background(), "refused", metav1.GetOptions{}); err == nil {
		t.Errorf("a refused agent registered its node")
	}
}
