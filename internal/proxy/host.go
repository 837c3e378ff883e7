package proxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	sysctlIPForward     = "/proc/sys/net/ipv4/ip_forward"
	sysctlRouteLocalnet = "/proc/sys/net/ipv4/conf/all/route_localnet"
	sysctlBridgeNF      = "/proc/sys/net/bridge/bridge-nf-call-iptables"
)

// setUpHost sets the sysctls the rules rely on and reports whether bridged
// traffic passes through netfilter:
//
//   - net.ipv4.ip_forward=1: DNATed traffic is forwarded to pods;
//   - net.ipv4.conf.all.route_localnet=1 when NodePorts answer on loopback
//     (kube-proxy's iptables mode sets it for the same reason): a packet from
//     127.0.0.1 may then be routed to a pod after DNAT, and is masqueraded;
//   - net.bridge.bridge-nf-call-iptables=1 (loading br_netfilter if needed):
//     a pod's reply to another pod on the same bridge is bridged, not routed,
//     and only br_netfilter lets conntrack undo the DNAT on it. Upstream
//     expects the network plugin to have done this and warns if not.
//
// When bridge netfilter is unavailable it returns false and the caller
// masquerades all ClusterIP traffic, so that replies are routed through the
// node. Failures are logged, not fatal: the proxy still serves what works.
func (p *Proxier) setUpHost() (bridgeNetfilter bool) {
	p.ensureSysctl(sysctlIPForward, "1")
	loopback := len(p.cfg.NodeIPs) == 0
	for _, ip := range p.cfg.NodeIPs {
		if strings.HasPrefix(ip, "127.") {
			loopback = true
		}
	}
	if loopback {
		p.ensureSysctl(sysctlRouteLocalnet, "1")
	}
	if _, err := os.Stat(sysctlBridgeNF); err != nil {
		if path, err := exec.LookPath("modprobe"); err == nil {
			if out, err := exec.Command(path, "br_netfilter").CombinedOutput(); err != nil {
				p.log.Warn("modprobe br_netfilter failed", "err", err, "output", strings.TrimSpace(string(out)))
			}
		}
	}
	if _, err := os.Stat(sysctlBridgeNF); err != nil {
		p.log.Warn("bridge netfilter unavailable: masquerading all ClusterIP traffic", "sysctl", sysctlBridgeNF)
		return false
	}
	return p.ensureSysctl(sysctlBridgeNF, "1")
}

// ensureSysctl sets a /proc/sys file to value unless it has it already and
// reports whether it has it in the end.
func (p *Proxier) ensureSysctl(path, value string) bool {
	cur, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return true
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		p.log.Error("sysctl not set", "sysctl", sysctlName(path), "value", value, "err", err)
		return false
	}
	p.log.Info("sysctl set", "sysctl", sysctlName(path), "value", value)
	return true
}

// sysctlName turns /proc/sys/net/ipv4/ip_forward into net.ipv4.ip_forward.
func sysctlName(path string) string {
	rel, err := filepath.Rel("/proc/sys", path)
	if err != nil {
		return path
	}
	return strings.ReplaceAll(rel, "/", ".")
}
