package podnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The benchmarks' topology: pods on a CNI-style bridge (cni0, holding the
// podCIDR's gateway address) in their node's namespace. Same-node uses
// one node with both pods on its bridge; across nodes, each node (linked
// to the other by a veth pair, as in TestKernel) has one pod, and podnet
// routes between them. The addresses are TestKernel's, plus a second pod
// on node A's podCIDR.
const (
	benchBridge   = "cni0"
	benchPodA2IP  = "10.244.1.3"
	benchConc     = 8  // concurrent keep-alive connections and requests
	benchBodySize = 64 // bytes of each response body
	benchLinkMTU  = 1500
)

var benchBody = []byte(strings.Repeat("x", benchBodySize))

// BenchmarkPodToPod measures HTTP requests/s and latency from a pod to a
// pod: on one node (through the node's bridge), and across two nodes
// routed by podnet over VXLAN and host-gw. A net/http server in pod B
// answers every request with a fixed 64-byte body; the client in pod A
// keeps benchConc connections alive and runs benchConc requests at a time.
// Besides ns/op (wall time over all requests), it reports req/s and the
// p50 and p99 request latency in microseconds.
//
// Each namespace is named after the process, so a run never clashes with
// another or with TestKernel; b.Cleanup deletes them however it ends.
// Client and server share the machine's CPUs, so the figures compare the
// paths with each other rather than give a network's capacity.
func BenchmarkPodToPod(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create network namespaces, links and routes")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skipf("needs ip (iproute2) to build the benchmark topology: %v", err)
	}
	b.Run("same-node", func(b *testing.B) {
		node, _ := benchNode(b, "same", "n", gwA+"/24")
		pA := benchPod(b, node, "same", "pA", podAIP, gwA, benchLinkMTU)
		pB := benchPod(b, node, "same", "pB", benchPodA2IP, gwA, benchLinkMTU)
		benchHTTP(b, pA, pB, benchPodA2IP)
	})
	b.Run("vxlan", func(b *testing.B) {
		// podnet gives the VXLAN device the link's MTU less Overhead
		// (1450): the pods get that MTU too, as the CNI config does with
		// LinkMTU, so that full-size TCP segments fit the tunnel without
		// relying on path MTU discovery.
		pA, pB := benchAcrossNodes(b, VXLAN, benchLinkMTU-Overhead)
		benchHTTP(b, pA, pB, podBIP)
	})
	b.Run("host-gw", func(b *testing.B) {
		pA, pB := benchAcrossNodes(b, HostGW, benchLinkMTU)
		benchHTTP(b, pA, pB, podBIP)
	})
}

// benchAcrossNodes builds nodes A and B, linked by a veth pair, with one
// pod each on their bridge, and syncs podnet with backend on both; it
// returns the pods' namespaces.
func benchAcrossNodes(b *testing.B, backend Backend, podMTU int) (pA, pB netns.NsHandle) {
	tag := string(backend)
	nA, hA := benchNode(b, tag, "nA", gwA+"/24")
	nB, hB := benchNode(b, tag, "nB", gwB+"/24")
	benchIP(b, "-n", nA, "link", "add", "eth0", "mtu", fmt.Sprint(benchLinkMTU), "type", "veth", "peer", "name", "eth0", "netns", nB)
	for _, n := range []struct{ ns, addr string }{{nA, nodeAIP}, {nB, nodeBIP}} {
		benchIP(b, "-n", n.ns, "link", "set", "eth0", "mtu", fmt.Sprint(benchLinkMTU))
		benchIP(b, "-n", n.ns, "addr", "add", n.addr+"/24", "dev", "eth0")
		benchIP(b, "-n", n.ns, "link", "set", "eth0", "up")
	}
	pA = benchPod(b, nA, tag, "pA", podAIP, gwA, podMTU)
	pB = benchPod(b, nB, tag, "pB", podBIP, gwB, podMTU)

	nodes := []*corev1.Node{testNode("node-a", podCIDRA, nodeAIP), testNode("node-b", podCIDRB, nodeBIP)}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, n := range nodes {
		if err := indexer.Add(n); err != nil {
			b.Fatal(err)
		}
	}
	lister := corelisters.NewNodeLister(indexer)
	for _, n := range []struct {
		name, ip string
		h        *netlink.Handle
	}{{nodes[0].Name, nodeAIP, hA}, {nodes[1].Name, nodeBIP, hB}} {
		nw, err := New(Config{NodeName: n.name, NodeIP: n.ip, Backend: backend, Nodes: lister, Netlink: n.h, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatalf("New for %s: %v", n.name, err)
		}
		if err := nw.Sync(nodes); err != nil {
			b.Fatalf("sync on %s: %v", n.name, err)
		}
	}
	return pA, pB
}

// benchIP runs ip with args.
func benchIP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// benchNamespace creates network namespace pnb-<pid>-<tag>-<role> with
// its loopback up and returns its name and a handle on it; tb.Cleanup
// deletes it (and every link and route in it).
func benchNamespace(tb testing.TB, tag, role string) (string, netns.NsHandle) {
	tb.Helper()
	name := fmt.Sprintf("pnb-%d-%s-%s", os.Getpid(), tag, role)
	// Registered before the add: a failure midway still removes what
	// exists (deleting a namespace that is not there is harmless).
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	benchIP(tb, "netns", "add", name)
	benchIP(tb, "-n", name, "link", "set", "lo", "up")
	h, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatalf("opening network namespace %s: %v", name, err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return name, h
}

// benchNode creates a node namespace forwarding IPv4, with a bridge
// holding the gateway address gwCIDR (as the CNI bridge plugin leaves it),
// and returns its name and a netlink handle working in it.
func benchNode(tb testing.TB, tag, role, gwCIDR string) (string, *netlink.Handle) {
	tb.Helper()
	name, ns := benchNamespace(tb, tag, role)
	benchIP(tb, "-n", name, "link", "add", benchBridge, "type", "bridge")
	benchIP(tb, "-n", name, "addr", "add", gwCIDR, "dev", benchBridge)
	benchIP(tb, "-n", name, "link", "set", benchBridge, "up")
	// /proc/sys/net shows the namespace of the thread that opens it.
	err := inNetns(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	if err != nil {
		tb.Fatalf("enabling IP forwarding in %s: %v", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink handle in %s: %v", name, err)
	}
	tb.Cleanup(h.Close)
	return name, h
}

// benchPod creates a pod namespace whose eth0 (address ip/24, MTU mtu,
// default route via gw) is a veth pair with its other end on node's
// bridge, and returns the pod's namespace.
func benchPod(tb testing.TB, node, tag, role, ip, gw string, mtu int) netns.NsHandle {
	tb.Helper()
	name, ns := benchNamespace(tb, tag, role)
	hostSide := "veth" + role
	benchIP(tb, "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", hostSide, "netns", node)
	benchIP(tb, "-n", name, "link", "set", "eth0", "mtu", fmt.Sprint(mtu))
	benchIP(tb, "-n", node, "link", "set", hostSide, "mtu", fmt.Sprint(mtu))
	benchIP(tb, "-n", node, "link", "set", hostSide, "master", benchBridge)
	benchIP(tb, "-n", node, "link", "set", hostSide, "up")
	benchIP(tb, "-n", name, "addr", "add", ip+"/24", "dev", "eth0")
	benchIP(tb, "-n", name, "link", "set", "eth0", "up")
	benchIP(tb, "-n", name, "route", "add", "default", "via", gw)
	return ns
}

// nsDialer dials from a network namespace: one goroutine, locked to its
// OS thread and moved into the namespace, makes every connection (a
// socket belongs to the namespace of the thread creating it). The thread
// is never unlocked, so it exits with the goroutine instead of going back
// to the scheduler in the wrong namespace.
type nsDialer struct {
	reqs chan nsDialReq
}

type nsDialReq struct {
	ctx           context.Context
	network, addr string
	res           chan<- nsDialRes
}

type nsDialRes struct {
	conn net.Conn
	err  error
}

func newNSDialer(tb testing.TB, ns netns.NsHandle) *nsDialer {
	tb.Helper()
	d := &nsDialer{reqs: make(chan nsDialReq)}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ready <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		ready <- nil
		// addr is always one IP literal: the dial stays on this goroutine
		// (only a dual-stack fallback would start others).
		nd := net.Dialer{Timeout: 3 * time.Second}
		for r := range d.reqs {
			c, err := nd.DialContext(r.ctx, r.network, r.addr)
			r.res <- nsDialRes{c, err}
		}
	}()
	if err := <-ready; err != nil {
		tb.Fatalf("client dialer: %v", err)
	}
	tb.Cleanup(func() { close(d.reqs) })
	return d
}

// DialContext is an http.Transport's DialContext.
func (d *nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	res := make(chan nsDialRes, 1)
	select {
	case d.reqs <- nsDialReq{ctx, network, addr, res}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := <-res
	return r.conn, r.err
}

// benchHTTP serves HTTP in namespace server on serverIP and measures
// b.N requests from namespace client, benchConc at a time over benchConc
// keep-alive connections.
func benchHTTP(b *testing.B, client, server netns.NsHandle, serverIP string) {
	var ln net.Listener
	err := inNetns(server, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(serverIP, "0"))
		return err
	})
	if err != nil {
		b.Fatalf("listening in the server pod: %v", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(benchBody)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })

	dialer := newNSDialer(b, client)
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxConnsPerHost:     benchConc,
		MaxIdleConnsPerHost: benchConc,
		DisableCompression:  true,
	}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"

	// Open the connections (and fill the ARP and neighbor caches) before
	// the clock starts; a broken path fails here.
	if err := benchGet(c, url); err != nil {
		b.Fatalf("client pod to server pod %s: %v", url, err)
	}
	var wg sync.WaitGroup
	warmErrs := make([]error, benchConc)
	for w := range benchConc {
		wg.Go(func() {
			for range 20 {
				if err := benchGet(c, url); err != nil {
					warmErrs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(warmErrs...); err != nil {
		b.Fatalf("warming up: %v", err)
	}

	var next atomic.Int64
	var failed atomic.Bool
	lat := make([][]time.Duration, benchConc)
	b.ResetTimer()
	start := time.Now()
	for w := range benchConc {
		wg.Go(func() {
			l := make([]time.Duration, 0, b.N/benchConc+1)
			for next.Add(1) <= int64(b.N) && !failed.Load() {
				t0 := time.Now()
				if err := benchGet(c, url); err != nil {
					if !failed.Swap(true) {
						b.Errorf("request: %v", err)
					}
					return
				}
				l = append(l, time.Since(t0))
			}
			lat[w] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() {
		return
	}

	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p int) float64 {
		i := min(len(all)*p/100, len(all)-1)
		return float64(all[i]) / float64(time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(50), "p50-µs")
	b.ReportMetric(pct(99), "p99-µs")
}

// benchGet makes one request and reads the whole response.
func benchGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != benchBodySize {
		return fmt.Errorf("got %s with %d bytes, want 200 OK with %d", resp.Status, n, benchBodySize)
	}
	return nil
}
