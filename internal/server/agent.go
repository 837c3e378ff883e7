package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/agent"
	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/authorizer/rbac"
	"github.com/skiff-io/skiff/internal/pki"
	"github.com/skiff-io/skiff/internal/podnet"
)

// dnsUser is the cluster DNS's identity: the coredns service account in
// kube-system, as kubeadm and k3s run CoreDNS, which the bootstrap policy
// binds to system:coredns. Its client certificate carries the account's
// name and groups.
const dnsUser = "system:serviceaccount:kube-system:coredns"

// startAgent runs the node agent beside the control plane once bootstrap
// has finished (the node Lease namespace exists then). It talks to the API
// over HTTPS as user system:node:<name>, like an agent on another machine.
func startAgent(ctx context.Context, wg *sync.WaitGroup, cfg Config, bundle *pki.Bundle, certs *certRenewer, url, host string, booted <-chan struct{}) error {
	if cfg.DisableAgent {
		return nil
	}
	name := cfg.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		name = strings.ToLower(h)
	}
	ip := cfg.NodeIP
	if ip == "" {
		ip = host
	}
	dir := filepath.Join(cfg.DataDir, "tls", "kubelet")
	certFile, _, err := bundle.IssueClient(pki.NodeUserPrefix+name, []string{pki.NodesOrganization}, dir, "client")
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	srvCertFile, _, err := bundle.IssueServing(name, []string{name, ip}, dir, "serving")
	if err != nil {
		return fmt.Errorf("kubelet serving certificate: %w", err)
	}
	// The proxy and the DNS act as themselves, each with a client
	// certificate of its own.
	proxyCert, _, err := bundle.IssueClient(rbac.UserKubeProxy, nil, dir, "proxy")
	if err != nil {
		return fmt.Errorf("proxy client certificate: %w", err)
	}
	dnsCert, _, err := bundle.IssueClient(dnsUser, []string{rbac.GroupServiceAccounts, rbac.GroupServiceAccounts + ":kube-system"}, dir, "dns")
	if err != nil {
		return fmt.Errorf("DNS client certificate: %w", err)
	}
	// Each client presents its certificate and verifies the server's as
	// of each handshake, so that renewals and CA rotations (certs.go)
	// reach all three.
	clients := map[string]*rest.Config{}
	for agent, certFile := range map[string]string{"skiff-kubelet": certFile, "skiff-proxy": proxyCert, "skiff-dns": dnsCert} {
		if clients[agent], err = certs.restConfig(url, bundle.LeafName(certFile), agent); err != nil {
			return fmt.Errorf("%s client: %w", agent, err)
		}
	}
	serving, err := certs.liveCert(bundle.LeafName(srvCertFile))
	if err != nil {
		return fmt.Errorf("kubelet serving certificate: %w", err)
	}
	acfg := agent.Config{
		DataDir:         cfg.DataDir,
		NodeName:        name,
		NodeIP:          ip,
		KubeletPort:     cfg.KubeletPort,
		RuntimeEndpoint: cfg.ContainerRuntimeEndpoint,
		ClusterCIDR:     cfg.ClusterCIDR,
		NetworkBackend:  podnet.Backend(cfg.NetworkBackend),
		CgroupRoot:      cfg.CgroupRoot,
		ResolvConf:      cfg.ResolvConf,
		API:             clients["skiff-kubelet"],
		ProxyAPI:        clients["skiff-proxy"],
		DNSAPI:          clients["skiff-dns"],
		GetServingCert:  serving.GetCertificate,
		GetClientCAs:    bundle.TrustPool,
		Version:         apiserver.Version.GitVersion,
		Log:             slog.Default(),
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-booted:
		case <-ctx.Done():
			return
		}
		if err := agent.Run(ctx, acfg); err != nil && ctx.Err() == nil {
			slog.Error("node agent stopped", "err", err)
		}
	}()
	return nil
}
