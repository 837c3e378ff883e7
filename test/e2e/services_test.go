package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skiff-io/skiff/test/framework"
)

// fakeUpstream is the "node's resolver" of the test: a DNS server on a
// loopback address that knows one outside name. Nothing leaves the machine.
func fakeUpstream(t *testing.T, addr, name, ip string) {
	t.Helper()
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		switch {
		case len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, name):
			m.Rcode = dns.RcodeNameError
		case r.Question[0].Qtype == dns.TypeA:
			rr, _ := dns.NewRR(fmt.Sprintf("%s 30 IN A %s", name, ip))
			m.Answer = append(m.Answer, rr)
		}
		// Other types of the known name: no data (NOERROR, empty).
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("fake upstream DNS: %v", err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
}

// TestServices: the Service promise with real pods, the nftables proxy and
// the cluster DNS, driven by the stock kubectl.
func TestServices(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipping: nft is not installed (apt-get install nftables)")
	}
	const outside, outsideIP = "outside.example.", "203.0.113.7" // TEST-NET-3: answered, never contacted
	fakeUpstream(t, "127.0.0.53:53", outside, outsideIP)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	// Shortened autoscaling loop: the HPA subtest waits on it.
	c := framework.StartNode(t, skiffBin, images, "--resolv-conf", resolv,
		"--metric-resolution=5s", "--horizontal-pod-autoscaler-sync-period=5s",
		"--horizontal-pod-autoscaler-downscale-stabilization=20s")
	k := kubectl{t: t, c: c}

	waitFor, jsonpath := k.waitFor, k.jsonpath
	httpGet := func(url string) (string, error) {
		client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return string(b), fmt.Errorf("%s: %s", url, resp.Status)
		}
		return strings.TrimSpace(string(b)), err
	}
	readyReplicas := func(want int) {
		waitFor(t, fmt.Sprintf("%d ready replicas", want), 90*time.Second, func() (bool, string) {
			s := jsonpath("deployment/web", "{.status.readyReplicas} {.status.updatedReplicas} {.status.replicas}")
			return s == fmt.Sprintf("%d %d %d", want, want, want), s
		})
	}

	k.okIn(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 15
      containers:
      - name: web
        image: skiff.io/test/server:v1
        ports: [{containerPort: 8080, name: http}]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
`, "apply", "-f", "-")
	// No preStop hook: the kubelet itself holds SIGTERM until the pod's
	// endpoints have left the Service (docs/compatibility.md).
	k.ok("run", "bb", "--image=docker.io/library/busybox:1.36", "--", "sleep", "3600")
	readyReplicas(3)
	waitFor(t, "bb Running", 60*time.Second, func() (bool, string) {
		s := jsonpath("pod/bb", "{.status.phase}")
		return s == "Running", s
	})
	k.ok("expose", "deployment", "web", "--port", "80", "--target-port", "8080")
	clusterIP := jsonpath("service/web", "{.spec.clusterIP}")

	t.Run("ClusterIP spreads over all three pods from the node and from a pod", func(t *testing.T) {
		k.t = t
		seen := map[string]bool{}
		waitFor(t, "all three pods answer on the ClusterIP from the node", 60*time.Second, func() (bool, string) {
			if body, err := httpGet("http://" + clusterIP + "/hostname"); err == nil {
				seen[body] = true
			}
			return len(seen) == 3, fmt.Sprint(seen)
		})
		out := k.ok("exec", "bb", "--", "sh", "-c",
			fmt.Sprintf("for i in $(seq 1 40); do wget -qO- http://%s/hostname; done | sort -u", clusterIP))
		if n := len(strings.Fields(out)); n != 3 {
			t.Fatalf("from a pod, the ClusterIP answered from %d pods: %q", n, out)
		}
	})

	t.Run("kubectl proxy reaches pods and services (pods/proxy, services/proxy); exec into the demo image", func(t *testing.T) {
		k.t = t
		base := startKubectlProxy(t, c)
		pods := strings.Fields(k.ok("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))
		if len(pods) == 0 {
			t.Fatal("no web pods")
		}
		// The tutorial's request: the pod and its port named.
		for _, id := range []string{pods[0] + ":8080", pods[0], "http:" + pods[0] + ":8080"} {
			body, err := httpGet(base + "/api/v1/namespaces/default/pods/" + id + "/proxy/hostname")
			if err != nil || body != pods[0] {
				t.Errorf("pods/%s/proxy/hostname = %q, %v; want %q", id, body, err, pods[0])
			}
		}
		seen := map[string]bool{}
		for _, id := range []string{"web", "web:80", "http:web:80"} {
			for range 10 {
				body, err := httpGet(base + "/api/v1/namespaces/default/services/" + id + "/proxy/hostname")
				if err != nil {
					t.Fatalf("services/%s/proxy/hostname: %v (%s)", id, err, body)
				}
				seen[body] = true
			}
		}
		if len(seen) < 2 {
			t.Errorf("services/proxy answered from %v, want several of the pods", seen)
		}
		// The query goes along; errors are Status objects.
		if body, err := httpGet(base + "/api/v1/namespaces/default/services/web:81/proxy/"); err == nil || !strings.Contains(body, `no service port \"81\" found for service \"web\"`) {
			t.Errorf("an unknown service port: %v %s", err, body)
		}
		if body, err := httpGet(base + "/api/v1/namespaces/default/pods/nosuchpod:8080/proxy/"); err == nil || !strings.Contains(body, `pods \"nosuchpod\" not found`) {
			t.Errorf("an unknown pod: %v %s", err, body)
		}
		// The demo image has a shell and the usual tools beside the
		// server, as the tutorial's image has.
		if out := k.ok("exec", pods[0], "--", "env"); !strings.Contains(out, "PATH=") || !strings.Contains(out, "HOSTNAME="+pods[0]) {
			t.Errorf("kubectl exec %s -- env: %q", pods[0], out)
		}
		if out := k.ok("exec", pods[0], "--", "sh", "-c", "cat /etc/hostname; wget -qO- http://127.0.0.1:8080/version"); strings.Fields(out)[0] != pods[0] || !strings.Contains(out, "v1") {
			t.Errorf("kubectl exec %s -- sh -c ...: %q", pods[0], out)
		}
		// Without pods/proxy, a service account is refused.
		out, _ := k.run("", "auth", "can-i", "get", "pods/proxy", "--as=system:serviceaccount:default:default")
		if strings.TrimSpace(out) != "no" {
			t.Errorf("a service account may get pods/proxy: %s", out)
		}
	})

	t.Run("a pod resolves service names and outside names", func(t *testing.T) {
		k.t = t
		for _, name := range []string{"web", "web.default", "web.default.svc.cluster.local"} {
			out := k.ok("exec", "bb", "--", "wget", "-qO-", "http://"+name+"/version")
			if strings.TrimSpace(out) != "v1" {
				t.Fatalf("http://%s/version from a pod = %q", name, out)
			}
		}
		out := k.ok("exec", "bb", "--", "nslookup", strings.TrimSuffix(outside, "."))
		mustContain(t, "nslookup of a name the node's resolver knows", out, outsideIP)
	})

	t.Run("a headless service resolves to the pod IPs", func(t *testing.T) {
		k.t = t
		k.ok("expose", "deployment", "web", "--cluster-ip", "None", "--name", "web-headless", "--port", "8080")
		ips := strings.Fields(jsonpath("pods", `{.items[?(@.metadata.labels.app=="web")].status.podIP}`))
		if len(ips) != 3 {
			t.Fatalf("pod IPs: %v", ips)
		}
		waitFor(t, "nslookup web-headless lists the three pod IPs", 30*time.Second, func() (bool, string) {
			out, _ := k.run("", "exec", "bb", "--", "nslookup", "web-headless.default.svc.cluster.local")
			for _, ip := range ips {
				if !strings.Contains(out, ip) {
					return false, out
				}
			}
			return true, out
		})
	})

	t.Run("NodePort answers on the node address", func(t *testing.T) {
		k.t = t
		k.ok("expose", "deployment", "web", "--type", "NodePort", "--name", "web-np", "--port", "80", "--target-port", "8080")
		port := jsonpath("service/web-np", "{.spec.ports[0].nodePort}")
		waitFor(t, "NodePort "+port+" on 127.0.0.1", 30*time.Second, func() (bool, string) {
			body, err := httpGet("http://127.0.0.1:" + port + "/version")
			return err == nil && body == "v1", fmt.Sprint(body, err)
		})
	})

	t.Run("LoadBalancer answers on its ingress IP", func(t *testing.T) {
		k.t = t
		k.ok("expose", "deployment", "web", "--type", "LoadBalancer", "--name", "web-lb", "--port", "80", "--target-port", "8080")
		var ingress string
		waitFor(t, "an ingress IP", 30*time.Second, func() (bool, string) {
			ingress = jsonpath("service/web-lb", "{.status.loadBalancer.ingress[0].ip}")
			return ingress != "", ingress
		})
		if !strings.HasPrefix(ingress, "127.") {
			t.Fatalf("ingress IP %q is not in the loopback pool", ingress)
		}
		waitFor(t, "GET on the ingress IP", 30*time.Second, func() (bool, string) {
			body, err := httpGet("http://" + ingress + "/version")
			return err == nil && body == "v1", fmt.Sprint(body, err)
		})
	})

	t.Run("rollouts and scale-down lose no request", func(t *testing.T) {
		k.t = t
		// From the node: two clients, a new connection per request.
		clients := callRepeatedly(httpGet, "http://"+clusterIP+"/hostname", 2, 2*time.Millisecond)
		// From a pod: busybox wget in a loop until told to stop.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		podLoop := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.Kubeconfig, "exec", "bb", "--", "sh", "-c",
			fmt.Sprintf(`rm -f /tmp/stop; ok=0; bad=0; while [ ! -f /tmp/stop ]; do if wget -qO /dev/null http://%s/hostname; then ok=$((ok+1)); else bad=$((bad+1)); fi; done; echo "$ok $bad"`, clusterIP))
		var podOut strings.Builder
		podLoop.Stdout = &podOut
		if err := podLoop.Start(); err != nil {
			t.Fatal(err)
		}

		k.ok("set", "image", "deployment/web", "web=skiff.io/test/server:v2")
		k.ok("rollout", "status", "deployment/web", "--timeout=120s")
		readyReplicas(3)
		k.ok("rollout", "undo", "deployment/web")
		k.ok("rollout", "status", "deployment/web", "--timeout=120s")
		readyReplicas(3)
		k.ok("scale", "deployment/web", "--replicas=1")
		waitFor(t, "one web pod left", 60*time.Second, func() (bool, string) {
			s := jsonpath("pods", `{.items[?(@.metadata.labels.app=="web")].metadata.name}`)
			return len(strings.Fields(s)) == 1, s
		})

		ok, failed, firstErr := clients.stop()
		k.ok("exec", "bb", "--", "touch", "/tmp/stop")
		if err := podLoop.Wait(); err != nil {
			t.Fatalf("the pod's client loop: %v (%s)", err, podOut.String())
		}
		f := strings.Fields(podOut.String())
		if len(f) != 2 {
			t.Fatalf("the pod's client printed %q", podOut.String())
		}
		podOK, _ := strconv.Atoi(f[0])
		podBad, _ := strconv.Atoi(f[1])
		t.Logf("from the node: %d ok, %d failed; from a pod: %d ok, %d failed", ok, failed, podOK, podBad)
		if failed != 0 || podBad != 0 {
			t.Fatalf("requests failed during the rollouts: node %d (first: %v), pod %d", failed, firstErr, podBad)
		}
		if total := ok + int64(podOK); total < 3000 {
			t.Fatalf("only %d requests were made during the rollouts, want at least 3000", total)
		}
		if v, _ := httpGet("http://" + clusterIP + "/version"); v != "v1" {
			t.Fatalf("after the undo the service answers %q, want v1", v)
		}
	})

	t.Run("the HPA scales web on CPU and back, and no request fails", func(t *testing.T) {
		k.t = t
		autoscaleDeployment(t, k, clusterIP, httpGet)
	})

	t.Run("a real Prometheus scrapes every component through the API server", func(t *testing.T) {
		k.t = t
		scrapeWithPrometheus(t, k, c)
	})
}

// autoscaleDeployment is the HPA subtest of TestServices, which leaves
// deployment/web at one v1 replica behind clusterIP and a busybox pod bb:
// a 100m CPU request, `kubectl autoscale --cpu-percent=50 --min=1 --max=4`,
// load from busybox pods calling /cpu through the Service, at least 3
// replicas under it and 1 again after the (shortened) stabilization window,
// while a client calling the Service sees no failed request.
func autoscaleDeployment(t *testing.T, k kubectl, clusterIP string, httpGet func(string) (string, error)) {
	waitFor, jsonpath := k.waitFor, k.jsonpath
	// Light: the HPA sees this load too, and must scale back to 1.
	client := callRepeatedly(httpGet, "http://"+clusterIP+"/hostname", 1, 50*time.Millisecond)
	defer client.stop()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()

	k.ok("set", "resources", "deployment/web", "--requests=cpu=100m")
	k.ok("rollout", "status", "deployment/web", "--timeout=120s")
	started := time.Now()
	k.ok("autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=4")

	// kubectl top: usage within 30 s of the pod starting (the first
	// scrape already has a rate: the container's start is its first point).
	// The newest web pod is the one the rollout started (an old one may
	// still be terminating).
	var podStart time.Time
	for _, f := range strings.Fields(jsonpath("pods", `{.items[?(@.metadata.labels.app=="web")].status.startTime}`)) {
		at, err := time.Parse(time.RFC3339, f)
		if err != nil {
			t.Fatalf("a web pod's start time %q: %v", f, err)
		}
		if at.After(podStart) {
			podStart = at
		}
	}
	waitFor(t, "kubectl top pod shows the web pod's CPU within 30 s of its start", max(time.Until(podStart.Add(30*time.Second)), time.Second), func() (bool, string) {
		out, err := k.run("", "top", "pod", "-l", "app=web", "--no-headers")
		if err != nil || strings.TrimSpace(out) == "" {
			return false, out
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || f[1] == "0m" || !strings.HasSuffix(f[1], "m") || f[2] == "0Mi" {
				return false, out
			}
		}
		return true, out
	})
	t.Logf("kubectl top pod showed CPU %v after the pod started (%v after the rollout)", time.Since(podStart).Round(time.Second), time.Since(started).Round(time.Second))
	targets := func() string {
		return jsonpath("hpa/web", "{.status.currentMetrics[0].resource.current.averageUtilization}")
	}
	waitFor(t, "the HPA reports a utilization", 30*time.Second, func() (bool, string) {
		out, _ := k.run("", "get", "hpa", "web", "--no-headers")
		return targets() != "" && strings.Contains(out, "%/50%") && !strings.Contains(out, "<unknown>"), out
	})
	// From here on, `kubectl get hpa` must never show <unknown> again,
	// but during the rollout below (see there).
	var unknown atomic.Value
	var rollingOut atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if out, _ := k.run("", "get", "hpa", "web", "--no-headers"); strings.Contains(out, "<unknown>") && !rollingOut.Load() {
				unknown.CompareAndSwap(nil, out)
			}
		}
	}()

	k.okIn(`apiVersion: apps/v1
kind: Deployment
metadata: {name: load}
spec:
  replicas: 2
  selector: {matchLabels: {app: load}}
  template:
    metadata: {labels: {app: load}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: load
        image: docker.io/library/busybox:1.36
        command: [sh, -c, "while true; do wget -qO /dev/null 'http://web/cpu?ms=100'; sleep 0.2; done"]
`, "apply", "-f", "-")
	onset := time.Now()
	waitFor(t, "the HPA scales web to at least 3 ready replicas", 3*time.Minute, func() (bool, string) {
		s := jsonpath("deployment/web", "{.status.readyReplicas}")
		n, _ := strconv.Atoi(s)
		return n >= 3, s + " ready; hpa: " + k.ok("get", "hpa", "web", "--no-headers")
	})
	t.Logf("load onset to 3 ready replicas: %v", time.Since(onset).Round(100*time.Millisecond))
	// A rollout while the HPA owns the replica count does not fight it:
	// the Deployment keeps the scaled count through the new ReplicaSet.
	// When it ends every pod is new, and for a CPU metric upstream sets
	// aside a pod's samples until one full window after it turned Ready
	// (the CPU initialization period): for a sync or two no pod has a
	// usable sample and the HPA reports <unknown>, as upstream's would.
	rollingOut.Store(true)
	scaled := jsonpath("deployment/web", "{.spec.replicas}")
	k.ok("set", "image", "deployment/web", "web=skiff.io/test/server:v2")
	k.ok("rollout", "status", "deployment/web", "--timeout=120s")
	if after, _ := strconv.Atoi(jsonpath("deployment/web", "{.spec.replicas}")); after < 3 {
		t.Errorf("a rollout under load left %d replicas (the HPA had %s)", after, scaled)
	}
	if v, _ := httpGet("http://" + clusterIP + "/version"); v != "v2" {
		t.Errorf("after the rollout the service answers %q, want v2", v)
	}
	// The old pods still have samples until they are gone; the new ones
	// have usable ones one scrape after they are Ready. So: wait for the
	// old pods to go, then allow two more syncs and a scrape (15 s).
	rolledOut := time.Now()
	var oldGone time.Time
	waitFor(t, "the old pods gone and the HPA reporting a utilization again", 90*time.Second, func() (bool, string) {
		pods := strings.Fields(jsonpath("pods", `{.items[?(@.metadata.labels.app=="web")].metadata.name}`))
		if oldGone.IsZero() && strconv.Itoa(len(pods)) == jsonpath("deployment/web", "{.spec.replicas}") {
			oldGone = time.Now()
		}
		out, _ := k.run("", "get", "hpa", "web", "--no-headers")
		return !oldGone.IsZero() && time.Since(oldGone) > 15*time.Second &&
			!strings.Contains(out, "<unknown>") && strings.Contains(out, "%/50%"), fmt.Sprintf("%d web pods; %s", len(pods), out)
	})
	t.Logf("after the rollout the old pods were gone in %v", oldGone.Sub(rolledOut).Round(100*time.Millisecond))
	rollingOut.Store(false)

	k.ok("delete", "deployment", "load", "--wait=false")
	quiet := time.Now()
	waitFor(t, "the HPA returns web to 1 replica", 3*time.Minute, func() (bool, string) {
		s := jsonpath("deployment/web", "{.spec.replicas} {.status.replicas}")
		return s == "1 1", s
	})
	t.Logf("load stopped to 1 replica: %v (stabilization window 20 s)", time.Since(quiet).Round(100*time.Millisecond))
	events := k.ok("get", "events", "--field-selector=involvedObject.kind=HorizontalPodAutoscaler,reason=SuccessfulRescale", "-o", "jsonpath={.items[*].message}")
	if !strings.Contains(events, "New size: ") {
		t.Errorf("no SuccessfulRescale event: %q", events)
	}
	if u := unknown.Load(); u != nil {
		t.Errorf("kubectl get hpa showed <unknown> after the first scrape: %s", u)
	}
	ok, failed, firstErr := client.stop()
	t.Logf("from the node: %d ok, %d failed", ok, failed)
	if failed != 0 {
		t.Errorf("%d requests failed while the HPA scaled (first: %v)", failed, firstErr)
	}
	k.ok("delete", "hpa", "web")
}

// repeatedCalls are clients calling one URL in a loop (callRepeatedly).
type repeatedCalls struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	halt       chan struct{}
	wg         sync.WaitGroup
	once       sync.Once
}

// callRepeatedly starts n clients that GET url with get, pausing between
// calls, until stop.
func callRepeatedly(get func(string) (string, error), url string, n int, pause time.Duration) *repeatedCalls {
	c := &repeatedCalls{halt: make(chan struct{})}
	for range n {
		c.wg.Go(func() {
			for {
				select {
				case <-c.halt:
					return
				default:
				}
				if _, err := get(url); err != nil {
					c.failed.Add(1)
					c.firstErr.CompareAndSwap(nil, err.Error())
				} else {
					c.ok.Add(1)
				}
				time.Sleep(pause)
			}
		})
	}
	return c
}

// stop ends the calls (once; later calls only report) and returns how
// many answered, how many failed, and the first failure.
func (c *repeatedCalls) stop() (ok, failed int64, firstErr any) {
	c.once.Do(func() { close(c.halt); c.wg.Wait() })
	return c.ok.Load(), c.failed.Load(), c.firstErr.Load()
}

// startKubectlProxy runs `kubectl proxy` on a free port for the test's
// length and returns its base URL.
func startKubectlProxy(t *testing.T, c *framework.Cluster) string {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "proxy", "--port=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 256)
		n, _ := out.Read(b)
		line <- string(b[:n])
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		// "Starting to serve on 127.0.0.1:40231"
		_, addr, ok := strings.Cut(strings.TrimSpace(l), "Starting to serve on ")
		if !ok {
			t.Fatalf("kubectl proxy: %q", l)
		}
		return "http://" + addr
	case <-time.After(10 * time.Second):
		t.Fatal("kubectl proxy did not start")
	}
	return ""
}
