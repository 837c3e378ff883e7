package containerd

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// conflist is the CNI network configuration list skiff gives containerd:
// a Linux bridge with host-local IPAM over the node's pod CIDR, then
// portmap for hostPort. containerd adds loopback by itself.
type conflist struct {
	CNIVersion string           `json:"cniVersion"`
	Name       string           `json:"name"`
	Plugins    []map[string]any `json:"plugins"`
}

// renderConflist returns the conflist for a bridge named bridge over the
// pod subnet cidr, with host-local keeping its leases under ipamDir and
// links of mtu bytes (0: the plugin's default). The bridge does not
// masquerade: it would hide pod addresses from pods on other nodes; the
// pod network (internal/podnet) masquerades only what leaves the cluster
// network.
func renderConflist(bridge string, cidr netip.Prefix, ipamDir string, mtu int) ([]byte, error) {
	route := "0.0.0.0/0"
	if cidr.Addr().Is6() {
		route = "::/0"
	}
	br := map[string]any{
		"type":        "bridge",
		"bridge":      bridge,
		"isGateway":   true,
		"ipMasq":      false,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": ipamDir,
			"ranges":  [][]map[string]string{{{"subnet": cidr.String()}}},
			"routes":  []map[string]string{{"dst": route}},
		},
	}
	if mtu > 0 {
		br["mtu"] = mtu
	}
	c := conflist{
		CNIVersion: "1.0.0",
		Name:       "skiff",
		Plugins: []map[string]any{
			br,
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("CNI conflist: %w", err)
	}
	return append(b, '\n'), nil
}

// SetPodCIDR writes (or rewrites) the CNI conflist in <Dir>/net.d so that
// pods get addresses from cidr, the node's pod CIDR. containerd's CRI
// plugin watches that directory, loads the file and then reports
// NetworkReady=true in its Status; pods started before that fail.
// (containerd 1.6 accepts UpdateRuntimeConfig's pod CIDR but ignores it
// with a static conflist, so the CIDR goes into the file.)
//
// The file is replaced atomically (written beside it under a name CNI does
// not load, then renamed), so containerd never reads half a file. Pods
// already running keep their addresses; a changed CIDR applies to new pods.
func (p *Process) SetPodCIDR(cidr string) error {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	if prefix.Masked() != prefix {
		return fmt.Errorf("pod CIDR %s: host bits set (want %s)", cidr, prefix.Masked())
	}
	data, err := renderConflist(p.cfg.Bridge, prefix, filepath.Join(p.cfg.Dir, cniIPAMDir), p.cfg.MTU)
	if err != nil {
		return err
	}
	dir := filepath.Join(p.cfg.Dir, cniConfDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	// libcni loads only *.conf, *.conflist and *.json: a ".tmp" name is
	// invisible to containerd's watcher until the rename.
	tmp := filepath.Join(dir, "."+conflistFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, conflistFile)); err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	p.log.Info("wrote CNI config", "podCIDR", prefix.String(), "bridge", p.cfg.Bridge)
	return nil
}
