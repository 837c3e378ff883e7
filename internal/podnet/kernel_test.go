package podnet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// The test topology: two "nodes" sharing a link, each with one "pod"
// behind it on its podCIDR, as the CNI bridge would leave them (minus the
// bridge: a veth whose node side holds the podCIDR's gateway address).
const (
	nodeAIP, nodeBIP   = "10.199.77.2", "10.199.77.3"
	podCIDRA, podCIDRB = "10.244.1.0/24", "10.244.2.0/24"
	podAIP, podBIP     = "10.244.1.2", "10.244.2.2"
	gwA, gwB           = "10.244.1.1", "10.244.2.1"
	// Node C exists only as a Node object.
	nodeCIP, podCIDRC = "10.199.77.4", "10.244.3.0/24"
)

// requireKernel skips unless the test can create network namespaces and
// links: root and ip.
func requireKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces, links and routes")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip (iproute2) to build the test topology: %v", err)
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on an OS thread moved into ns. The thread stays locked
// and so exits with the goroutine: no other goroutine is ever scheduled
// on a thread left in a test namespace. Sockets f creates stay in ns.
func inNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// topology is the four network namespaces: nodes nA and nB linked by a
// veth pair, pods pA and pB each linked to their node.
type topology struct {
	nA, nB, pA, pB netns.NsHandle
	// hA and hB are netlink handles working in nA and nB.
	hA, hB *netlink.Handle
}

// newTopology builds the namespaces, named after the process and tag so
// that concurrent runs do not collide; t.Cleanup deletes them (and with
// them every link and route in them) however the test ends.
func newTopology(t *testing.T, tag string) *topology {
	t.Helper()
	prefix := fmt.Sprintf("pnt-%d-%s-", os.Getpid(), tag)
	names := map[string]string{}
	handles := map[string]netns.NsHandle{}
	for _, n := range []string{"nA", "nB", "pA", "pB"} {
		name := prefix + n
		names[n] = name
		// Registered before the add: a failure midway still removes what
		// exists (deleting a namespace that is not there is harmless).
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
		run(t, "ip", "netns", "add", name)
		run(t, "ip", "-n", name, "link", "set", "lo", "up")
		h, err := netns.GetFromName(name)
		if err != nil {
			t.Fatalf("opening network namespace %s: %v", name, err)
		}
		t.Cleanup(func() { _ = h.Close() })
		handles[n] = h
	}

	// The nodes' shared link. Links are created straight in the test
	// namespaces: nothing is ever added to the host's.
	run(t, "ip", "-n", names["nA"], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", names["nB"])
	for _, n := range []struct{ ns, addr string }{{names["nA"], nodeAIP}, {names["nB"], nodeBIP}} {
		run(t, "ip", "-n", n.ns, "addr", "add", n.addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", n.ns, "link", "set", "eth0", "up")
	}

	// Each pod and its node.
	for _, p := range []struct{ pod, node, podIP, gw string }{
		{names["pA"], names["nA"], podAIP, gwA},
		{names["pB"], names["nB"], podBIP, gwB},
	} {
		run(t, "ip", "-n", p.pod, "link", "add", "eth0", "type", "veth", "peer", "name", "pod0", "netns", p.node)
		run(t, "ip", "-n", p.pod, "addr", "add", p.podIP+"/24", "dev", "eth0")
		run(t, "ip", "-n", p.pod, "link", "set", "eth0", "up")
		run(t, "ip", "-n", p.pod, "route", "add", "default", "via", p.gw)
		run(t, "ip", "-n", p.node, "addr", "add", p.gw+"/24", "dev", "pod0")
		run(t, "ip", "-n", p.node, "link", "set", "pod0", "up")
	}

	// The nodes forward between their pods and the other node. /proc/sys/net
	// shows the namespace of the thread that opens it.
	for _, n := range []string{"nA", "nB"} {
		err := inNetns(handles[n], func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		})
		if err != nil {
			t.Fatalf("enabling IP forwarding in %s: %v", names[n], err)
		}
	}

	tp := &topology{nA: handles["nA"], nB: handles["nB"], pA: handles["pA"], pB: handles["pB"]}
	var err error
	if tp.hA, err = netlink.NewHandleAt(tp.nA); err != nil {
		t.Fatalf("netlink handle in %s: %v", names["nA"], err)
	}
	t.Cleanup(tp.hA.Close)
	if tp.hB, err = netlink.NewHandleAt(tp.nB); err != nil {
		t.Fatalf("netlink handle in %s: %v", names["nB"], err)
	}
	t.Cleanup(tp.hB.Close)
	return tp
}

// podToPod connects from pod A to pod B and returns the client address
// pod B's server saw, or why the connection failed. Every step has a
// deadline: a broken path fails the test instead of hanging it.
func (tp *topology) podToPod() (string, error) {
	var ln net.Listener
	err := inNetns(tp.pB, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(podBIP, "0"))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("listening in pod B: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// The accepting side answers with the client address it saw, so that
	// the client also proves data flows both ways.
	seen := make(chan string, 1)
	go func() {
		defer close(seen)
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, host+"\n")
		seen <- host
	}()

	var reply string
	err = inNetns(tp.pA, func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(podBIP, fmt.Sprint(port)), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		reply = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("pod A (%s) to pod B (%s:%d): %w", podAIP, podBIP, port, err)
	}
	host := <-seen
	if host != reply {
		return "", fmt.Errorf("pod B's server saw client %q but pod A read back %q", host, reply)
	}
	return host, nil
}

func testNode(name, podCIDR, ip string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: ip},
		}},
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// checkRoutes checks that the routes in h's namespace carrying
// RouteProtocol go to exactly the podCIDRs in want.
func checkRoutes(t *testing.T, h *netlink.Handle, when string, want ...string) {
	t.Helper()
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatalf("listing routes with protocol %d: %v", RouteProtocol, err)
	}
	var got []string
	for _, r := range routes {
		got = append(got, r.Dst.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: node A's routes with protocol %d go to %v, want %v (%v)", when, RouteProtocol, got, want, routes)
	}
}

// checkNeighbors checks the VXLAN device's permanent ARP entries (one per
// peer's podCIDR gateway, at its VTEP MAC) and forwarding entries (one per
// peer's VTEP MAC, to its node address) are exactly those of peers.
func checkNeighbors(t *testing.T, h *netlink.Handle, idx int, when string, peers ...*corev1.Node) {
	t.Helper()
	var wantARP, wantFDB []string
	for _, node := range peers {
		p, ok := peerOf(node)
		if !ok {
			t.Fatalf("node %s is no peer", node.Name)
		}
		mac := vtepMAC(p.ip).String()
		wantARP = append(wantARP, p.podCIDR.IP.String()+" at "+mac)
		wantFDB = append(wantFDB, mac+" to "+p.ip.String())
	}
	slices.Sort(wantARP)
	slices.Sort(wantFDB)
	arps, err := h.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("listing %s's ARP entries: %v", Device, err)
	}
	var gotARP []string
	for _, a := range arps {
		if a.State&netlink.NUD_PERMANENT != 0 {
			gotARP = append(gotARP, a.IP.String()+" at "+a.HardwareAddr.String())
		}
	}
	fdbs, err := h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		t.Fatalf("listing %s's forwarding entries: %v", Device, err)
	}
	var gotFDB []string
	for _, f := range fdbs {
		if f.IP != nil {
			gotFDB = append(gotFDB, f.HardwareAddr.String()+" to "+f.IP.String())
		}
	}
	slices.Sort(gotARP)
	slices.Sort(gotFDB)
	if !slices.Equal(gotARP, wantARP) {
		t.Errorf("%s: %s's permanent ARP entries %v, want %v", when, Device, gotARP, wantARP)
	}
	if !slices.Equal(gotFDB, wantFDB) {
		t.Errorf("%s: %s's forwarding entries %v, want %v", when, Device, gotFDB, wantFDB)
	}
}

// checkDevice checks node A's VXLAN device is as the package documents it
// and returns its interface index.
func checkDevice(t *testing.T, h *netlink.Handle) int {
	t.Helper()
	link, err := h.LinkByName(Device)
	if err != nil {
		t.Fatalf("VXLAN device %s after sync: %v", Device, err)
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s is a %s link, want vxlan", Device, link.Type())
	}
	if vx.VxlanId != VNI || vx.Port != Port {
		t.Errorf("%s: VNI %d port %d, want VNI %d port %d", Device, vx.VxlanId, vx.Port, VNI, Port)
	}
	if !vx.SrcAddr.Equal(net.ParseIP(nodeAIP)) {
		t.Errorf("%s: local address %s, want node A's %s", Device, vx.SrcAddr, nodeAIP)
	}
	if want := vtepMAC(net.ParseIP(nodeAIP)).String(); vx.HardwareAddr.String() != want {
		t.Errorf("%s: MAC %s, want %s (derived from node A's address)", Device, vx.HardwareAddr, want)
	}
	if vx.MTU != 1500-Overhead {
		t.Errorf("%s: MTU %d, want %d (the veth's 1500 less the VXLAN overhead)", Device, vx.MTU, 1500-Overhead)
	}
	if vx.Flags&net.FlagUp == 0 {
		t.Errorf("%s is down", Device)
	}
	return vx.Index
}

// TestKernel builds two nodes with a pod each in network namespaces and,
// for each backend, checks that pods reach each other only once Sync has
// run on both nodes, with their own addresses (no NAT), and that a node
// removed from the list takes its route (and, with no peer left, the VXLAN
// device) away.
func TestKernel(t *testing.T) {
	requireKernel(t)
	nodeA := testNode("node-a", podCIDRA, nodeAIP)
	nodeB := testNode("node-b", podCIDRB, nodeBIP)
	nodeC := testNode("node-c", podCIDRC, nodeCIP)
	both := []*corev1.Node{nodeA, nodeB}

	for _, backend := range []Backend{VXLAN, HostGW} {
		t.Run(string(backend), func(t *testing.T) {
			tp := newTopology(t, string(backend))

			// The topology alone must not connect the pods: otherwise the
			// checks below would pass with a Sync that does nothing.
			if host, err := tp.podToPod(); err == nil {
				t.Fatalf("pod A reached pod B (as %s) before any sync: the topology routes pod traffic by itself", host)
			}

			indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			for _, n := range both {
				if err := indexer.Add(n); err != nil {
					t.Fatal(err)
				}
			}
			lister := corelisters.NewNodeLister(indexer)
			newNetwork := func(name, ip string, h *netlink.Handle) *Network {
				t.Helper()
				n, err := New(Config{NodeName: name, NodeIP: ip, Backend: backend, Nodes: lister, Netlink: h, Log: testLog(t)})
				if err != nil {
					t.Fatalf("New for %s: %v", name, err)
				}
				return n
			}
			netA := newNetwork(nodeA.Name, nodeAIP, tp.hA)
			netB := newNetwork(nodeB.Name, nodeBIP, tp.hB)

			// Node A first also sees node C, which has no namespace: only
			// its routes and entries matter, to see them pruned when it
			// leaves while node B stays.
			if err := netA.Sync([]*corev1.Node{nodeA, nodeB, nodeC}); err != nil {
				t.Fatalf("first sync on node A: %v", err)
			}
			if err := netB.Sync(both); err != nil {
				t.Fatalf("first sync on node B: %v", err)
			}
			checkRoutes(t, tp.hA, "after the first sync", podCIDRB, podCIDRC)
			devIndex := 0
			if backend == VXLAN {
				devIndex = checkDevice(t, tp.hA)
				checkNeighbors(t, tp.hA, devIndex, "after the first sync", nodeB, nodeC)
			} else if _, err := tp.hA.LinkByName(Device); err == nil {
				t.Errorf("host-gw left a %s device on node A", Device)
			}

			// Node C leaves: its route and entries go, node B's stay.
			if err := netA.Sync(both); err != nil {
				t.Fatalf("sync on node A without node C: %v", err)
			}
			checkRoutes(t, tp.hA, "after node C left", podCIDRB)
			if backend == VXLAN {
				checkNeighbors(t, tp.hA, devIndex, "after node C left", nodeB)
			}

			// Syncing again with nothing changed must succeed and leave
			// the device in place (not recreate it).
			if err := netA.Sync(both); err != nil {
				t.Fatalf("repeated sync on node A: %v", err)
			}
			if err := netB.Sync(both); err != nil {
				t.Fatalf("repeated sync on node B: %v", err)
			}
			checkRoutes(t, tp.hA, "after a repeated sync", podCIDRB)
			if backend == VXLAN {
				if idx := checkDevice(t, tp.hA); idx != devIndex {
					t.Errorf("a repeated sync recreated %s (index %d, then %d)", Device, devIndex, idx)
				}
				checkNeighbors(t, tp.hA, devIndex, "after a repeated sync", nodeB)
			}

			host, err := tp.podToPod()
			if err != nil {
				t.Fatalf("after sync: %v", err)
			}
			if host != podAIP {
				t.Errorf("pod B saw the client as %s, want pod A's own address %s (pod traffic must not be NATed)", host, podAIP)
			}

			// Node B leaves the cluster.
			if err := netA.Sync([]*corev1.Node{nodeA}); err != nil {
				t.Fatalf("sync on node A without node B: %v", err)
			}
			checkRoutes(t, tp.hA, "after node B left")
			if _, err := tp.hA.LinkByName(Device); err == nil {
				t.Errorf("node A kept %s with no other node to reach", Device)
			} else if !isNotFound(err) {
				t.Errorf("looking for %s on node A: %v", Device, err)
			}
			if host, err := tp.podToPod(); err == nil {
				t.Errorf("pod A still reached pod B (as %s) after node B left", host)
			}
		})
	}
}

// TestMasquerade checks the rules masquerade writes, on knftables' fake:
// one postrouting NAT chain with one rule masquerading what leaves the
// cluster CIDR, however often it runs; a bad CIDR is refused.
func TestMasquerade(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.IPv4Family, MasqueradeTable)
	for i := range 2 {
		if err := masquerade(ctx, fake, "10.42.0.0/16"); err != nil {
			t.Fatalf("masquerade, call %d: %v", i+1, err)
		}
		checkMasqueradeRule(t, fake, "10.42.0.0/16")
	}

	for _, bad := range []string{"nope", "fd00:42::/48", "10.42.0.0"} {
		if err := masquerade(ctx, fake, bad); err == nil {
			t.Errorf("masquerade(%q) succeeded, want an error", bad)
		}
	}
	// A refused CIDR leaves the rules as they were.
	checkMasqueradeRule(t, fake, "10.42.0.0/16")

	// A CIDR with host bits set is masked (nft would refuse it as is).
	fake = knftables.NewFake(knftables.IPv4Family, MasqueradeTable)
	if err := masquerade(ctx, fake, "10.43.7.1/16"); err != nil {
		t.Fatalf("masquerade(10.43.7.1/16): %v", err)
	}
	checkMasqueradeRule(t, fake, "10.43.0.0/16")
}

func checkMasqueradeRule(t *testing.T, fake *knftables.Fake, cidr string) {
	t.Helper()
	if fake.Table == nil {
		t.Fatalf("no table %s", MasqueradeTable)
	}
	if len(fake.Table.Chains) != 1 {
		t.Fatalf("table has %d chains, want 1:\n%s", len(fake.Table.Chains), fake.Dump())
	}
	ch := fake.Table.Chains["postrouting"]
	if ch == nil {
		t.Fatalf("no postrouting chain:\n%s", fake.Dump())
	}
	if ch.Type == nil || *ch.Type != knftables.NATType || ch.Hook == nil || *ch.Hook != knftables.PostroutingHook {
		t.Errorf("postrouting chain is not a nat chain on the postrouting hook:\n%s", fake.Dump())
	}
	if len(ch.Rules) != 1 {
		t.Fatalf("postrouting has %d rules, want 1:\n%s", len(ch.Rules), fake.Dump())
	}
	rule := ch.Rules[0].Rule
	for _, want := range []string{"ip saddr " + cidr + " ip daddr != " + cidr, "masquerade"} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule %q lacks %q", rule, want)
		}
	}
	if !strings.Contains(fake.Dump(), rule) {
		t.Errorf("Dump lacks the rule %q:\n%s", rule, fake.Dump())
	}
}
