package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/admission"
	"github.com/skiff-io/skiff/internal/admission/dynamic"
	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/dns"
	"github.com/skiff-io/skiff/internal/etcd"
	"github.com/skiff-io/skiff/internal/pki"
	"github.com/skiff-io/skiff/internal/podnet"
	"github.com/skiff-io/skiff/internal/serviceaccount"
	"github.com/skiff-io/skiff/internal/storage"
)

// Run starts the server and blocks until ctx ends, then shuts down
// gracefully (see shutdown.go): readiness fails, requests drain, watches
// end, the components beside the API server stop, caches stop, etcd stops.
// It returns only after everything it started has exited; ctx ending
// during start-up is a stop, not an error.
//
// It holds the data dir's lock (LockDataDir) from before anything touches
// the dir until it returns: a second server on the dir fails at once.
func Run(ctx context.Context, cfg Config) (err error) {
	lg := slog.Default()
	began := time.Now()
	defer func() {
		if err != nil && ctx.Err() != nil {
			lg.Info("start-up interrupted", "err", err)
			err = nil
		}
	}()
	if cfg.ShutdownDelayDuration < 0 {
		return fmt.Errorf("--shutdown-delay-duration %v: can not be negative", cfg.ShutdownDelayDuration)
	}
	lock, err := LockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release() }()
	cidr, err := cfg.serviceCIDR()
	if err != nil {
		return fmt.Errorf("--service-cidr %q: %w", cfg.ServiceCIDR, err)
	}
	portBase, portSize, err := parsePortRange(cfg.NodePortRange)
	if err != nil {
		return err
	}
	if _, err := podnet.ParseBackend(cfg.NetworkBackend); err != nil && !cfg.DisableAgent {
		return fmt.Errorf("--network-backend: %w", err)
	}
	if !cfg.EtcdDisableSnapshots && len(cfg.EtcdServers) == 0 && cfg.EtcdSnapshots.Cron != "" {
		if err := cfg.EtcdSnapshots.check(); err != nil {
			return err
		}
	}
	auditPolicy, err := loadAuditPolicy(cfg, lg)
	if err != nil {
		return err
	}
	cluster, err := prepareCluster(ctx, cfg, lg)
	if err != nil {
		return err
	}
	firstIP := admission.FirstIP(cidr)
	// Nodes on other machines reach the server at its bind address or its
	// node's address: the certificate names both, as upstream's names its
	// advertise address.
	sans := append([]string(nil), cfg.TLSSANs...)
	for _, a := range []string{cfg.BindAddress, cfg.NodeIP} {
		if ip := net.ParseIP(a); ip != nil && !ip.IsUnspecified() {
			sans = append(sans, a)
		}
	}
	var etcdIPs []net.IP
	if cluster.clustered() {
		etcdIPs = append(etcdIPs, net.ParseIP(cluster.member.IP))
	}
	ensureTLS := func() (*pki.Bundle, error) {
		b, err := pki.Ensure(pki.Config{Dir: filepath.Join(cfg.DataDir, "tls"), SANs: sans, ServiceIP: net.IP(firstIP.AsSlice()), EtcdIPs: etcdIPs, LeafValidity: cfg.CertValidity})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		return b, nil
	}
	// Servers on one external etcd with a --token take the cluster's keys
	// from it once it is connected; the others make theirs now (the
	// embedded member needs its certificates to start).
	keysInEtcd := len(cfg.EtcdServers) > 0 && cfg.Token != ""
	var bundle *pki.Bundle
	if !keysInEtcd {
		if bundle, err = ensureTLS(); err != nil {
			return err
		}
	}
	if cluster.clustered() {
		if err := cluster.writeJoinString(cfg.DataDir, bundle); err != nil {
			return fmt.Errorf("server join string: %w", err)
		}
	}

	etcdCfg := etcd.Config{Servers: cfg.EtcdServers, ClientCAFile: cfg.EtcdCAFile, ClientCertFile: cfg.EtcdCertFile, ClientKeyFile: cfg.EtcdKeyFile, Logger: lg}
	if len(cfg.EtcdServers) == 0 {
		etcdCfg = etcd.Config{
			DataDir:  filepath.Join(cfg.DataDir, "etcd"),
			CertFile: bundle.EtcdServerCertFile, KeyFile: bundle.EtcdServerKeyFile, TrustedCAFile: bundle.EtcdCAFile,
			ClientCAFile: bundle.EtcdCAFile, ClientCertFile: bundle.EtcdClientCertFile, ClientKeyFile: bundle.EtcdClientKeyFile,
			Member: cluster.member,
			Logger: lg,
		}
	}
	db, abandoned, err := startEtcd(ctx, etcdCfg, lg)
	if abandoned != nil {
		// The abandoned start still uses the data dir: the lock is its
		// until it has returned (in `skiff server`, the process exits
		// first).
		held := lock
		lock = nil
		go func() { <-abandoned; _ = held.Release() }()
	}
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer db.Close()
	lg.Info("etcd ready", "embedded", db.Embedded(), "after", time.Since(began).Round(time.Millisecond))
	if keysInEtcd {
		if bundle, err = syncSharedKeys(ctx, db.Client(), cfg.DataDir, cfg.Token, ensureTLS, lg); err != nil {
			return err
		}
	}
	enc, err := newSecretsEncryption(cfg, lg)
	if err != nil {
		return err
	}
	if cfg.ClusterReset {
		// Left running with the flag, every restart would drop the
		// members that joined since.
		lg.Info("etcd cluster membership reset to this server alone: restart it without --cluster-reset; the other servers rejoin with an empty data dir (skiff uninstall, then skiff server --server ... --token ...)")
		return nil
	}

	// Everything below the HTTP server lives until the server has drained.
	runCtx, stopRun := context.WithCancel(context.Background())
	// The components beside the API server (bootstrap, controllers,
	// scheduler, node agent) stop as soon as it stops accepting
	// requests, and so do the informers it keeps for itself
	// (authorization, flow control, encryption configuration); the watch
	// caches stop once it has stopped, etcd last.
	componentsCtx, stopComponents := context.WithCancel(runCtx)
	apiInformersCtx, stopAPIInformers := context.WithCancel(runCtx)
	var wg, componentsWG sync.WaitGroup
	defer func() {
		stopComponents()
		stopAPIInformers()
		stopRun()
		componentsWG.Wait()
		wg.Wait()
	}()
	// A stop during start-up stops the components at once: nothing was
	// ready, nothing is there to drain for.
	stopEarly := context.AfterFunc(ctx, stopRun)

	var cachers []*storage.Cacher
	stores := map[string]storage.Interface{}
	newStorage := func(sc storage.Config) (storage.Interface, error) {
		sc.Transformer = enc.transformer(sc.Prefix)
		c := storage.NewCacher(storage.NewStore(db.Client(), sc), sc)
		cachers = append(cachers, c)
		stores[sc.Prefix] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(runCtx); err != nil && runCtx.Err() == nil {
				lg.Error("watch cache stopped", "prefix", sc.Prefix, "err", err)
			}
		}()
		return c, nil
	}
	// The stores of custom resources come and go with their
	// definitions: each has its own watch cache, stopped with it.
	newExtensionStorage := func(sc storage.Config) (storage.Interface, func(), error) {
		sc.Transformer = enc.transformer(sc.Prefix)
		c := storage.NewCacher(storage.NewStore(db.Client(), sc), sc)
		cctx, stop := context.WithCancel(runCtx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(cctx); err != nil && cctx.Err() == nil {
				lg.Error("watch cache stopped", "prefix", sc.Prefix, "err", err)
			}
		}()
		return c, stop, nil
	}

	ids := newLoopbackIdentities()
	saTokens, err := newServiceAccountTokens(bundle.ServiceAccountKey)
	if err != nil {
		return err
	}
	saTokens.stores = stores
	authn := apiserver.Authenticators{apiserver.X509{Roots: bundle.TrustPool}, ids, saTokens.authenticator(), bootstrapTokens(stores, lg)}
	if cfg.TokenAuthFile != "" {
		tf, err := apiserver.LoadTokenFile(cfg.TokenAuthFile)
		if err != nil {
			return err
		}
		authn = append(authn, tf)
	}
	// Last: a joining node reads cluster-info without credentials.
	authn = append(authn, apiserver.Anonymous{Paths: []string{"/api/v1/namespaces/" + clusterInfoNamespace + "/configmaps/" + clusterInfoName}})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(storage.Collectors()...)
	certs := newCertRenewer(bundle, reg, lg)

	auditLog, err := openAuditLog(cfg, auditPolicy, reg, lg)
	if err != nil {
		return err
	}
	if auditLog != nil {
		// Deferred here, it runs once the HTTP server has drained and
		// the components beside it have stopped: the last events are
		// written out.
		defer func() {
			if err := auditLog.Close(); err != nil {
				lg.Warn("closing the audit log", "err", err)
			}
		}()
	}

	authz, err := newAuthorization(cfg.AuthorizationMode)
	if err != nil {
		return err
	}
	nsLifecycle := &admission.NamespaceLifecycle{}
	priority := &admission.Priority{}
	defaultStorageClass := &admission.DefaultStorageClass{}
	runtimeClass := &admission.RuntimeClass{}
	// Every address and port a Service holds is claimed in etcd, so
	// that several servers never hand out the same one.
	svcAlloc := &admission.ServiceAllocator{CIDR: cidr, NodePortBase: portBase, NodePortSize: portSize,
		Claims: admission.NewServiceClaims(db.Client(), "/registry/skiff.io/serviceallocations/")}
	saAdmission := &admission.ServiceAccount{}
	nodeRestriction := &admission.NodeRestriction{}
	pvcResize := &admission.PersistentVolumeClaimResize{}
	limitRanger := &admission.LimitRanger{}
	quota := &admission.ResourceQuota{}
	podSecurity, err := admission.NewPodSecurity()
	if err != nil {
		return err
	}
	dynamicAdmission, err := dynamic.New()
	if err != nil {
		return err
	}
	host := cfg.BindAddress
	if unspecified(host) {
		host = "127.0.0.1"
	}
	// Listen before anything is built on the address: with --https-port 0
	// (tests) the kernel picks the port.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	cfg.HTTPSPort = ln.Addr().(*net.TCPAddr).Port
	address := net.JoinHostPort(host, strconv.Itoa(cfg.HTTPSPort))
	boot := &bootstrapState{finished: make(chan struct{}), localStorage: !cfg.DisableLocalStorage, serviceCIDRs: []netip.Prefix{cidr}}
	kubeletCert, err := certs.liveCert(pki.LeafKubeletClient)
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	flowControl := newFlowControl(cfg, reg)
	crds := newCustomResources(lg)
	usage := newResourceMetrics(cfg)
	// The keys are published under the issuer's name, which pods resolve
	// to this server, so that the issuer and its key set are reachable
	// alike from inside the cluster.
	oidcDiscovery, oidcKeySet, err := serviceaccount.OpenIDMetadata(serviceaccount.DefaultIssuer,
		serviceaccount.DefaultIssuer+apiserver.OpenIDKeySetPath, &saTokens.signer.Key.PublicKey)
	if err != nil {
		return fmt.Errorf("service account issuer metadata: %w", err)
	}
	api, err := apiserver.New(apiserver.Config{
		Resources:           Resources(),
		NewStorage:          newStorage,
		NewExtensionStorage: newExtensionStorage,
		Authenticator:       authn,
		Authorizer:          authz.authorizer(),
		Admission:           []apiserver.Admission{nsLifecycle, priority, runtimeClass, defaultStorageClass, admission.StorageObjectInUseProtection{}, saAdmission, admission.PodDefaults{}, limitRanger, svcAlloc, authz.admission(), &admission.CertificateSigningRequests{Authorizer: authz.authorizer()}, &admission.PodCertificateRequestSigning{Authorizer: authz.authorizer()}},
		// The checks that must see the object as the mutating webhooks
		// left it. ResourceQuota charges what it admits: last, as
		// upstream, so that little after it can refuse a charged write.
		Validation: []apiserver.Admission{nodeRestriction, pvcResize, podSecurity, runtimeClass.Validation(), &admission.ClusterTrustBundleAttest{Authorizer: authz.authorizer()}, limitRanger.Validate(), quota},
		Dynamic:    dynamicAdmission,
		ReadyChecks: map[string]func(context.Context) error{
			"etcd": db.Ready,
			"informer-sync": func(context.Context) error {
				for _, c := range cachers {
					if err := c.ReadinessCheck(); err != nil {
						return err
					}
				}
				return nil
			},
			"poststarthook/bootstrap":            boot.check,
			"poststarthook/rbac/bootstrap-roles": authz.ready,
			"poststarthook/crd-informer-synced":  crds.ready,
		},
		ResourceMetrics:      usage.source(),
		Profiling:            cfg.Profiling,
		IssueToken:           saTokens.issue,
		OpenIDDiscovery:      oidcDiscovery,
		OpenIDKeySet:         oidcKeySet,
		APIAudiences:         []string{serviceaccount.DefaultIssuer},
		GetKubeletClientCert: kubeletCert.GetClientCertificate, // renewed while running: certs.go
		// Every kubelet's serving certificate is the cluster CA's: the
		// server's own node's issued here, a joined node's through a
		// kubelet-serving CSR (internal/agent/servingcert.go).
		KubeletCAs:      bundle.TrustPool,
		ExternalAddress: address,
		Registerer:      reg,
		Gatherer:        withUpstreamMetrics(reg),
		Logger:          lg,

		RequestTimeout:              cfg.RequestTimeout,
		MaxRequestsInFlight:         cfg.MaxRequestsInFlight,
		MaxMutatingRequestsInFlight: cfg.MaxMutatingRequestsInFlight,
		FlowControl:                 flowControl,
		AuditPolicy:                 auditPolicy,
		AuditSink:                   auditSink(auditLog),
	})
	if err != nil {
		return err
	}
	nsPrefix := apiserver.StorageKeyPrefix(corev1GVR("namespaces"))
	nsLifecycle.Namespaces = stores[nsPrefix]
	nsLifecycle.Key = func(name string) string { return nsPrefix + name }
	pcPrefix := apiserver.StorageKeyPrefix(schema.GroupVersionResource{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"})
	priority.Classes, priority.Prefix = stores[pcPrefix], pcPrefix
	priority.Key = func(name string) string { return pcPrefix + name }
	defaultStorageClass.Prefix = apiserver.StorageKeyPrefix(schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"})
	defaultStorageClass.Classes = stores[defaultStorageClass.Prefix]
	pvcResize.Prefix, pvcResize.Classes = defaultStorageClass.Prefix, defaultStorageClass.Classes
	rcPrefix := apiserver.StorageKeyPrefix(schema.GroupVersionResource{Group: "node.k8s.io", Version: "v1", Resource: "runtimeclasses"})
	runtimeClass.Classes, runtimeClass.Key = stores[rcPrefix], func(name string) string { return rcPrefix + name }
	saPrefix := apiserver.StorageKeyPrefix(corev1GVR("serviceaccounts"))
	saAdmission.Accounts = stores[saPrefix]
	saAdmission.Key = func(namespace, name string) string { return saPrefix + namespace + "/" + name }
	podSecurity.Namespaces, podSecurity.NamespaceKey = nsLifecycle.Namespaces, nsLifecycle.Key
	podPrefix := apiserver.StorageKeyPrefix(corev1GVR("pods"))
	podSecurity.Pods, podSecurity.PodPrefix = stores[podPrefix], func(ns string) string { return podPrefix + ns + "/" }
	nodePrefix := apiserver.StorageKeyPrefix(corev1GVR("nodes"))
	nodeRestriction.Pods, nodeRestriction.PodKey = stores[podPrefix], func(ns, name string) string { return podPrefix + ns + "/" + name }
	nodeRestriction.Nodes, nodeRestriction.NodeKey = stores[nodePrefix], func(name string) string { return nodePrefix + name }
	nodeRestriction.Accounts, nodeRestriction.AccountKey = saAdmission.Accounts, saAdmission.Key
	nodeRestriction.Authorizer = authz.authorizer()
	limitRanger.Prefix = apiserver.StorageKeyPrefix(corev1GVR("limitranges"))
	limitRanger.Ranges = stores[limitRanger.Prefix]
	quota.Prefix = apiserver.StorageKeyPrefix(corev1GVR("resourcequotas"))
	quota.Quotas = stores[quota.Prefix]
	svcAlloc.Prefix = apiserver.StorageKeyPrefix(corev1GVR("services"))
	svcAlloc.Services = stores[svcAlloc.Prefix]
	wg.Add(1)
	go func() {
		defer wg.Done()
		svcAlloc.Repair(runCtx, time.Minute, lg)
	}()

	servingCert, err := certs.liveCert(pki.LeafServing)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	drain := newDrainer(cluster.handler(certs.handler(enc.handler(api, authn), authn), cfg, db, authn, lg), cfg.ShutdownSendRetryAfter)
	srv := &http.Server{
		Handler:           drain,
		ConnState:         drain.connState,
		ConnContext:       apiserver.WithClientCertCache,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(&slogWriter{lg}, "", 0),
		// Certificate and client CAs are read per handshake: renewed and
		// rotated while the server runs (certs.go).
		TLSConfig: pki.TrustingClients(&tls.Config{
			MinVersion:     tls.VersionTLS12,
			ClientAuth:     tls.VerifyClientCertIfGiven,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: servingCert.GetCertificate,
		}, bundle.TrustPool),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()

	url := "https://" + address
	// The server's own components reach its API in process: the same
	// requests as over HTTPS, without TLS and sockets (see
	// apiserver.InProcessTransport). Host still names the real address.
	inProcess := &rest.Config{
		Host:      url,
		Transport: apiserver.InProcessTransport(api),
		QPS:       200,
		Burst:     400,
		UserAgent: "skiff-server",
	}
	loopback, err := ids.config(inProcess, userAPIServer)
	if err != nil {
		return err
	}
	if err := enc.start(apiInformersCtx, &wg, db.Client(), loopback); err != nil {
		return err
	}
	if err := dynamicAdmission.Start(apiInformersCtx, loopback, authz.authorizer(), api.TypeConverter); err != nil {
		return fmt.Errorf("dynamic admission: %w", err)
	}
	if cfg.Loopback != nil {
		cfg.Loopback(rest.CopyConfig(loopback))
	}
	kubeconfig := cfg.WriteKubeconfig
	if kubeconfig == "" {
		kubeconfig = filepath.Join(cfg.DataDir, "admin.kubeconfig")
	}
	if err := pki.WriteKubeconfig(kubeconfig, url, bundle); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	writeKubeconfig := func() error { return pki.WriteKubeconfig(kubeconfig, url, bundle) }
	certs.onRenew(pki.LeafAdmin, writeKubeconfig)
	certs.onTrustChange(writeKubeconfig)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = certs.Start(runCtx)
	}()

	if boot.clusterInfo, err = clusterInfoKubeconfig(url, bundle.TrustPEM()); err != nil {
		return err
	}
	// After a CA rotation: cluster-info and every kube-root-ca.crt
	// carry the bundle in force.
	rootCAChanged := make(chan struct{}, 1)
	certs.onTrustChange(func() error {
		select {
		case rootCAChanged <- struct{}{}:
		default:
		}
		info, err := clusterInfoKubeconfig(url, bundle.TrustPEM())
		if err != nil {
			return err
		}
		cs, err := kubernetes.NewForConfig(loopback)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
		defer cancel()
		return ensureClusterInfo(ctx, cs, info)
	})
	componentsWG.Add(1)
	go func() {
		defer componentsWG.Done()
		if err := boot.run(componentsCtx, loopback, firstIP, dns.ServiceIP(cidr), cfg.HTTPSPort); err != nil && componentsCtx.Err() == nil {
			lg.Error("bootstrap failed", "err", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		storage.RunCompactor(runCtx, db.Client(), 5*time.Minute)
	}()
	if db.Embedded() && !cfg.EtcdDisableSnapshots && cfg.EtcdSnapshots.Cron != "" {
		snaps, err := cfg.EtcdSnapshots.withDefaults(cfg.DataDir)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = runSnapshots(runCtx, db.Client(), snaps, lg)
		}()
	}
	if cluster.clustered() {
		cs, err := kubernetes.NewForConfig(loopback)
		if err != nil {
			return err
		}
		componentsWG.Add(1)
		go func() {
			defer componentsWG.Done()
			if err := removeDeletedMembers(componentsCtx, cs, db, lg); err != nil {
				lg.Error("etcd member removal stopped", "err", err)
			}
		}()
	}
	// The kubernetes Service's endpoints: this server joins them once
	// ready and leaves as soon as it is told to stop (ctx: upstream's
	// pre-shutdown hook), not after --shutdown-delay-duration.
	endpointsCS, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	endpointsCtx, stopEndpoints := context.WithCancel(componentsCtx)
	stopEndpointsAtShutdown := context.AfterFunc(ctx, stopEndpoints)
	componentsWG.Add(1)
	go func() {
		defer componentsWG.Done()
		defer stopEndpointsAtShutdown()
		defer stopEndpoints()
		advertise := host
		if unspecified(cfg.BindAddress) && cfg.NodeIP != "" {
			advertise = cfg.NodeIP // listening everywhere, reached there
		}
		addr, err := netip.ParseAddr(advertise)
		if err != nil {
			lg.Warn("no kubernetes Service endpoint: the address is not an IP", "address", advertise)
			return
		}
		if err := runAPIEndpoints(endpointsCtx, db.Client(), endpointsCS, addr, cfg.HTTPSPort, lg); err != nil {
			lg.Error("kubernetes Service endpoints stopped", "err", err)
		}
	}()
	crds.api = api
	if err := crds.start(apiInformersCtx, &wg, loopback, dynamicAdmission.Services()); err != nil {
		return fmt.Errorf("custom resources: %w", err)
	}
	frontProxyCert, err := certs.liveCert(pki.LeafFrontProxy)
	if err != nil {
		return fmt.Errorf("front-proxy client certificate: %w", err)
	}
	aggregation := newAPIServices(api, reg, lg)
	aggregation.frontProxyCert, aggregation.frontProxyCA, aggregation.clientCA = frontProxyCert.GetClientCertificate, bundle.FrontProxyCAPEM, bundle.TrustPEM
	if err := aggregation.start(apiInformersCtx, &wg, loopback); err != nil {
		return fmt.Errorf("aggregation: %w", err)
	}
	certs.onTrustChange(aggregation.trustChanged)
	if err := authz.start(apiInformersCtx, &wg, loopback); err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if err := startFlowControl(apiInformersCtx, &wg, flowControl, loopback); err != nil {
		return err
	}
	usage.start(apiInformersCtx, &wg, api, lg)
	// The components start once the bootstrap objects exist and the
	// authorizer has read the bootstrap policy.
	componentsMayStart := allClosed(componentsCtx, boot.finished, authz.loaded)
	if err := startControllers(componentsCtx, &componentsWG, inProcess, ids, rootCA{bundle.TrustPEM, rootCAChanged, bundle.SigningCA}, cfg, reg, componentsMayStart); err != nil {
		return err
	}
	if err := startAgent(componentsCtx, &componentsWG, cfg, bundle, certs, url, host, componentsMayStart); err != nil {
		return err
	}

	// From here a stop drains gracefully (httpLifecycle.shutdown).
	ready := stopEarly()
	if ready {
		lg.Info("skiff server listening", "url", url, "kubeconfig", kubeconfig, "after", time.Since(began).Round(time.Millisecond))
		if cfg.Ready != nil {
			close(cfg.Ready)
		}
		select {
		case <-ctx.Done():
		case err := <-serveErr:
			_ = srv.Close()
			return fmt.Errorf("serving: %w", err)
		}
	}
	h := &httpLifecycle{api: api, srv: srv, ln: ln, drainer: drain, serveErr: serveErr, cfg: cfg, log: lg,
		notAccepting: func() {
			stopComponents()
			stopAPIInformers()
		},
	}
	h.shutdown(ready)
	stopped := time.Now()
	componentsWG.Wait()
	stopRun()
	wg.Wait()
	lg.Info("components and caches stopped", "after-the-API-server", time.Since(stopped).Round(time.Millisecond))
	return nil
}

// unspecified reports whether a --bind-address listens on every address.
func unspecified(bind string) bool { return bind == "0.0.0.0" || bind == "::" || bind == "" }

// allClosed is closed once every one of chs is (never, if ctx ends
// first).
func allClosed(ctx context.Context, chs ...<-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		for _, c := range chs {
			select {
			case <-c:
			case <-ctx.Done():
				return
			}
		}
		close(out)
	}()
	return out
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func parsePortRange(s string) (base, size int, err error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a <= 0 || b < a || b > 65535 {
		return 0, 0, fmt.Errorf("--service-node-port-range %q: want LOW-HIGH", s)
	}
	return a, b - a + 1, nil
}

// slogWriter sends net/http's own error log (TLS handshake noise) to slog
// at debug level.
type slogWriter struct{ lg *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.lg.Debug("http server", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
