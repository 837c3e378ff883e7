// Package agent runs everything a node needs: its own containerd (unless
// told to use a runtime already running), the images found on disk, the
// kubelet, its HTTPS server and the prober. `skiff server` runs it beside the
// control plane; `skiff agent` runs it alone against a remote server.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-io/skiff/internal/dns"
	"github.com/skiff-io/skiff/internal/image"
	"github.com/skiff-io/skiff/internal/kubelet"
	"github.com/skiff-io/skiff/internal/kubelet/containerd"
	"github.com/skiff-io/skiff/internal/kubelet/envvars"
	"github.com/skiff-io/skiff/internal/kubelet/podcert"
	"github.com/skiff-io/skiff/internal/kubelet/prober"
	"github.com/skiff-io/skiff/internal/kubelet/server"
	"github.com/skiff-io/skiff/internal/kubelet/volume"
	"github.com/skiff-io/skiff/internal/localpath"
	"github.com/skiff-io/skiff/internal/pki"
	"github.com/skiff-io/skiff/internal/podnet"
)

// Config is one node agent.
type Config struct {
	// DataDir is skiff's data directory: the agent keeps its state in
	// DataDir/agent and imports the image tarballs in DataDir/images.
	DataDir  string
	NodeName string
	// NodeIP is the node's address: the kubelet listens there and pods'
	// hostIP is it.
	NodeIP string
	// KubeletPort is the kubelet's HTTPS port (10250); 0 picks a free one.
	KubeletPort int
	// RuntimeEndpoint is a CRI socket ("unix:///run/containerd/containerd.sock");
	// empty starts and supervises a containerd of the agent's own.
	RuntimeEndpoint string
	// API is how the agent reaches the API server: the kubelet's
	// identity, system:node:<name>.
	API *rest.Config
	// ProxyAPI is the service proxy's identity (system:kube-proxy, bound
	// to system:node-proxier) and DNSAPI the cluster DNS's (the coredns
	// service account, bound to system:coredns): each reads only what it
	// serves. nil uses API.
	ProxyAPI, DNSAPI *rest.Config
	// ServingCert is the kubelet's serving certificate, or
	// GetServingCert returns it on each TLS handshake (one that is renewed
	// while the agent runs); ClientCAs verify the API server's client
	// certificate, or GetClientCAs returns them on each handshake (a CA
	// rotation replaces them). A certificate and client CAs are required.
	ServingCert    *tls.Certificate
	GetServingCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	ClientCAs      *x509.CertPool
	GetClientCAs   func() *x509.CertPool
	// Bridge is the Linux bridge of the pod network ("skiff0").
	Bridge string
	// CgroupRoot is the cgroup the pods' kubepods hierarchy is made in
	// (upstream's --cgroup-root): "" is the root; two nodes on one
	// machine need one each.
	CgroupRoot string
	// NetworkBackend is how pods reach pods on other nodes (internal/podnet):
	// vxlan (the default), host-gw or none.
	NetworkBackend podnet.Backend
	// ClusterDNS and ClusterDomain configure ClusterFirst pods. Without
	// ClusterDNS the kube-dns Service's ClusterIP is used.
	ClusterDNS    []string
	ClusterDomain string
	// ClusterCIDR is the pod network (the proxy masquerades traffic from
	// outside it).
	ClusterCIDR string
	// ResolvConf is the node's resolver configuration: the upstreams of the
	// cluster DNS and what Default-policy pods get ("/etc/resolv.conf").
	ResolvConf string
	// DisableProxy and DisableDNS leave out the service proxy and the
	// node-local cluster DNS (a second node on one machine shares them).
	DisableProxy, DisableDNS bool
	Labels                   map[string]string
	Version                  string
	Log                      *slog.Logger
	// Ready, if set, is closed when the kubelet has registered the node.
	Ready chan<- struct{}
}

// Run runs the node agent until ctx ends and returns after everything it
// started has stopped (containers keep running; the next start adopts them).
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "agent")
	if cfg.API == nil || (cfg.ServingCert == nil && cfg.GetServingCert == nil) || (cfg.ClientCAs == nil && cfg.GetClientCAs == nil) || cfg.NodeName == "" {
		return errors.New("agent: API, ServingCert, ClientCAs and NodeName are required")
	}
	root := filepath.Join(cfg.DataDir, "agent")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("agent state directory: %w", err)
	}
	// The local-path volumes: created by the kubelet at their first
	// mount, removed by the cleaner when deleted.
	storageDir, err := filepath.Abs(filepath.Join(cfg.DataDir, "storage"))
	if err != nil {
		return fmt.Errorf("local-path storage directory: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	errc := make(chan error, 16)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	if cfg.NetworkBackend == "" {
		cfg.NetworkBackend = podnet.VXLAN
	}
	endpoint := cfg.RuntimeEndpoint
	var ctd *containerd.Process
	if endpoint == "" {
		var err error
		ctd, err = containerd.New(containerd.Config{Dir: filepath.Join(root, "containerd"), SandboxImage: image.PauseRef, Bridge: cfg.Bridge,
			MTU: podnet.LinkMTU(nil, cfg.NodeIP, cfg.NetworkBackend), Log: log})
		if err != nil {
			return err
		}
		run("containerd", ctd.Start)
		select {
		case <-ctd.Ready():
		case <-ctx.Done():
			return firstErr(errc, ctx.Err())
		}
		endpoint = ctd.Endpoint()
		if err := image.EnsurePause(ctx, ctd.Socket(), filepath.Join(root, "tmp")); err != nil {
			return fmt.Errorf("pause image: %w", err)
		}
		// The stamp lives beside containerd's state: if that is wiped,
		// so is the memory of what was imported into it.
		if err := image.ImportDir(ctx, ctd.Socket(), filepath.Join(cfg.DataDir, "images"), filepath.Join(root, "containerd", "imported-images.json"), log); err != nil {
			log.Warn("importing images", "err", err)
		}
	}
	rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, 2*time.Minute, nil, false)
	if err != nil {
		return fmt.Errorf("CRI runtime service %s: %w", endpoint, err)
	}
	is, err := remote.NewRemoteImageService(ctx, endpoint, 2*time.Minute, nil, false)
	if err != nil {
		return fmt.Errorf("CRI image service %s: %w", endpoint, err)
	}

	api := rest.CopyConfig(cfg.API)
	api.QPS, api.Burst = 50, 100
	client, err := kubernetes.NewForConfig(api)
	if err != nil {
		return err
	}
	proxyClient, err := clientOr(cfg.ProxyAPI, client)
	if err != nil {
		return err
	}
	dnsClient, err := clientOr(cfg.DNSAPI, client)
	if err != nil {
		return err
	}
	events := record.NewBroadcaster()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer events.Shutdown()
	recorder := events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	// Services feed the service link variables ({NAME}_SERVICE_HOST, ...).
	shared := informers.NewSharedInformerFactory(client, 0)
	services := shared.Core().V1().Services().Lister()
	slices := shared.Discovery().V1().EndpointSlices().Lister()
	nodes := shared.Core().V1().Nodes()
	pn, err := podnet.New(podnet.Config{NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Backend: cfg.NetworkBackend,
		Nodes: nodes.Lister(), Informer: nodes.Informer(), Log: log})
	if err != nil {
		return err
	}
	shared.StartWithContext(ctx)
	defer shared.Shutdown()
	shared.WaitForCacheSync(ctx.Done())

	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if len(cfg.ClusterDNS) == 0 {
		ip, err := clusterDNS(ctx, client)
		if err != nil {
			return err
		}
		if ip != "" {
			cfg.ClusterDNS = []string{ip}
		}
	}
	// The node's metrics registry: the kubelet's, the proxy's and DNS's,
	// served by the kubelet server at /metrics (reachable through the API
	// server's nodes/proxy, as Prometheus's Kubernetes jobs scrape nodes).
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if !cfg.DisableDNS && len(cfg.ClusterDNS) > 0 {
		d, err := newDNS(cfg, dnsClient, cfg.ClusterDNS[0], metrics, log)
		if err != nil {
			return err
		}
		if d != nil {
			run("cluster DNS", d.Start)
			defer func() { _ = dns.RemoveLocalAddress(dnsInterface) }()
		}
	}
	if cfg.ClusterCIDR != "" {
		if err := podnet.Masquerade(ctx, cfg.ClusterCIDR); err != nil {
			return err
		}
	}
	if err := enableForwarding(); err != nil {
		return err
	}
	run("pod network", pn.Start)
	if !cfg.DisableProxy {
		p, err := newProxy(cfg, proxyClient, metrics, log)
		if err != nil {
			return err
		}
		run("proxy", p.Start)
	}

	probes := newProbes(prober.New(rs, recorder, log))
	var k *kubelet.Kubelet
	sources := volume.NewClientSources(client)
	kcfg := kubelet.Config{
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Client: client, Runtime: rs, Images: is,
		RootDir: root,
		Probes:  probes,
		Env: func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, in kubelet.EnvInputs) ([]*runtimeapi.KeyValue, error) {
			svcs, err := services.List(labels.Everything())
			if err != nil {
				return nil, err
			}
			return envvars.Resolve(ctx, sources, pod, c, envvars.Inputs{
				PodIPs: in.PodIPs, HostIPs: in.HostIPs, NodeName: in.NodeName, NodeAllocatable: in.NodeAllocatable,
				Services: svcs,
			})
		},
		Expand: envvars.Expand,
		PodEndpoints: func(pod *corev1.Pod) (listed, ready bool) {
			return podEndpoints(slices, pod)
		},
		ClusterDNS:    cfg.ClusterDNS,
		ClusterDomain: cfg.ClusterDomain,
		ResolvConf:    cfg.ResolvConf,
		Labels:        cfg.Labels,
		Annotations:   map[string]string{localpath.DirAnnotation: storageDir},
		Version:       cfg.Version,
		Recorder:      recorder,
		Log:           log,
		Registerer:    metrics,
		CgroupRoot:    cfg.CgroupRoot,
	}
	if ctd != nil {
		kcfg.OnPodCIDR = ctd.SetPodCIDR
	}
	var allocatable func() corev1.ResourceList
	volumes := volume.New(filepath.Join(root, "pods"), sources, func() corev1.ResourceList { return allocatable() }, log)
	volumes.SetLocalPath(cfg.NodeName, storageDir)
	podCerts := podcert.New(client, cfg.NodeName, log)
	volumes.SetPodCertificates(podCerts)
	kcfg.Volumes = volumes
	if ctd != nil {
		// Image volumes: containerd 1.6's CRI cannot mount images.
		volumes.SetImageMounter(image.Mounter{Socket: ctd.Socket()})
	}
	if k, err = kubelet.New(kcfg); err != nil {
		return err
	}
	podCerts.SetNotify(k.Enqueue)
	allocatable = k.Allocatable
	servingTLS := &tls.Config{GetCertificate: cfg.GetServingCert, ClientCAs: cfg.ClientCAs, MinVersion: tls.VersionTLS12}
	if cfg.GetServingCert == nil {
		servingTLS.Certificates = []tls.Certificate{*cfg.ServingCert}
	}
	if cfg.GetClientCAs != nil {
		servingTLS = pki.TrustingClients(servingTLS, cfg.GetClientCAs)
	}
	srv, err := server.New(server.Config{
		Addr:       net.JoinHostPort(cfg.NodeIP, strconv.Itoa(cfg.KubeletPort)),
		TLS:        servingTLS,
		NodeName:   cfg.NodeName,
		Auth:       server.APIReviews{Client: client},
		Runtime:    rs,
		Pods:       k,
		Metrics:    metrics,
		CgroupRoot: cfg.CgroupRoot,
		Log:        log,
	})
	if err != nil {
		return err
	}

	k.SetKubeletPort(int32(srv.Port()))
	probes.enqueue = k.Enqueue

	run("prober", probes.m.Start)
	run("probe results", probes.run)
	run("kubelet server", srv.Start)
	run("kubelet", k.Start)
	run("pod certificates", podCerts.Start)
	run("local-path cleaner", localpath.NewCleaner(client, cfg.NodeName, storageDir, log).Start)
	if cfg.Ready != nil {
		go func() {
			select {
			case <-k.Registered():
				close(cfg.Ready)
			case <-ctx.Done():
			}
		}()
	}
	log.Info("node agent started", "node", cfg.NodeName, "runtime", endpoint, "kubeletPort", srv.Port())
	<-ctx.Done()
	cancel()
	wg.Wait()
	_ = rs.Close(context.Background())
	return firstErr(errc, nil)
}

// enableForwarding lets the node route pod traffic (its bridge, the
// overlay): the CNI bridge plugin turns it on too, but only once a pod
// starts, and a node with no pod yet still forwards traffic to them.
func enableForwarding() error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	return nil
}

func firstErr(errc chan error, def error) error {
	select {
	case err := <-errc:
		return err
	default:
		return def
	}
}

// clientOr is a client for rc, at the kubelet's rates, or def when rc is
// nil.
func clientOr(rc *rest.Config, def kubernetes.Interface) (kubernetes.Interface, error) {
	if rc == nil {
		return def, nil
	}
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = 50, 100
	return kubernetes.NewForConfig(rc)
}
