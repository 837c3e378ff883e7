package cleanup

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/skiff-io/skiff/internal/agent"
	"github.com/skiff-io/skiff/internal/podnet"
	"github.com/skiff-io/skiff/internal/proxy"
)

// inFreshNetns runs f on an OS thread moved into a new, empty network
// namespace. The thread stays locked and so exits with the goroutine: no
// other goroutine ever runs in the namespace, which goes away with the
// thread. Processes f starts (ip, nft) inherit the namespace. f runs on
// another goroutine than the test's: it must not call t.Fatal or t.Skip.
func inFreshNetns(f func(ns netns.NsHandle) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		host, err := netns.GetFromPid(os.Getpid())
		if err != nil {
			errc <- fmt.Errorf("the host's network namespace: %w", err)
			return
		}
		defer host.Close()
		ns, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("creating a network namespace: %w", err)
			return
		}
		defer ns.Close()
		if ns.Equal(host) {
			errc <- errors.New("still in the host's network namespace")
			return
		}
		// What cleanup runs (ip, nft) must land here too, never on the
		// host: check that a child process sees this namespace.
		var st unix.Stat_t
		if err := unix.Fstat(int(ns), &st); err != nil {
			errc <- err
			return
		}
		out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
		if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("net:[%d]", st.Ino); err != nil || got != want {
			errc <- fmt.Errorf("a child process is in network namespace %q (%v), not the test's %s", got, err, want)
			return
		}
		errc <- f(ns)
	}()
	return <-errc
}

var errNoVXLAN = errors.New("no VXLAN support")

// TestDeleteShared builds in a fresh network namespace what a node leaves
// there (the DNS interface, the proxy's and podnet's nftables tables,
// podnet's VXLAN device and routes) next to things that are not skiff's,
// and checks that deleteShared keeps it all while another node runs,
// removes exactly skiff's otherwise, and finds nothing to do the second
// time.
func TestDeleteShared(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace, links and routes")
	}
	for _, bin := range []string{"ip", "readlink"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	_, err := exec.LookPath("nft")
	haveNFT := err == nil
	if !haveNFT {
		t.Log("nft not installed: not checking the nftables tables")
	}

	err = inFreshNetns(func(netns.NsHandle) error {
		if err := build(haveNFT); err != nil {
			return err
		}
		check := func(step string, wantLinks, wantRoutes, wantTables []string) {
			if got := links(); !cmp.Equal(got, wantLinks) {
				t.Errorf("%s: links %v, want %v", step, got, wantLinks)
			}
			if got := routes(); !cmp.Equal(got, wantRoutes) {
				t.Errorf("%s: routes %v, want %v", step, got, wantRoutes)
			}
			if haveNFT {
				if got := tables(); !cmp.Equal(got, wantTables) {
					t.Errorf("%s: nftables tables %v, want %v", step, got, wantTables)
				}
			}
		}
		// The links that are not skiff's: lo and dummy0 (with its veth
		// peer, where there are no dummies).
		var others []string
		for _, l := range links() {
			if l != agent.DNSInterface && l != podnet.Device {
				others = append(others, l)
			}
		}
		if !cmp.Equal(others, []string{"dummy0", "lo"}) && !cmp.Equal(others, []string{"dummy0", "dummy0p", "lo"}) {
			t.Errorf("links %v, want dummy0 (a dummy or a veth pair) and lo", others)
		}
		allLinks := sortedCopy(append([]string{agent.DNSInterface, podnet.Device}, others...))
		ourRoutes := []string{"10.244.2.0/24 via 10.199.88.3 proto 152", "10.244.3.0/24 via 10.244.3.0 proto 152"}
		otherRoutes := []string{"10.199.88.0/24 proto 2", "10.244.9.0/24 via 10.199.88.9 proto 4"}
		allTables := []string{"ip other", "ip " + proxy.DefaultTable, "ip " + podnet.MasqueradeTable}
		sort.Strings(allTables)
		check("built", allLinks, sortedCopy(append(ourRoutes, otherRoutes...)), allTables)

		// Another node runs on the machine: everything stays.
		var lines []string
		report := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
		if err := deleteShared([]string{"/var/lib/other"}, report); err != nil {
			t.Errorf("deleteShared with another node: %v", err)
		}
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "kept ") || !strings.Contains(lines[0], podnet.Device) ||
			!strings.Contains(lines[0], podnet.MasqueradeTable) || !strings.Contains(lines[0], "/var/lib/other") {
			t.Errorf("deleteShared with another node reported %q, want one line keeping everything", lines)
		}
		check("kept", allLinks, sortedCopy(append(ourRoutes, otherRoutes...)), allTables)

		// The last node: skiff's go, the rest stays.
		lines = nil
		if err := deleteShared(nil, report); err != nil {
			t.Errorf("deleteShared: %v", err)
		}
		for _, l := range lines {
			t.Logf("first run: %s", l)
		}
		want := []string{
			"deleted interface " + agent.DNSInterface,
			"deleted pod network route 10.244.2.0/24 via 10.199.88.3 dev dummy0",
			"deleted pod network route 10.244.3.0/24 via 10.244.3.0 dev " + podnet.Device,
			"deleted VXLAN device " + podnet.Device,
		}
		if haveNFT {
			want = append(want, "deleted nftables table ip "+proxy.DefaultTable, "deleted nftables table ip "+podnet.MasqueradeTable)
		}
		if diff := cmp.Diff(sortedCopy(want), sortedCopy(lines)); diff != "" {
			t.Errorf("first run reported (-want +got):\n%s", diff)
		}
		check("deleted", others, otherRoutes, []string{"ip other"})

		// Safe to run twice.
		lines = nil
		if err := deleteShared(nil, report); err != nil {
			t.Errorf("second deleteShared: %v", err)
		}
		if len(lines) > 0 {
			t.Errorf("second run reported %q, want nothing", lines)
		}
		check("second run", others, otherRoutes, []string{"ip other"})
		return nil
	})
	if errors.Is(err, errNoVXLAN) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// build makes, in the current network namespace, what a VXLAN node of a
// three-node cluster leaves behind (a host-gw route too, as after a
// backend switch), and things that are not skiff's: a dummy link with an
// address and a static route, and an nftables table.
func build(withNFT bool) error {
	if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo"}}); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	// Dummy links where the kernel has them; else what skiff's DNS falls
	// back to (a bridge) and, for the node's link, which needs a carrier
	// for routes through it, a veth pair.
	dummy, err := addLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}}, "10.199.88.2/24")
	if errors.Is(err, unix.EOPNOTSUPP) {
		dummy, err = addLink(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}, PeerName: "dummy0p"}, "10.199.88.2/24")
		if err == nil {
			err = netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "dummy0p"}})
		}
	}
	if err != nil {
		return err
	}
	_, err = addLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: agent.DNSInterface}}, "169.254.20.10/32")
	if errors.Is(err, unix.EOPNOTSUPP) {
		_, err = addLink(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: agent.DNSInterface}}, "169.254.20.10/32")
	}
	if err != nil {
		return err
	}
	vx, err := addLink(&netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: podnet.Device},
		VxlanId:      podnet.VNI,
		VtepDevIndex: dummy.Attrs().Index,
		SrcAddr:      net.ParseIP("10.199.88.2"),
		Port:         podnet.Port,
	}, "10.244.1.0/32")
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %v", errNoVXLAN, err)
	}
	if err != nil {
		return err
	}
	for _, r := range []*netlink.Route{
		{Dst: cidr("10.244.2.0/24"), Gw: net.ParseIP("10.199.88.3"), LinkIndex: dummy.Attrs().Index, Protocol: podnet.RouteProtocol},
		{Dst: cidr("10.244.3.0/24"), Gw: net.ParseIP("10.244.3.0"), LinkIndex: vx.Attrs().Index, Flags: int(netlink.FLAG_ONLINK), Protocol: podnet.RouteProtocol},
		{Dst: cidr("10.244.9.0/24"), Gw: net.ParseIP("10.199.88.9"), LinkIndex: dummy.Attrs().Index, Protocol: unix.RTPROT_STATIC},
	} {
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("adding route %s: %w", r.Dst, err)
		}
	}
	if withNFT {
		for _, name := range []string{"other", proxy.DefaultTable, podnet.MasqueradeTable} {
			if out, err := exec.Command("nft", "add", "table", "ip", name).CombinedOutput(); err != nil {
				return fmt.Errorf("nft add table ip %s: %w: %s", name, err, out)
			}
		}
	}
	return nil
}

// addLink adds link holding addr, up.
func addLink(link netlink.Link, addr string) (netlink.Link, error) {
	name := link.Attrs().Name
	if err := netlink.LinkAdd(link); err != nil {
		return nil, fmt.Errorf("adding link %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	a, err := netlink.ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", addr, name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("%s up: %w", name, err)
	}
	return l, nil
}

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// links lists the current namespace's links by name, sorted.
func links() []string {
	ls, err := netlink.LinkList()
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	sort.Strings(out)
	return out
}

// routes lists the current namespace's IPv4 main-table routes as
// "dst [via gw] proto n", sorted.
func routes() []string {
	rs, err := netlink.RouteList(nil, unix.AF_INET)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, r := range rs {
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		out = append(out, fmt.Sprintf("%s proto %d", s, r.Protocol))
	}
	sort.Strings(out)
	return out
}

// tables lists the current namespace's nftables tables as "family name",
// sorted.
func tables() []string {
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("error: %v: %s", err, out)}
	}
	var ts []string
	for _, l := range strings.Split(string(out), "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(l), "table "); ok {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	return ts
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
