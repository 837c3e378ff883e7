// Package podnet makes every node's pod network reachable from every other
// node: each node's CNI bridge holds its own podCIDR (node IPAM assigns
// it), and podnet routes the other nodes' podCIDRs, over a VXLAN overlay
// (the default: it crosses routed networks) or by direct routes to the
// other nodes' addresses (host-gw: the nodes must share a link). It also
// masquerades what pods send out of the cluster network, so that traffic
// between pods keeps its pod addresses (the Kubernetes network model) while
// the rest leaves with the node's.
//
// The VXLAN backend is flannel's layout without its annotations: one
// device, skiff.vxlan (VNI 1, UDP 8472), holding the first address of this
// node's podCIDR; for every other node a route to its podCIDR through the
// first address of that podCIDR, a permanent ARP entry naming that node's
// VTEP MAC and a forwarding entry sending that MAC to the node's address.
// A node's VTEP MAC is derived from its address (vtepMAC), so a node learns
// nothing from another but what its Node object already says: InternalIP
// and podCIDR.
//
// Routes podnet adds carry their own protocol number (RouteProtocol), so
// that a sync removes exactly the stale ones it added. What podnet sets up
// stays when the agent stops (pods keep running and keep talking); `skiff
// killall` removes it.
package podnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Backend is how other nodes' pod networks are reached.
type Backend string

const (
	// VXLAN encapsulates pod traffic in UDP between node addresses.
	VXLAN Backend = "vxlan"
	// HostGW routes each podCIDR through its node's address, which must be
	// on a link this node shares.
	HostGW Backend = "host-gw"
	// None sets up nothing: something else routes pod traffic, or every
	// node shares this network namespace.
	None Backend = "none"
)

// ParseBackend checks a --network-backend value.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case VXLAN, HostGW, None:
		return b, nil
	}
	return "", fmt.Errorf("unknown network backend %q (want vxlan, host-gw or none)", s)
}

const (
	// Device is the VXLAN device.
	Device = "skiff.vxlan"
	// VNI and Port are the VXLAN network identifier and UDP port
	// (flannel's, and Linux's IANA-unassigned default for VXLAN).
	VNI  = 1
	Port = 8472
	// Overhead is what VXLAN adds to each packet (outer IPv4, UDP, VXLAN
	// and inner Ethernet headers): the pod MTU is the link's less this.
	Overhead = 50
	// RouteProtocol marks the routes podnet adds (a number the kernel does
	// not interpret and routing daemons do not use).
	RouteProtocol = netlink.RouteProtocol(152)
	// MasqueradeTable is the nftables table masquerading pod traffic that
	// leaves the cluster network.
	MasqueradeTable = "skiff-podnet"
)

// Config is one node's pod network.
type Config struct {
	NodeName string
	// NodeIP is this node's address: VXLAN's local endpoint, and how the
	// other nodes know it (its InternalIP).
	NodeIP  string
	Backend Backend
	// Nodes lists the cluster's nodes; Informer tells about changes.
	Nodes    corelisters.NodeLister
	Informer cache.SharedIndexInformer
	// Netlink is the network namespace to work in; nil: this process's.
	Netlink *netlink.Handle
	// ResyncPeriod is how often everything is checked again, to repair
	// what someone else changed (default 30s).
	ResyncPeriod time.Duration
	Log          *slog.Logger
}

// Network keeps this node's routes to the other nodes' pods.
type Network struct {
	cfg     Config
	nl      *netlink.Handle
	log     *slog.Logger
	kick    chan struct{}
	lastErr string
}

// New checks cfg; the network is set up by Start.
func New(cfg Config) (*Network, error) {
	if _, err := ParseBackend(string(cfg.Backend)); err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(cfg.NodeIP); err != nil || !ip.Is4() {
		return nil, fmt.Errorf("pod network: node IP %q is not an IPv4 address", cfg.NodeIP)
	}
	if cfg.Nodes == nil || cfg.NodeName == "" {
		return nil, errors.New("pod network: Nodes and NodeName are required")
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	nl := cfg.Netlink
	if nl == nil {
		nl = &netlink.Handle{}
	}
	return &Network{cfg: cfg, nl: nl, log: cfg.Log.With("component", "podnet"), kick: make(chan struct{}, 1)}, nil
}

// LinkMTU is the MTU pods should use on a node whose address is nodeIP
// with backend b: the MTU of the link holding that address, less the VXLAN
// overhead for VXLAN. It is 0 when the address is on no link (the CNI
// default then applies).
func LinkMTU(nl *netlink.Handle, nodeIP string, b Backend) int {
	if nl == nil {
		nl = &netlink.Handle{}
	}
	link, err := linkWithAddr(nl, net.ParseIP(nodeIP))
	if err != nil || link == nil {
		return 0
	}
	mtu := link.Attrs().MTU
	if b == VXLAN {
		mtu -= Overhead
	}
	if mtu > 65535-Overhead {
		// Loopback's: not a real path MTU.
		return 0
	}
	return mtu
}

// Start syncs on every Node change and every ResyncPeriod until ctx ends.
func (n *Network) Start(ctx context.Context) error {
	if n.cfg.Backend == None {
		<-ctx.Done()
		return nil
	}
	if n.cfg.Informer != nil {
		reg, err := n.cfg.Informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { n.Kick() },
			// A node's heartbeats update it all the time; only its
			// podCIDR and address matter here (a sync touches every
			// peer's route: per heartbeat it would not scale).
			UpdateFunc: func(old, cur any) {
				o, ok1 := old.(*corev1.Node)
				c, ok2 := cur.(*corev1.Node)
				if !ok1 || !ok2 || routeChanged(o, c) {
					n.Kick()
				}
			},
			DeleteFunc: func(any) { n.Kick() },
		})
		if err != nil {
			return err
		}
		defer func() { _ = n.cfg.Informer.RemoveEventHandler(reg) }()
	}
	tick := time.NewTicker(n.cfg.ResyncPeriod)
	defer tick.Stop()
	n.Kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-n.kick:
		}
		nodes, err := n.cfg.Nodes.List(labels.Everything())
		if err == nil {
			err = n.Sync(nodes)
		}
		n.report(err)
		// Coalesce bursts of node updates (every node's heartbeat); after
		// a failure (a route whose link is not up yet, an interrupted
		// dump) try again in a second rather than at the next resync.
		pause := 100 * time.Millisecond
		if err != nil {
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		if err != nil {
			n.Kick()
		}
	}
}

// Kick asks for a sync soon.
func (n *Network) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// report logs a sync error once until it changes or clears.
func (n *Network) report(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == n.lastErr {
		return
	}
	n.lastErr = msg
	if err != nil {
		n.log.Error("pod network sync failed", "err", err)
	} else {
		n.log.Info("pod network in sync", "backend", n.cfg.Backend)
	}
}

// peer is another node whose pods are reached through podnet.
type peer struct {
	name    string
	ip      net.IP
	podCIDR *net.IPNet
}

// Sync makes the routes (and, for VXLAN, the device, ARP and forwarding
// entries) match nodes: every node but this one that has a podCIDR and an
// InternalIP, unless that address is this network namespace's own (a node
// sharing it has its bridge here already).
func (n *Network) Sync(nodes []*corev1.Node) error {
	if n.cfg.Backend == None {
		return nil
	}
	local, err := n.localAddrs()
	if err != nil {
		return err
	}
	var self *corev1.Node
	var peers []peer
	for _, node := range nodes {
		if node.Name == n.cfg.NodeName {
			self = node
			continue
		}
		p, ok := peerOf(node)
		if !ok || local[p.ip.String()] {
			continue
		}
		peers = append(peers, p)
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].name < peers[j].name })
	var errs []error
	switch n.cfg.Backend {
	case VXLAN:
		errs = n.syncVXLAN(self, peers)
	case HostGW:
		// A switch from VXLAN leaves no device behind.
		if err := n.deleteDevice(); err != nil {
			errs = append(errs, err)
		}
		want := map[string]bool{}
		for _, p := range peers {
			want[p.podCIDR.String()] = true
			r := &netlink.Route{Dst: p.podCIDR, Gw: p.ip, Protocol: RouteProtocol}
			if err := n.nl.RouteReplace(r); err != nil {
				errs = append(errs, fmt.Errorf("route to node %s's pods %s via %s (host-gw needs the nodes on one link): %w", p.name, p.podCIDR, p.ip, err))
			}
		}
		errs = append(errs, n.pruneRoutes(want))
	}
	return errors.Join(errs...)
}

// routeChanged says whether a node's update changes what reaching its
// pods takes: its podCIDR or its InternalIP.
func routeChanged(old, cur *corev1.Node) bool {
	po, okO := peerOf(old)
	pc, okC := peerOf(cur)
	return okO != okC || (okC && (!po.ip.Equal(pc.ip) || po.podCIDR.String() != pc.podCIDR.String()))
}

// peerOf is node's podCIDR and InternalIP, when it has both (IPv4).
func peerOf(node *corev1.Node) (peer, bool) {
	_, cidr, err := net.ParseCIDR(node.Spec.PodCIDR)
	if err != nil || cidr.IP.To4() == nil {
		return peer{}, false
	}
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip := net.ParseIP(a.Address).To4(); ip != nil {
			return peer{name: node.Name, ip: ip, podCIDR: cidr}, true
		}
	}
	return peer{}, false
}

// syncVXLAN keeps the device while there is a peer to reach (a one-node
// cluster gets none) and one route, ARP and forwarding entry per peer.
func (n *Network) syncVXLAN(self *corev1.Node, peers []peer) []error {
	if len(peers) == 0 {
		return []error{n.pruneRoutes(nil), n.deleteDevice()}
	}
	if self == nil || self.Spec.PodCIDR == "" {
		return []error{fmt.Errorf("node %s has no podCIDR yet", n.cfg.NodeName)}
	}
	_, own, err := net.ParseCIDR(self.Spec.PodCIDR)
	if err != nil {
		return []error{fmt.Errorf("node %s's podCIDR: %w", n.cfg.NodeName, err)}
	}
	dev, err := n.ensureDevice(own)
	if err != nil {
		return []error{err}
	}
	idx := dev.Attrs().Index
	var errs []error
	want := map[string]bool{}
	wantGW := map[string]bool{}
	wantMAC := map[string]bool{}
	for _, p := range peers {
		gw := p.podCIDR.IP.To4()
		mac := vtepMAC(p.ip)
		want[p.podCIDR.String()] = true
		wantGW[gw.String()] = true
		wantMAC[mac.String()] = true
		arp := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST, IP: gw, HardwareAddr: mac}
		if err := n.nl.NeighSet(arp); err != nil {
			errs = append(errs, fmt.Errorf("ARP entry for node %s (%s is at %s): %w", p.name, gw, mac, err))
			continue
		}
		fdb := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, IP: p.ip, HardwareAddr: mac}
		if err := n.nl.NeighSet(fdb); err != nil {
			errs = append(errs, fmt.Errorf("forwarding entry for node %s (%s to %s): %w", p.name, mac, p.ip, err))
			continue
		}
		r := &netlink.Route{Dst: p.podCIDR, Gw: gw, LinkIndex: idx, Flags: int(netlink.FLAG_ONLINK), Protocol: RouteProtocol}
		if err := n.nl.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route to node %s's pods %s: %w", p.name, p.podCIDR, err))
		}
	}
	errs = append(errs, n.pruneRoutes(want), n.pruneNeighbors(idx, wantGW, wantMAC))
	return errs
}

// ensureDevice creates or repairs the VXLAN device: VNI, port and local
// address as configured, up, holding own's first address.
func (n *Network) ensureDevice(own *net.IPNet) (netlink.Link, error) {
	nodeIP := net.ParseIP(n.cfg.NodeIP).To4()
	parent, err := linkWithAddr(n.nl, nodeIP)
	if err != nil {
		return nil, err
	}
	if parent == nil {
		return nil, fmt.Errorf("VXLAN: node IP %s is on no link of this host", nodeIP)
	}
	mtu := parent.Attrs().MTU - Overhead
	if mtu > 65535-Overhead {
		mtu = 1500 - Overhead
	}
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: Device, MTU: mtu, HardwareAddr: vtepMAC(nodeIP)},
		VxlanId:      VNI,
		VtepDevIndex: parent.Attrs().Index,
		SrcAddr:      nodeIP,
		Port:         Port,
		Learning:     false,
	}
	link, err := n.nl.LinkByName(Device)
	if err == nil {
		vx, ok := link.(*netlink.Vxlan)
		if !ok || vx.VxlanId != VNI || vx.Port != Port || !vx.SrcAddr.Equal(nodeIP) || vx.VtepDevIndex != want.VtepDevIndex ||
			vx.HardwareAddr.String() != want.HardwareAddr.String() || vx.MTU != mtu {
			n.log.Info("recreating the VXLAN device", "device", Device, "nodeIP", nodeIP)
			if err := n.nl.LinkDel(link); err != nil {
				return nil, fmt.Errorf("VXLAN device %s: %w", Device, err)
			}
			link = nil
		}
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("VXLAN device %s: %w", Device, err)
	} else {
		link = nil
	}
	if link == nil {
		if err := n.nl.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("creating VXLAN device %s: %w", Device, err)
		}
		if link, err = n.nl.LinkByName(Device); err != nil {
			return nil, fmt.Errorf("VXLAN device %s: %w", Device, err)
		}
		n.log.Info("created the VXLAN device", "device", Device, "nodeIP", nodeIP, "mtu", mtu)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: own.IP.To4(), Mask: net.CIDRMask(32, 32)}}
	addrs, err := n.nl.AddrList(link, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", Device, err)
	}
	for _, a := range addrs {
		if !a.IP.Equal(addr.IP) {
			if err := n.nl.AddrDel(link, &a); err != nil {
				return nil, fmt.Errorf("removing %s from %s: %w", a.IPNet, Device, err)
			}
		}
	}
	if err := n.nl.AddrReplace(link, addr); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", addr.IPNet, Device, err)
	}
	if err := n.nl.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("setting %s up: %w", Device, err)
	}
	return link, nil
}

// deleteDevice removes the VXLAN device (and with it its routes and
// entries), if there is one.
func (n *Network) deleteDevice() error {
	link, err := n.nl.LinkByName(Device)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("VXLAN device %s: %w", Device, err)
	}
	if err := n.nl.LinkDel(link); err != nil {
		return fmt.Errorf("deleting VXLAN device %s: %w", Device, err)
	}
	n.log.Info("deleted the VXLAN device: no other node to reach", "device", Device)
	return nil
}

// pruneRoutes deletes the routes podnet added whose destination is not in
// want.
func (n *Network) pruneRoutes(want map[string]bool) error {
	routes, err := n.nl.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("listing pod network routes: %w", err)
	}
	var errs []error
	for _, r := range routes {
		if r.Dst != nil && want[r.Dst.String()] {
			continue
		}
		if err := n.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("deleting stale route %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// pruneNeighbors deletes the device's permanent ARP and forwarding entries
// of nodes that are gone.
func (n *Network) pruneNeighbors(idx int, wantGW, wantMAC map[string]bool) error {
	var errs []error
	arps, err := n.nl.NeighList(idx, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("listing %s's ARP entries: %w", Device, err)
	}
	for _, a := range arps {
		if a.State&netlink.NUD_PERMANENT == 0 || wantGW[a.IP.String()] {
			continue
		}
		if err := n.nl.NeighDel(&a); err != nil {
			errs = append(errs, fmt.Errorf("deleting stale ARP entry %s: %w", a.IP, err))
		}
	}
	fdbs, err := n.nl.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing %s's forwarding entries: %w", Device, err))...)
	}
	for _, f := range fdbs {
		if f.IP == nil || wantMAC[f.HardwareAddr.String()] {
			continue
		}
		if err := n.nl.NeighDel(&f); err != nil {
			errs = append(errs, fmt.Errorf("deleting stale forwarding entry %s: %w", f.HardwareAddr, err))
		}
	}
	return errors.Join(errs...)
}

// localAddrs is the set of IPv4 addresses of this network namespace.
func (n *Network) localAddrs() (map[string]bool, error) {
	addrs, err := n.nl.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("listing local addresses: %w", err)
	}
	out := map[string]bool{}
	for _, a := range addrs {
		out[a.IP.String()] = true
	}
	return out, nil
}

// linkWithAddr is the link holding ip, or nil.
func linkWithAddr(nl *netlink.Handle, ip net.IP) (netlink.Link, error) {
	addrs, err := nl.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("listing local addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			link, err := nl.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("link of %s: %w", ip, err)
			}
			return link, nil
		}
	}
	return nil, nil
}

// vtepMAC is the VXLAN device MAC of the node at ip: locally administered,
// unicast, the address's four bytes after a fixed prefix. Deriving it
// spares publishing it: a node's address is all another needs.
func vtepMAC(ip net.IP) net.HardwareAddr {
	v4 := ip.To4()
	return net.HardwareAddr{0x0a, 0x73, v4[0], v4[1], v4[2], v4[3]}
}

// isNotFound says whether err is LinkByName's "no such link".
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
