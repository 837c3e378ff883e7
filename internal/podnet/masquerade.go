package podnet

import (
	"context"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// Masquerade makes pod traffic leaving the cluster network (clusterCIDR)
// leave with the node's address, and traffic between pods keep its own:
// the CNI bridge's ipMasq would masquerade everything outside this node's
// podCIDR, pods on other nodes included. It replaces the table's content
// in one transaction, so calling it again is harmless.
func Masquerade(ctx context.Context, clusterCIDR string) error {
	return masquerade(ctx, nil, clusterCIDR)
}

func masquerade(ctx context.Context, nft knftables.Interface, clusterCIDR string) error {
	cidr, err := netip.ParsePrefix(clusterCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return fmt.Errorf("pod network: cluster CIDR %q is not an IPv4 prefix", clusterCIDR)
	}
	if nft == nil {
		if nft, err = knftables.New(knftables.IPv4Family, MasqueradeTable); err != nil {
			return fmt.Errorf("pod network: nftables: %w", err)
		}
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("skiff: masquerade pod traffic leaving the cluster network")})
	chain := &knftables.Chain{Name: "postrouting", Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority)}
	tx.Add(chain)
	tx.Flush(chain)
	c := cidr.Masked().String()
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: knftables.Concat(
		"ip saddr", c, "ip daddr !=", c, "ip daddr != 224.0.0.0/4", "masquerade")})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("pod network: masquerade rules: %w", err)
	}
	return nil
}
