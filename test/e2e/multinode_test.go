package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestMultiNode runs a real three-node cluster on this machine: `skiff
// server` and two `skiff agent`s, each in a network namespace of its own
// on one bridge (as three machines on one link), the agents joined with
// tokens from `skiff token create`. Pods reach each other across nodes
// through the VXLAN overlay; Services, NodePorts and DNS work from every
// node and pod; a drained node empties, and a node whose agent is killed
// has its pods recreated elsewhere and comes back without duplicates.
func TestMultiNode(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	if why := framework.CanRunNetworkNamespaces(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	network := framework.NewNetwork(t, "skmn0", "10.199.70.0/24")
	nodes := []*framework.NetNode{network.AddNode(t, "skmn-server"), network.AddNode(t, "skmn-a1"), network.AddNode(t, "skmn-a2")}
	// A dead node is noticed in 20 s (upstream: 40 s; twice the kubelet's
	// 10 s Lease renewal, so that a live node never looks dead), so that
	// the self-healing step takes seconds.
	c := framework.StartNodeIn(t, skiffBin, images, nodes[0], "--node-monitor-grace-period", "20s")
	k := kubectl{t: t, c: c}
	waitFor, jsonpath := k.waitFor, k.jsonpath

	join := newJoinString(t, c)
	refusedJoins(t, c, join)
	agents := map[string]*framework.Agent{}
	for _, nn := range nodes[1:] {
		agents[nn.Name] = framework.StartAgentIn(t, skiffBin, c, nn, join, images)
	}
	nodeIP := map[string]string{}
	for _, nn := range nodes {
		nodeIP[nn.Name] = nn.IP
	}

	t.Run("three nodes Ready, the agents' certificates approved", func(t *testing.T) {
		k.t = t
		out := k.ok("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		for _, nn := range nodes {
			mustContain(t, "nodes", out, nn.Name+"=True")
		}
		id, _, _ := strings.Cut(join[strings.LastIndex(join, "::")+2:], ".")
		out = k.ok("get", "csr", "-o", `jsonpath={range .items[*]}{.spec.username} {.spec.signerName} {.status.conditions[0].type}{"\n"}{end}`)
		want := "system:bootstrap:" + id + " kubernetes.io/kube-apiserver-client-kubelet Approved"
		if n := strings.Count(out, want); n != 2 {
			t.Fatalf("kubectl get csr: %d approved kubelet CSRs of token %s, want 2 (one per agent)\n%s", n, id, out)
		}
		mustContain(t, "kubectl get csr", k.ok("get", "csr"), "Approved,Issued")
		// Each agent's kubelet serves a certificate of the cluster CA (the
		// API server verifies it: logs and exec below depend on it).
		for _, nn := range nodes[1:] {
			waitServingCert(t, k, nn.Name)
		}
	})

	// One pod per node: where each runs, its IP.
	pods := map[string]string{} // node -> pod
	podIP := map[string]string{}
	t.Run("a 6-replica Deployment spreads over the nodes", func(t *testing.T) {
		k.t = t
		k.okIn(multiNodeDeployment, "apply", "-f", "-")
		waitFor(t, "6 pods of web Ready", 120*time.Second, func() (bool, string) {
			return readyPodsIn(k, "default", "app=web") == 6, k.ok("get", "pods", "-o", "wide")
		})
		perNode := map[string]int{}
		out := k.ok("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP}{"\n"}{end}`)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("pod line %q", line)
			}
			perNode[f[1]]++
			pods[f[1]], podIP[f[0]] = f[0], f[2]
		}
		for _, nn := range nodes {
			if perNode[nn.Name] != 2 {
				t.Fatalf("pods per node %v, want 2 on each of the 3 nodes (maxSkew 1)", perNode)
			}
		}
	})

	t.Run("a pod reaches pods on every other node by pod IP", func(t *testing.T) {
		k.t = t
		for from, src := range pods {
			for to, dst := range pods {
				if from == to {
					continue
				}
				out := k.ok("exec", src, "--", "timeout", "10", "wget", "-qO-", "http://"+podIP[dst]+":8080/hostname")
				if strings.TrimSpace(out) != dst {
					t.Errorf("%s (%s) -> %s (%s) answered %q, want %q", src, from, dst, to, out, dst)
				}
			}
		}
	})

	t.Run("a ClusterIP Service and a NodePort reach pods on every node from every node and from a pod", func(t *testing.T) {
		k.t = t
		k.ok("expose", "deployment", "web", "--port=80", "--target-port=8080", "--type=NodePort")
		clusterIP := jsonpath("service/web", "{.spec.clusterIP}")
		nodePort := jsonpath("service/web", "{.spec.ports[0].nodePort}")
		podNode := map[string]string{}
		for node, pod := range pods {
			podNode[pod] = node
		}
		// All six pods answer, two per node: enough requests see a pod of
		// every node (missing one of three nodes 60 times: (2/3)^60).
		covers := func(t *testing.T, what string, get func() (string, error)) {
			t.Helper()
			seen := map[string]bool{}
			var lastErr error
			for i := 0; i < 60 && len(seen) < len(nodes); i++ {
				out, err := get()
				if err != nil {
					lastErr = err
					continue
				}
				name := strings.TrimSpace(out)
				node := jsonpathCached(k, name)
				if node == "" {
					t.Fatalf("%s answered %q, not a web pod", what, out)
				}
				seen[node] = true
			}
			if len(seen) < len(nodes) {
				t.Fatalf("%s: answers came from pods on %v only (last error %v), want all 3 nodes", what, seen, lastErr)
			}
		}
		for _, nn := range nodes {
			covers(t, "ClusterIP from node "+nn.Name, func() (string, error) {
				return nn.HTTPGet("http://"+clusterIP+"/hostname", 5*time.Second)
			})
			// NodePorts answer on every address of every node: the node's
			// own, from the host, and loopback, from the node itself.
			covers(t, "NodePort on "+nn.IP, func() (string, error) {
				return hostGet("http://" + nn.IP + ":" + nodePort + "/hostname")
			})
			covers(t, "NodePort on 127.0.0.1 of node "+nn.Name, func() (string, error) {
				return nn.HTTPGet("http://127.0.0.1:"+nodePort+"/hostname", 5*time.Second)
			})
		}
		// From a pod, by the Service's DNS name: one exec, many requests.
		out := k.ok("exec", pods[nodes[1].Name], "--", "sh", "-c", "for i in $(seq 60); do timeout 10 wget -qO- http://web/hostname; done")
		seen := map[string]bool{}
		for _, name := range strings.Fields(out) {
			seen[jsonpathCached(k, name)] = true
		}
		for _, nn := range nodes {
			if !seen[nn.Name] {
				t.Fatalf("from pod %s, http://web reached pods on %v, want all 3 nodes\n%s", pods[nodes[1].Name], seen, out)
			}
		}
	})

	t.Run("DNS names resolve from pods on every node", func(t *testing.T) {
		k.t = t
		clusterIP := jsonpath("service/web", "{.spec.clusterIP}")
		for node, pod := range pods {
			out := k.ok("exec", pod, "--", "nslookup", "web.default.svc.cluster.local")
			if !strings.Contains(out, clusterIP) {
				t.Errorf("nslookup from %s on %s: %q, want %s", pod, node, out, clusterIP)
			}
		}
	})

	t.Run("logs, exec, cp and port-forward reach a pod on an agent's node", func(t *testing.T) {
		k.t = t
		pod := pods[nodes[2].Name]
		mustContain(t, "logs of "+pod, k.ok("logs", pod), "listening")
		copied := filepath.Join(t.TempDir(), "hostname")
		k.ok("cp", pod+":/etc/hostname", copied)
		if b, err := os.ReadFile(copied); err != nil || strings.TrimSpace(string(b)) != pod {
			t.Fatalf("kubectl cp of /etc/hostname: %q, %v", b, err)
		}
		port := framework.FreePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		pf := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.Kubeconfig, "port-forward", "pod/"+pod, fmt.Sprintf("%d:8080", port))
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = pf.Wait() }()
		waitFor(t, "GET /hostname through port-forward", 20*time.Second, func() (bool, string) {
			out, err := hostGet(fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
			return err == nil && strings.TrimSpace(out) == pod, fmt.Sprint(out, err)
		})
		if out := k.ok("exec", pod, "--", "cat", "/etc/hostname"); strings.TrimSpace(out) != pod {
			t.Fatalf("exec in %s: hostname %q", pod, out)
		}
		// Its cgroup is in its node's tree (--cgroup-root), apart from
		// the other kubelets' on this machine.
		uid := jsonpath("pod/"+pod, "{.metadata.uid}")
		root := framework.CgroupRoot(nodes[2].Name)
		found, _ := filepath.Glob("/sys/fs/cgroup/*" + root + "/kubepods/besteffort/pod" + uid)
		v2, _ := filepath.Glob("/sys/fs/cgroup" + root + "/kubepods/besteffort/pod" + uid)
		if len(found)+len(v2) == 0 {
			t.Fatalf("pod %s (BestEffort) has no cgroup under %s/kubepods/besteffort", pod, root)
		}
	})

	t.Run("a pod whose local-path volume lives on a node returns to that node", func(t *testing.T) {
		k.t = t
		home := nodes[1].Name
		pod := func(name, selector, cmd string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  nodeSelector: {%s}
  containers:
  - {name: c, image: docker.io/library/busybox:1.36, command: ["sh", "-c", %q], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: pinned}
`, name, selector, cmd)
		}
		k.okIn(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pinned}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
`, "apply", "-f", "-")
		// The first pod is sent to the node: the volume is made there.
		k.okIn(pod("pinned-1", "kubernetes.io/hostname: "+home, "echo here > /data/f; sleep 3600"), "apply", "-f", "-")
		waitFor(t, "pinned-1 Running on "+home, 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/pinned-1", "{.status.phase} {.spec.nodeName}")
			return s == "Running "+home, s
		})
		pv := jsonpath("pvc/pinned", "{.spec.volumeName}")
		dir := filepath.Join(agents[home].DataDir, "storage", pv)
		if path := jsonpath("pv/"+pv, "{.spec.local.path}"); path != dir {
			t.Fatalf("volume %s at %q, want %q on %s", pv, path, dir, home)
		}
		k.ok("delete", "pod", "pinned-1")
		// Its node cordoned, a pod of the claim goes nowhere else ...
		k.ok("cordon", home)
		k.okIn(pod("pinned-2", "", "cat /data/f; sleep 3600"), "apply", "-f", "-")
		waitFor(t, "pinned-2 unschedulable for the volume's node affinity", 30*time.Second, func() (bool, string) {
			msg := jsonpath("pod/pinned-2", `{.status.conditions[?(@.type=="PodScheduled")].message}`)
			return strings.Contains(msg, "node(s) had volume node affinity conflict"), msg
		})
		// ... and returns to it once it takes pods again, with the data.
		k.ok("uncordon", home)
		waitFor(t, "pinned-2 Running on "+home+" with the file", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/pinned-2", "{.status.phase} {.spec.nodeName}")
			out, _ := k.run("", "logs", "pinned-2")
			return s == "Running "+home && strings.TrimSpace(out) == "here", s + " " + out
		})
		k.ok("delete", "pod", "pinned-2")
		k.ok("delete", "pvc", "pinned")
		waitFor(t, "the volume's directory removed on "+home, 60*time.Second, func() (bool, string) {
			_, err := os.Stat(dir)
			return os.IsNotExist(err), fmt.Sprint(err)
		})
	})

	t.Run("kubectl drain empties a node", func(t *testing.T) {
		k.t = t
		drained := nodes[2].Name
		// A PodDisruptionBudget: the drain evicts one pod at a time, the
		// next only once its replacement is Ready.
		k.okIn(`apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: web}
`, "apply", "-f", "-")
		waitFor(t, "the PDB allowing one disruption", 30*time.Second, func() (bool, string) {
			s := jsonpath("pdb/web", "{.status.disruptionsAllowed}")
			return s == "1", s
		})
		var minReady atomic.Int64
		minReady.Store(6)
		stop := watchReady(t, c.Client, "default", "app=web", &minReady)
		k.ok("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s")
		waitFor(t, "6 web pods Ready, none on "+drained, 120*time.Second, func() (bool, string) {
			on := podNodesIn(k, "default", "app=web")
			return readyPodsIn(k, "default", "app=web") == 6 && on[drained] == 0 && len(on) == 2, fmt.Sprint(on)
		})
		stop()
		if m := minReady.Load(); m < 5 {
			t.Fatalf("during the drain only %d web pods were Ready; the PDB allows 1 of 6 unavailable", m)
		}
		k.ok("delete", "pdb", "web")
		if s := jsonpath("node/"+drained, "{.spec.unschedulable}"); s != "true" {
			t.Fatalf("drained node unschedulable=%q", s)
		}
		k.ok("uncordon", drained)
	})

	t.Run("an agent killed with SIGKILL: its pods come back elsewhere, its node comes back without duplicates", func(t *testing.T) {
		k.t = t
		victim := nodes[1].Name
		if podNodesIn(k, "default", "app=web")[victim] == 0 {
			t.Fatalf("no web pod on %s to lose", victim)
		}
		a := agents[victim]
		a.Kill9(t)
		waitFor(t, victim+" NotReady with the unreachable NoExecute taint", 60*time.Second, func() (bool, string) {
			s := jsonpath("node/"+victim, `{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}`)
			return strings.HasPrefix(s, "Unknown") && strings.Contains(s, "node.kubernetes.io/unreachable"), s
		})
		// The pods tolerate the taint for 5 s; then they are evicted and
		// the ReplicaSet recreates them on the two other nodes.
		waitFor(t, "6 web pods Ready, none on "+victim+" but terminating ones", 120*time.Second, func() (bool, string) {
			on := podNodesIn(k, "default", "app=web")
			return readyPodsIn(k, "default", "app=web") == 6 && on[victim] == 0, fmt.Sprint(on)
		})
		a.Start(t)
		a.WaitReady(t, 90*time.Second)
		// Back, the kubelet finishes the evicted pods: exactly six web pods
		// remain, none terminating, and none of the old containers runs.
		waitFor(t, "exactly 6 web pods, none terminating", 90*time.Second, func() (bool, string) {
			out := k.ok("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name}:{.spec.nodeName}:{.metadata.deletionTimestamp} {end}`)
			f := strings.Fields(out)
			for _, p := range f {
				if !strings.HasSuffix(p, ":") {
					return false, out
				}
			}
			return len(f) == 6, out
		})
		waitFor(t, "no web container running on "+victim, 60*time.Second, func() (bool, string) {
			running := runningContainers(t, filepath.Join(a.DataDir, "agent", "containerd", "containerd.sock"), "skiff.io/test/server:v1")
			return running == 0, fmt.Sprintf("%d running", running)
		})
	})
}

// multiNodeDeployment spreads six pods evenly over the nodes it may run on
// (cordoned and tainted nodes excluded), and leaves a node that stops
// answering after 5 s instead of upstream's default 300 s.
const multiNodeDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 6
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        nodeTaintsPolicy: Honor
        labelSelector:
          matchLabels: {app: web}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      containers:
      - name: web
        image: skiff.io/test/server:v1
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
`

// waitServingCert waits until node's kubelet-serving CSR, filed as the
// node itself, is approved and issued.
func waitServingCert(t *testing.T, k kubectl, node string) {
	t.Helper()
	k.waitFor(t, "an approved, issued kubelet-serving CSR of "+node, 60*time.Second, func() (bool, string) {
		out := k.ok("get", "csr", "-o", `jsonpath={range .items[*]}{.spec.username} {.spec.signerName} {.status.conditions[0].type} {.status.certificate}{"\n"}{end}`)
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[0] == "system:node:"+node && f[1] == "kubernetes.io/kubelet-serving" && f[2] == "Approved" {
				return true, line
			}
		}
		return false, out
	})
}

// podNodesIn counts the pods matching selector per node, leaving out those
// being deleted.
func podNodesIn(k kubectl, ns, selector string) map[string]int {
	out, _ := k.run("", "get", "pods", "-n", ns, "-l", selector, "-o",
		`jsonpath={range .items[*]}{.spec.nodeName}:{.metadata.deletionTimestamp} {end}`)
	on := map[string]int{}
	for _, f := range strings.Fields(out) {
		if node, deleting, _ := strings.Cut(f, ":"); deleting == "" && node != "" {
			on[node]++
		}
	}
	return on
}

// readyPodsIn counts the Ready pods matching selector that are not being
// deleted.
func readyPodsIn(k kubectl, ns, selector string) int {
	out, _ := k.run("", "get", "pods", "-n", ns, "-l", selector, "-o",
		`jsonpath={range .items[*]}{.metadata.deletionTimestamp}:{.status.conditions[?(@.type=="Ready")].status} {end}`)
	n := 0
	for _, f := range strings.Fields(out) {
		if f == ":True" {
			n++
		}
	}
	return n
}

// podNodeCache remembers which node a pod runs on: pods do not move.
var podNodeCache = map[string]string{}

// jsonpathCached is the node of pod name, "" if there is no such pod.
func jsonpathCached(k kubectl, name string) string {
	if n, ok := podNodeCache[name]; ok {
		return n
	}
	n := k.jsonpath("pod/"+name, "{.spec.nodeName}")
	if n != "" {
		podNodeCache[name] = n
	}
	return n
}

// hostGet fetches url from the host's network namespace.
func hostGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// runningContainers counts the running tasks of containers of image in
// the containerd at socket.
func runningContainers(t *testing.T, socket, image string) int {
	t.Helper()
	ctr := func(args ...string) string {
		out, err := exec.Command("ctr", append([]string{"--address", socket, "-n", "k8s.io"}, args...)...).Output()
		if err != nil {
			t.Fatalf("ctr %v: %v", args, err)
		}
		return string(out)
	}
	ids := map[string]bool{}
	for _, id := range strings.Fields(ctr("containers", "ls", "-q", "image=="+image)) {
		ids[id] = true
	}
	n := 0
	for _, line := range strings.Split(ctr("tasks", "ls"), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && ids[f[0]] && f[2] == "RUNNING" {
			n++
		}
	}
	return n
}
