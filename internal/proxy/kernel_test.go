package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

// requireKernel skips unless the test can program nftables and build
// network namespaces: root, nft, ip, busybox (the backends' httpd) and curl.
func requireKernel(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to program nftables and create network namespaces")
	}
	for _, bin := range []string{"nft", "ip", "busybox", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testNet is a bridge 10.99.0.1/24 with one network namespace per backend
// (10.99.0.2, .3, ...) running busybox httpd on :8080 that answers its
// name, and a route sending the test service range 10.99.255.0/24 to the
// bridge (so nothing that escapes the DNAT leaves the host).
type testNet struct {
	bridge string
	netns  []string
	ips    []string
}

func newTestNet(t *testing.T, names ...string) *testNet {
	t.Helper()
	id := randomSuffix()
	n := &testNet{bridge: "skpt" + id}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.bridge).Run() })
	run(t, "ip", "link", "add", n.bridge, "type", "bridge")
	run(t, "ip", "addr", "add", "10.99.0.1/24", "dev", n.bridge)
	run(t, "ip", "link", "set", n.bridge, "up")
	run(t, "ip", "route", "add", "10.99.255.0/24", "dev", n.bridge)

	for i, name := range names {
		ns := "skpt-" + id + "-" + name
		ip := "10.99.0." + string(rune('2'+i))
		host, peer := "skpt"+id+name, "skpp"+id+name
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		run(t, "ip", "link", "set", peer, "netns", ns)
		run(t, "ip", "link", "set", host, "master", n.bridge)
		// As the CNI bridge plugin's hairpinMode: a pod reaching itself
		// through a service gets its packets back on the same port.
		run(t, "ip", "link", "set", "dev", host, "type", "bridge_slave", "hairpin", "on")
		run(t, "ip", "link", "set", host, "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", peer)
		run(t, "ip", "-n", ns, "link", "set", peer, "up")
		run(t, "ip", "-n", ns, "route", "add", "default", "via", "10.99.0.1")

		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		httpd := exec.Command("ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "8080", "-h", dir)
		if err := httpd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = httpd.Process.Kill()
			_ = httpd.Wait()
		})
		n.netns = append(n.netns, ns)
		n.ips = append(n.ips, ip)
		eventually(t, "httpd in "+ns, 10*time.Second, func() bool {
			body, err := httpGet("http://" + ip + ":8080/")
			return err == nil && body == name
		})
	}
	return n
}

var plainClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	Timeout:   2 * time.Second,
}

// httpGet fetches url on a new connection and returns the body.
func httpGet(url string) (string, error) {
	resp, err := plainClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// getFromNetns fetches url with curl inside network namespace ns.
func getFromNetns(ns, url string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "2", url).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// seesAll polls get until every name in want has answered.
func seesAll(t *testing.T, what string, get func() (string, error), want ...string) {
	t.Helper()
	seen := map[string]bool{}
	var last error
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		body, err := get()
		if err != nil {
			last = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		seen[body] = true
		missing := false
		for _, w := range want {
			missing = missing || !seen[w]
		}
		if !missing {
			return
		}
	}
	t.Fatalf("%s: answers seen %v, want all of %v (last error: %v)", what, seen, want, last)
}

// TestKernel programs the real kernel: a Service with two backends in
// their own network namespaces, reached from the host on its ClusterIP and
// on a NodePort of 127.0.0.1, from a backend's namespace across the bridge
// (including hairpin to itself); a Service without endpoints refuses; an
// endpoint removed stops getting traffic; stopping removes the table.
func TestKernel(t *testing.T) {
	requireKernel(t)
	if b, err := os.ReadFile(sysctlRouteLocalnet); err == nil {
		t.Cleanup(func() { _ = os.WriteFile(sysctlRouteLocalnet, b, 0o644) })
	}
	n := newTestNet(t, "a", "b")

	const clusterIP, emptyIP, port = "10.99.255.10", "10.99.255.11", 30999
	client := fake.NewClientset(
		testService("web", clusterIP, nodePort(port)),
		testService("empty", emptyIP),
		testSlice("web", "web-1", ready(n.ips[0], "node-a"), ready(n.ips[1], "node-b")),
	)
	table := "skifftest" + randomSuffix()
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "ip", table).Run() })
	p, err := New(Config{
		NodeName: "node-a", NodeIPs: []string{"127.0.0.1"}, ClusterCIDR: "10.99.0.0/24",
		Client: client, Table: table, MinSyncPeriod: 10 * time.Millisecond, Log: testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	select {
	case <-p.Synced():
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not sync")
	}

	seesAll(t, "host to ClusterIP", func() (string, error) { return httpGet("http://" + clusterIP + "/") }, "a", "b")
	seesAll(t, "host to NodePort on 127.0.0.1", func() (string, error) { return httpGet("http://127.0.0.1:30999/") }, "a", "b")
	// From backend a: to b across the bridge (its reply is bridged: needs
	// bridge netfilter) and to itself (hairpin: masqueraded).
	seesAll(t, "pod a to ClusterIP", func() (string, error) { return getFromNetns(n.netns[0], "http://"+clusterIP+"/") }, "a", "b")

	_, err = httpGet("http://" + emptyIP + "/")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("service without endpoints: got %v, want connection refused", err)
	}

	slice := testSlice("web", "web-1", ready(n.ips[0], "node-a"))
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	streak := 0
	eventually(t, "only a answering 20 times in a row", 15*time.Second, func() bool {
		body, err := httpGet("http://" + clusterIP + "/")
		if err != nil || body != "a" {
			streak = 0
			return false
		}
		streak++
		return streak >= 20
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Start did not return")
	}
	if out, err := exec.Command("nft", "list", "table", "ip", table).CombinedOutput(); err == nil {
		t.Errorf("table %s left behind:\n%s", table, out)
	}
	// With the rules gone the ClusterIP no longer answers.
	if _, err := httpGet("http://" + clusterIP + "/"); err == nil {
		t.Error("ClusterIP still answers after the proxy stopped")
	}
}

// TestKernelTransactions runs the incremental steps (affinity sets
// recreated, chains emptied then deleted, services coming and going) and a
// restart's full sync through the real nft: the fake does not check
// everything the kernel does (set references, chain use counts).
func TestKernelTransactions(t *testing.T) {
	requireKernel(t)
	ctx := context.Background()
	cfg := testRuleConfig
	table := "skifftest" + randomSuffix()
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "ip", table).Run() })
	nft, err := knftables.New(knftables.IPv4Family, table)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	s := newSyncer(nft, []string{"127.0.0.1"})
	s.now = clock.now
	for _, step := range incrementalSteps() {
		updates := step.world.updates(&cfg)
		for key := range s.applied {
			if _, ok := updates[key]; !ok {
				updates[key] = nil
			}
		}
		if err := s.apply(ctx, updates); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		clock.t = clock.t.Add(2 * staleChainDelay)
		if err := s.apply(ctx, step.world.updates(&cfg)); err != nil {
			t.Fatalf("%s (stale deletion): %v", step.name, err)
		}
		if len(s.stale) != 0 {
			t.Errorf("%s: stale chains left: %v", step.name, s.stale)
		}
	}

	// A restart with different services: the full sync replaces the table.
	restarted := newSyncer(nft, []string{"127.0.0.1"})
	w := world{services: []*corev1.Service{testService("z", "10.43.0.26", clientIPAffinity(30))},
		slices: []*discoveryv1.EndpointSlice{testSlice("z", "z-1", ready("10.42.0.26", "node-a"))}}
	restarted.now = clock.now
	if err := restarted.apply(ctx, w.updates(&cfg)); err != nil {
		t.Fatalf("full sync after restart: %v", err)
	}
	// The leftovers were emptied; a sync after the delay deletes them.
	clock.t = clock.t.Add(2 * staleChainDelay)
	if err := restarted.apply(ctx, w.updates(&cfg)); err != nil {
		t.Fatalf("sync after restart: %v", err)
	}
	out := run(t, "nft", "list", "table", "ip", table)
	if strings.Contains(out, "/ns/a/") || !strings.Contains(out, "dnat to 10.42.0.26:8080") {
		t.Errorf("table after restart:\n%s", out)
	}
}
