package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/registry/networking"
)

// ensureDefaultServiceCIDR creates the ServiceCIDR "kubernetes" holding
// the cluster's service ranges, Ready, as upstream's API server does at
// start. One that exists with other ranges (the server restarted with
// another --service-cidr) is left as it is, with a warning, as upstream
// leaves it. ClusterIPs are allocated from --service-cidr, not from this
// object (docs/compatibility.md).
func ensureDefaultServiceCIDR(ctx context.Context, cs kubernetes.Interface, cidrs []netip.Prefix) error {
	want := networking.DefaultServiceCIDR(cidrs)
	client := cs.NetworkingV1().ServiceCIDRs()
	have, err := client.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Status is reset on create: Ready is written next.
		have, err = client.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			have, err = client.Get(ctx, want.Name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("servicecidr %s: %w", want.Name, err)
	}
	if !slices.Equal(have.Spec.CIDRs, want.Spec.CIDRs) {
		slog.Default().Warn("the default ServiceCIDR does not match --service-cidr; left as it is", "servicecidr", have.Spec.CIDRs, "flag", want.Spec.CIDRs)
		return nil
	}
	if have.DeletionTimestamp != nil || !networking.SetServiceCIDRReady(have) {
		return nil
	}
	if _, err := client.UpdateStatus(ctx, have, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("servicecidr %s status: %w", want.Name, err)
	}
	return nil
}
