package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says where the material lives and which names the API server's
// serving certificate must carry.
type Config struct {
	// Dir holds the files; it is created with mode 0700 when missing.
	Dir string
	// SANs are extra DNS names or IP addresses for the serving certificate
	// (--tls-san). Entries that parse as IPs become IP SANs; empty entries
	// are ignored.
	SANs []string
	// ServiceIP is the first address of the service CIDR (10.43.0.1 by
	// default), the ClusterIP of the "kubernetes" Service; nil adds none.
	ServiceIP net.IP
	// EtcdIPs are addresses the embedded etcd member serves its peers and
	// clients on besides loopback (a member of a cluster of servers).
	EtcdIPs []net.IP
	// LeafValidity is how long the leaf certificates issued from now on
	// live (DefaultLeafValidity, a year, when zero); when they are
	// renewed and how often Renew should look (NextCheck) scale with it.
	// The CAs live ten years whatever it says. Tests set it to a minute.
	LeafValidity time.Duration
}

// MinLeafValidity is the shortest Config.LeafValidity: a leaf is checked a
// tenth of its lifetime apart, and renewed with a third of it left.
const MinLeafValidity = 30 * time.Second

// Bundle names the files Ensure keeps and holds the parsed CAs. It
// remembers every leaf it keeps (Ensure's, IssueClient's, IssueServing's)
// for Renew; its methods are safe for concurrent use.
type Bundle struct {
	CAFile, CAKeyFile               string
	ServingCertFile, ServingKeyFile string
	AdminCertFile, AdminKeyFile     string
	// KubeletClientCertFile and KubeletClientKeyFile are the API server's
	// client certificate for kubelets (pods/log, exec, attach,
	// portforward, nodes/proxy).
	KubeletClientCertFile, KubeletClientKeyFile string
	// FrontProxyCAFile and FrontProxyCAKeyFile are the CA of the
	// aggregation layer (upstream's --requestheader-client-ca-file): an
	// extension API server trusts the user named in a request's
	// X-Remote-User headers only from a client certificate it signed.
	// FrontProxyClientCertFile and FrontProxyClientKeyFile are that
	// certificate, which the API server presents when it proxies to one.
	FrontProxyCAFile, FrontProxyCAKeyFile             string
	FrontProxyClientCertFile, FrontProxyClientKeyFile string

	EtcdCAFile, EtcdCAKeyFile             string
	EtcdServerCertFile, EtcdServerKeyFile string
	EtcdClientCertFile, EtcdClientKeyFile string

	// ServiceAccountKeyFile holds ServiceAccountKey, which signs service
	// account tokens.
	ServiceAccountKeyFile string
	ServiceAccountKey     *ecdsa.PrivateKey

	// FrontProxyCAPEM is the front-proxy CA's certificate, as extension
	// API servers are given it.
	FrontProxyCAPEM []byte

	// EtcdCAPool holds only the etcd CA. The cluster CA, which RotateCA
	// may replace, is read with CA, TrustPool and TrustPEM.
	EtcdCAPool *x509.CertPool

	// ca signs the leaves; trust is what is accepted (see rotate.go).
	ca    *keyPair
	trust atomic.Pointer[trustState]
	lt    lifetimes
	// dir is Config.Dir: leaves are named by their path below it.
	dir string

	// mu guards leaves and serializes every write of a leaf's files.
	mu     sync.Mutex
	leaves []*leaf
}

// Common names and organizations of the certificates Ensure issues.
const (
	CACommonName         = "skiff-ca"
	EtcdCACommonName     = "skiff-etcd-ca"
	ServingCommonName    = "kube-apiserver"
	AdminCommonName      = "system:admin"
	AdminOrganization    = "system:masters"
	EtcdServerCommonName = "skiff-etcd"
	EtcdClientCommonName = "kube-apiserver-etcd-client"
	// KubeletClientCommonName is the user the API server is to a kubelet.
	// It is in no group: the bootstrap RBAC policy binds it to
	// system:kubelet-api-admin, which is what kubelets authorize it for
	// (older skiff issued it in system:masters; Ensure reissues it).
	KubeletClientCommonName = "kube-apiserver-kubelet-client"
	// FrontProxyCACommonName and FrontProxyClientCommonName are the
	// aggregation layer's CA and the client certificate it signs, the
	// name extension API servers are told to accept
	// (requestheader-allowed-names).
	FrontProxyCACommonName     = "skiff-front-proxy-ca"
	FrontProxyClientCommonName = "front-proxy-client"
)

// Ensure creates the CAs and certificates under cfg.Dir that are missing
// and reissues leaves that are stale (see the package doc); material that
// is present and valid is left untouched. It fails, rather than replace a
// CA, when a CA's files are incomplete, do not parse, or the CA has
// expired: replacing it would silently invalidate every credential issued
// from it.
func Ensure(cfg Config) (*Bundle, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: no directory given")
	}
	if cfg.LeafValidity != 0 && cfg.LeafValidity < MinLeafValidity {
		return nil, fmt.Errorf("pki: leaf validity %v: less than %v", cfg.LeafValidity, MinLeafValidity)
	}
	etcdDir := filepath.Join(cfg.Dir, "etcd")
	for _, d := range []string{cfg.Dir, etcdDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	b := &Bundle{
		CAFile:                   filepath.Join(cfg.Dir, "ca.crt"),
		CAKeyFile:                filepath.Join(cfg.Dir, "ca.key"),
		ServingCertFile:          filepath.Join(cfg.Dir, "serving.crt"),
		ServingKeyFile:           filepath.Join(cfg.Dir, "serving.key"),
		AdminCertFile:            filepath.Join(cfg.Dir, "admin.crt"),
		AdminKeyFile:             filepath.Join(cfg.Dir, "admin.key"),
		KubeletClientCertFile:    filepath.Join(cfg.Dir, "apiserver-kubelet-client.crt"),
		KubeletClientKeyFile:     filepath.Join(cfg.Dir, "apiserver-kubelet-client.key"),
		FrontProxyCAFile:         filepath.Join(cfg.Dir, "front-proxy-ca.crt"),
		FrontProxyCAKeyFile:      filepath.Join(cfg.Dir, "front-proxy-ca.key"),
		FrontProxyClientCertFile: filepath.Join(cfg.Dir, "front-proxy-client.crt"),
		FrontProxyClientKeyFile:  filepath.Join(cfg.Dir, "front-proxy-client.key"),
		EtcdCAFile:               filepath.Join(etcdDir, "ca.crt"),
		EtcdCAKeyFile:            filepath.Join(etcdDir, "ca.key"),
		EtcdServerCertFile:       filepath.Join(etcdDir, "server.crt"),
		EtcdServerKeyFile:        filepath.Join(etcdDir, "server.key"),
		EtcdClientCertFile:       filepath.Join(etcdDir, "client.crt"),
		EtcdClientKeyFile:        filepath.Join(etcdDir, "client.key"),

		ServiceAccountKeyFile: filepath.Join(cfg.Dir, "service-account.key"),

		lt:  newLifetimes(cfg.LeafValidity),
		dir: cfg.Dir,
	}
	now := time.Now()

	if err := recoverCAKey(b.CAFile, b.CAKeyFile); err != nil {
		return nil, err
	}
	ca, err := ensureCA(b.CAFile, b.CAKeyFile, CACommonName, now)
	if err != nil {
		return nil, err
	}
	etcdCA, err := ensureCA(b.EtcdCAFile, b.EtcdCAKeyFile, EtcdCACommonName, now)
	if err != nil {
		return nil, err
	}
	frontProxyCA, err := ensureCA(b.FrontProxyCAFile, b.FrontProxyCAKeyFile, FrontProxyCACommonName, now)
	if err != nil {
		return nil, err
	}
	b.FrontProxyCAPEM = encodeCert(frontProxyCA.cert.Raw)

	dns, ips := servingNames(cfg)
	leaves := []struct {
		ca                *keyPair
		certFile, keyFile string
		spec              leafSpec
	}{
		{ca, b.ServingCertFile, b.ServingKeyFile, leafSpec{
			commonName: ServingCommonName,
			dnsNames:   dns,
			ips:        ips,
			usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{ca, b.AdminCertFile, b.AdminKeyFile, leafSpec{
			commonName: AdminCommonName,
			orgs:       []string{AdminOrganization},
			usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{ca, b.KubeletClientCertFile, b.KubeletClientKeyFile, leafSpec{
			commonName: KubeletClientCommonName,
			usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{frontProxyCA, b.FrontProxyClientCertFile, b.FrontProxyClientKeyFile, leafSpec{
			commonName: FrontProxyClientCommonName,
			usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		// The etcd server certificate also serves as the member's peer
		// certificate, hence client auth too.
		{etcdCA, b.EtcdServerCertFile, b.EtcdServerKeyFile, leafSpec{
			commonName: EtcdServerCommonName,
			dnsNames:   []string{"localhost"},
			ips:        etcdIPs(cfg.EtcdIPs),
			usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}},
		{etcdCA, b.EtcdClientCertFile, b.EtcdClientKeyFile, leafSpec{
			commonName: EtcdClientCommonName,
			usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, l := range leaves {
		if _, err := b.keep(l.ca, l.certFile, l.keyFile, l.spec, now); err != nil {
			return nil, err
		}
	}

	if b.ServiceAccountKey, err = ensureServiceAccountKey(b.ServiceAccountKeyFile); err != nil {
		return nil, err
	}
	b.ca = ca
	if err := b.loadTrust(now); err != nil {
		return nil, err
	}
	b.EtcdCAPool = x509.NewCertPool()
	b.EtcdCAPool.AddCert(etcdCA.cert)
	return b, nil
}

// ensureCA loads the CA at certFile/keyFile or creates it when both files
// are missing.
func ensureCA(certFile, keyFile, commonName string, now time.Time) (*keyPair, error) {
	p, err := readPair(certFile, keyFile)
	switch {
	case errors.Is(err, errMissing):
		p, keyPEM, err := newCA(commonName, now)
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		// Key first: a crash between the two writes leaves a key without a
		// certificate, which the next start reports instead of pairing a
		// new certificate with a lost key.
		if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		if err := writeFileAtomic(certFile, p.certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("pki: CA %s: %w (remove both files to create a new CA)", certFile, err)
	}
	if !p.cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certFile)
	}
	if now.After(p.cert.NotAfter) {
		return nil, fmt.Errorf("pki: CA %s expired on %s", certFile, p.cert.NotAfter.Format(time.RFC3339))
	}
	return p, nil
}

// ensureLeaf keeps the leaf at certFile/keyFile if it is valid for spec and
// signed by ca, and issues a new one otherwise. It returns the pair in
// force and why it was reissued ("" when it was kept).
func ensureLeaf(ca *keyPair, certFile, keyFile string, spec leafSpec, lt lifetimes, now time.Time) (*keyPair, string, error) {
	old, err := readPair(certFile, keyFile)
	var reason string
	switch {
	case errors.Is(err, errMissing):
		reason = "missing"
	case err != nil:
		reason = "unreadable"
	default:
		if reason = staleReason(old, ca, spec, lt, now); reason == "" {
			return old, "", nil
		}
	}
	var key crypto.Signer
	if reason == reasonExpiresSoon || reason == reasonOtherCA {
		key = old.key
	}
	p, keyPEM, err := issue(ca, spec, lt, key, now)
	if err != nil {
		return nil, "", fmt.Errorf("pki: %w", err)
	}
	// With a new key, key and certificate are written one after the
	// other; a crash in between leaves a mismatched pair that the next
	// start detects and reissues. A renewal keeps the key and replaces
	// the certificate alone, in one rename.
	if keyPEM != nil {
		if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
			return nil, "", fmt.Errorf("pki: %w", err)
		}
	}
	if err := writeFileAtomic(certFile, p.certPEM, 0o644); err != nil {
		return nil, "", fmt.Errorf("pki: %w", err)
	}
	return p, reason, nil
}

// etcdIPs lists the etcd server certificate's IP SANs: loopback and
// extra, without duplicates.
func etcdIPs(extra []net.IP) []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, ip := range extra {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return ips
}

// servingNames lists the serving certificate's SANs: loopback names, the
// host name, the in-cluster names of the "kubernetes" Service, its
// ClusterIP and cfg.SANs. The result is sorted and free of duplicates.
func servingNames(cfg Config) ([]string, []net.IP) {
	dns := []string{
		"localhost",
		"kubernetes",
		"kubernetes.default",
		"kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local",
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if h, err := os.Hostname(); err == nil && h != "" {
		dns = append(dns, strings.ToLower(h))
	}
	if cfg.ServiceIP != nil {
		ips = append(ips, cfg.ServiceIP)
	}
	for _, s := range cfg.SANs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, strings.ToLower(s))
		}
	}
	slices.Sort(dns)
	dns = slices.Compact(dns)

	seen := map[string]bool{}
	var uniq []net.IP
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !seen[ip.String()] {
			seen[ip.String()] = true
			uniq = append(uniq, ip)
		}
	}
	slices.SortFunc(uniq, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	return dns, uniq
}
