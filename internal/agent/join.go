package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
	"github.com/skiff-io/skiff/internal/pki"
	"github.com/skiff-io/skiff/internal/podnet"
)

// JoinConfig is `skiff agent`: a node on another machine joining a server.
type JoinConfig struct {
	// Server is the API server's URL. Token is a join string from `skiff
	// token create` (TLS bootstrap: tlsbootstrap.go), or a bearer token
	// the server accepts for this node (a --token-auth-file entry for user
	// system:node:<name> in group system:nodes, say).
	Server, Token string
	// CAFile is the cluster CA (<server data-dir>/tls/ca.crt). Without it the
	// agent fetches the CA from the kube-root-ca.crt ConfigMap over an
	// unverified connection, once, and says so: trust on first use.
	CAFile string
	// The rest as in Config.
	DataDir         string
	NodeName        string
	NodeIP          string
	KubeletPort     int
	RuntimeEndpoint string
	Bridge          string
	NetworkBackend  string
	CgroupRoot      string
	ClusterDNS      []string
	ClusterCIDR     string
	ResolvConf      string
	DisableProxy    bool
	DisableDNS      bool
	Version         string
	Log             *slog.Logger
}

// Join runs a node agent against a remote server until ctx ends.
func Join(ctx context.Context, jc JoinConfig) error {
	log := jc.Log
	if log == nil {
		log = slog.Default()
	}
	if jc.Server == "" || jc.Token == "" {
		return errors.New("agent: --server and --token are required")
	}
	u, err := url.Parse(jc.Server)
	if err != nil || u.Host == "" {
		return fmt.Errorf("agent: --server %q is not a URL", jc.Server)
	}
	// Every client of the API below fails over between the API servers
	// (apiservers.go).
	servers, err := newAPIServers(jc.Server, filepath.Join(jc.DataDir, "agent", apiServersFile), log)
	if err != nil {
		return err
	}
	// A join string (skiff token create) carries the CA's hash and a
	// bootstrap token: the CA is fetched and checked against the hash, and
	// the token serves only to obtain the node's client certificate.
	caHash, bootstrap, joinErr := bootstraptoken.ParseJoin(jc.Token)
	joining := joinErr == nil
	if !joining && strings.HasPrefix(jc.Token, "K10") {
		return fmt.Errorf("agent: --token: %w", joinErr)
	}
	var caPEM []byte
	switch {
	case jc.CAFile != "":
		if caPEM, err = os.ReadFile(jc.CAFile); err != nil {
			return fmt.Errorf("agent: CA file: %w", err)
		}
		if joining {
			if err := checkCA(caPEM, caHash); err != nil {
				return err
			}
		}
	case joining:
		if caPEM, err = fetchVerifiedCA(ctx, servers, caHash); err != nil {
			return err
		}
	default:
		log.Warn("no --ca-file: fetching the cluster CA without verifying the server (trust on first use)")
		if caPEM, err = fetchCA(ctx, servers, jc.Token); err != nil {
			return err
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("agent: the cluster CA holds no PEM certificate")
	}
	name := jc.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent: node name: %w", err)
		}
		name = strings.ToLower(h)
	}
	backend, err := podnet.ParseBackend(jc.NetworkBackend)
	if jc.NetworkBackend == "" {
		backend, err = podnet.VXLAN, nil
	}
	if err != nil {
		return fmt.Errorf("agent: --network-backend: %w", err)
	}
	ip := jc.NodeIP
	if ip == "" {
		if ip, err = LocalAddressTowards(u.Hostname()); err != nil {
			return fmt.Errorf("agent: node IP (set --node-ip): %w", err)
		}
	}
	selfSigned, err := pki.SelfSignedServing(name, ip)
	if err != nil {
		return err
	}
	pkiDir := filepath.Join(jc.DataDir, "agent", "pki")
	serving := newServingCert(pkiDir, name, ip, caPEM, selfSigned, log)
	api := &rest.Config{Host: jc.Server, BearerToken: jc.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, UserAgent: "skiff-agent"}
	if joining {
		certPath, keyPath, err := nodeClientCert(ctx, servers, caPEM, bootstrap.String(), name, pkiDir, log)
		if err != nil {
			return err
		}
		// Files, not data: client-go reloads them, so the renewals of
		// rotateClientCert take effect without a restart.
		api.BearerToken = ""
		api.TLSClientConfig.CertFile, api.TLSClientConfig.KeyFile = certPath, keyPath
		go rotateClientCert(ctx, fileClient(servers, caPEM, certPath, keyPath), name, certPath, keyPath, log)
	}
	api = servers.config(api)
	// The addresses of the API servers, kept up to date as the node.
	endpoints, err := kubernetes.NewForConfig(api)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { servers.Start(ctx, endpoints) })
	// The serving certificate is requested as the node once it is
	// registered.
	registered := make(chan struct{})
	nodeClient := func() (kubernetes.Interface, error) { return kubernetes.NewForConfig(rest.CopyConfig(api)) }
	go serving.run(ctx, registered, nodeClient)
	return Run(ctx, Config{
		DataDir: jc.DataDir, NodeName: name, NodeIP: ip, KubeletPort: jc.KubeletPort,
		RuntimeEndpoint: jc.RuntimeEndpoint, Bridge: jc.Bridge, NetworkBackend: backend, CgroupRoot: jc.CgroupRoot, ClusterDNS: jc.ClusterDNS,
		ClusterCIDR: jc.ClusterCIDR, ResolvConf: jc.ResolvConf, DisableProxy: jc.DisableProxy, DisableDNS: jc.DisableDNS,
		API:            api,
		GetServingCert: serving.GetCertificate, ClientCAs: pool, Log: log, Version: jc.Version, Ready: registered,
	})
}

// fetchCA reads the cluster CA from kube-public/cluster-info, the
// kubeconfig kubeadm's and skiff's servers publish for joining nodes,
// without verifying the server's certificate.
func fetchCA(ctx context.Context, servers *apiServers, token string) ([]byte, error) {
	c, err := kubernetes.NewForConfig(servers.config(&rest.Config{Host: servers.server, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}}))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cm, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("agent: fetching the cluster CA: %w", err)
	}
	kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
	if err != nil {
		return nil, fmt.Errorf("agent: kube-public/cluster-info: %w", err)
	}
	for _, cluster := range kc.Clusters {
		if len(cluster.CertificateAuthorityData) > 0 {
			return cluster.CertificateAuthorityData, nil
		}
	}
	return nil, errors.New("agent: kube-public/cluster-info holds no CA")
}

// LocalAddressTowards is this machine's source address for traffic to
// host: the address the server reaches the node's kubelet on.
func LocalAddressTowards(host string) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(host, "6443")) // no packet is sent
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}
