package framework

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Network is a bridge on the host with one network namespace per node
// attached to it: several real nodes on one machine, each with its own
// addresses, routes, nftables and pod bridge, as if on machines of their
// own sharing a link. The host holds the first address of the subnet, so
// tests (kubectl) reach every node directly.
type Network struct {
	// Bridge is the host bridge.
	Bridge string
	// Gateway is the host's address on it.
	Gateway netip.Addr
	prefix  netip.Prefix
	next    netip.Addr
}

// NetNode is one node's network namespace on a Network.
type NetNode struct {
	// Name is the node's name and its namespace's (/run/netns/<Name>).
	Name string
	// IP is the node's address on the Network.
	IP string
}

// CanRunNetworkNamespaces says why this machine cannot build a Network,
// or "" when it can.
func CanRunNetworkNamespaces() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	for _, bin := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (apt-get install iproute2 util-linux)"
		}
	}
	return ""
}

// NewNetwork creates a host bridge named bridge (at most 15 characters)
// holding the first address of subnet (an IPv4 /24 or larger that nothing
// on this machine uses, e.g. 10.199.70.0/24). t.Cleanup deletes the
// bridge and every namespace added to it.
func NewNetwork(t testing.TB, bridge, subnet string) *Network {
	t.Helper()
	if why := CanRunNetworkNamespaces(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	prefix, err := netip.ParsePrefix(subnet)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() > 24 {
		t.Fatalf("network subnet %q: want an IPv4 prefix of /24 or larger", subnet)
	}
	prefix = prefix.Masked()
	gw := prefix.Addr().Next()
	n := &Network{Bridge: bridge, Gateway: gw, prefix: prefix, next: gw.Next()}
	_ = exec.Command("ip", "link", "del", bridge).Run() // a crashed run's
	mustIP(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	mustIP(t, "addr", "add", fmt.Sprintf("%s/%d", gw, prefix.Bits()), "dev", bridge)
	mustIP(t, "link", "set", bridge, "up")
	return n
}

// AddNode creates the namespace name (which must not exist on the host),
// linked to the bridge by a veth pair, with the next free address on eth0
// and a default route through the host.
func (n *Network) AddNode(t testing.TB, name string) *NetNode {
	t.Helper()
	ip := n.next
	if !n.prefix.Contains(ip) {
		t.Fatalf("network %s is full", n.prefix)
	}
	n.next = ip.Next()
	_ = exec.Command("ip", "netns", "del", name).Run() // a crashed run's
	mustIP(t, "netns", "add", name)
	t.Cleanup(func() {
		// Pods' sandboxes may still hold the namespace's links; deleting
		// the name drops the last reference once they are gone.
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	// A random name: a deleted namespace's links go away asynchronously,
	// so a name used a moment ago may still exist.
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	host := fmt.Sprintf("skv%x", rnd)
	mustIP(t, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", name)
	mustIP(t, "link", "set", host, "master", n.Bridge, "up")
	mustIP(t, "-n", name, "addr", "add", fmt.Sprintf("%s/%d", ip, n.prefix.Bits()), "dev", "eth0")
	mustIP(t, "-n", name, "link", "set", "eth0", "up")
	mustIP(t, "-n", name, "link", "set", "lo", "up")
	mustIP(t, "-n", name, "route", "add", "default", "via", n.Gateway.String())
	return &NetNode{Name: name, IP: ip.String()}
}

// Command is bin with args run in the node's network namespace (and the
// host's other namespaces: its files, mounts and processes).
func (nn *NetNode) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + nn.Name, "--", bin}, args...)...)
}

// HTTPGet fetches url from inside the node's network namespace, as a
// process on that node would, within timeout.
func (nn *NetNode) HTTPGet(url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := nn.DialContext(ctx, "tcp", hostPort(url))
	if err != nil {
		return "", err
	}
	// One connection, no pool.
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
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

// DialContext connects to address from inside the node's network
// namespace, as a process on that node would: a client-go rest.Config's
// Dial for clients that must see what the node sees (its ClusterIPs).
func (nn *NetNode) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The socket is made in the namespace of the thread that makes
		// it: this goroutine's thread enters the namespace and, never
		// unlocked, dies with the goroutine.
		runtime.LockOSThread()
		ns, err := netns.GetFromName(nn.Name)
		if err != nil {
			done <- result{err: fmt.Errorf("namespace %s: %w", nn.Name, err)}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- result{err: fmt.Errorf("entering namespace %s: %w", nn.Name, err)}
			return
		}
		// Dial on this thread: no resolver threads (address is an IP).
		conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// hostPort is the host:port of an http:// URL.
func hostPort(url string) string {
	hp := strings.TrimPrefix(url, "http://")
	if i := strings.IndexByte(hp, '/'); i >= 0 {
		hp = hp[:i]
	}
	if !strings.Contains(hp, ":") {
		hp += ":80"
	}
	return hp
}

func mustIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
