package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"

	"github.com/skiff-io/skiff/internal/dns"
	"github.com/skiff-io/skiff/internal/proxy"
)

// dnsInterface is the dummy interface that holds the cluster DNS address
// on every node, so that pods reach the node-local DNS server on the
// kube-dns ClusterIP through their gateway (as upstream's NodeLocal
// DNSCache does).
const dnsInterface = "skiff-dns"

// DNSInterface is dnsInterface, for `skiff killall`, which deletes it.
const DNSInterface = dnsInterface

// clusterDNS is the kube-dns Service's ClusterIP, which bootstrap creates
// from the first start; "" when there is none.
func clusterDNS(ctx context.Context, client kubernetes.Interface) (string, error) {
	svc, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("kube-dns service: %w", err)
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip == nil {
		return "", nil
	}
	return svc.Spec.ClusterIP, nil
}

// newDNS binds the node-local cluster DNS on ip:53. It returns nil, nil when
// another node on this machine already serves that address.
func newDNS(cfg Config, client kubernetes.Interface, ip string, metrics prometheus.Registerer, log *slog.Logger) (*dns.Server, error) {
	if err := dns.EnsureLocalAddress(dnsInterface, ip+"/32"); err != nil {
		return nil, fmt.Errorf("cluster DNS address: %w", err)
	}
	srv, err := dns.New(dns.Config{
		Addrs:      []string{net.JoinHostPort(ip, "53")},
		Domain:     cfg.ClusterDomain,
		ResolvConf: cfg.ResolvConf,
		Client:     client,
		Registerer: metrics,
		Log:        log,
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		log.Warn("cluster DNS address in use: another node on this machine serves it", "addr", ip)
		return nil, nil
	}
	return srv, err
}

// podEndpoints reports whether an EndpointSlice of pod's namespace lists
// the pod, and whether one lists it as ready.
func podEndpoints(slices discoverylisters.EndpointSliceLister, pod *corev1.Pod) (listed, ready bool) {
	all, err := slices.EndpointSlices(pod.Namespace).List(labels.Everything())
	if err != nil {
		return false, false
	}
	for _, s := range all {
		for _, ep := range s.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.UID != pod.UID {
				continue
			}
			listed = true
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ready = true
			}
		}
	}
	return listed, ready
}

// newProxy builds the node's service proxy. NodePorts answer on every
// address of the node, as upstream's default (an empty
// --nodeport-addresses).
func newProxy(cfg Config, client kubernetes.Interface, metrics prometheus.Registerer, log *slog.Logger) (*proxy.Proxier, error) {
	return proxy.New(proxy.Config{
		NodeName:    cfg.NodeName,
		ClusterCIDR: cfg.ClusterCIDR,
		Client:      client,
		Registerer:  metrics,
		Log:         log,
	})
}
