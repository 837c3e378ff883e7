package server

// The certificates skiff issues renew themselves while the server runs.
// pki.Bundle.Renew reissues the leaves that are due (two thirds into
// their lifetime) and writes the files; certRenewer runs it on a timer
// and hands each renewal to its consumers without a restart:
//
//	serving                    the API server's listener: GetCertificate reads a liveCert
//	apiserver-kubelet-client   the API server's calls to kubelets: GetClientCertificate, a liveCert
//	admin                      the admin kubeconfig, rewritten (atomically)
//	kubelet/serving            the node agent's kubelet server: GetCertificate, a liveCert
//	kubelet/client, /proxy, /dns  the node agent's clients: GetClientCertificate, a liveCert
//	                           (restConfig), for the handshakes to come
//	etcd/server                embedded etcd reads the files per handshake (its TLSInfo)
//	etcd/client                for etcdctl and backups; the API server reaches its
//	                           embedded member in process, without TLS
//
// A renewal keeps the key, so no reader of the files can pair a new
// certificate with an old key. The CAs are not renewed (ten years), but
// the cluster CA may be replaced: `skiff certificate rotate-ca` (below,
// and pki/rotate.go) trusts a new CA beside the old one for an overlap,
// reissues every leaf under it at once, and when the overlap ends trusts
// the new CA alone. What holds the trust follows it without a restart:
// the servers' client CAs (pki.TrustingClients), the node agent's
// clients (restConfig: pki.VerifyServer per handshake), and the trust
// hooks, which rewrite the admin kubeconfig, kube-public/cluster-info and
// every namespace's kube-root-ca.crt.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/connrotation"

	"github.com/skiff-io/skiff/internal/pki"
)

// liveCert is a certificate that TLS handshakes read and a renewal swaps:
// connections open keep the one they began with, the next handshake gets
// the new one.
type liveCert struct {
	p atomic.Pointer[tls.Certificate]
}

// GetCertificate is for a tls.Config of a server.
func (c *liveCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.p.Load(), nil
}

// GetClientCertificate is for a tls.Config of a client.
func (c *liveCert) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.p.Load(), nil
}

// certRenewer renews a bundle's leaves while the server runs and hands
// the renewed ones to their consumers.
type certRenewer struct {
	bundle *pki.Bundle
	log    *slog.Logger

	mu sync.Mutex
	// live are the certificates handed out as liveCerts, by leaf name;
	// hooks the other consumers (the kubeconfig).
	live  map[string]*liveCert
	hooks map[string]func() error
	// pending are renewed leaves whose hook has yet to succeed: tried
	// again at the next check.
	pending map[string]bool
	// trustHooks run when the CA bundle changes (a rotation, its end);
	// trustPending when one has yet to succeed. trust is the bundle the
	// hooks last saw.
	trustHooks   []func() error
	trustPending bool
	trust        []byte
	// kick wakes Start to recompute its wait (after a rotation).
	kick chan struct{}

	renewals *prometheus.CounterVec
	errors   prometheus.Counter
}

var certExpiryDesc = prometheus.NewDesc("skiff_certificate_expiration_seconds",
	"Seconds until the certificate expires, for each certificate skiff issues and renews (name is its file below <data-dir>/tls without .crt).",
	[]string{"name"}, nil)

// newCertRenewer registers the certificate metrics on reg (nil: none).
func newCertRenewer(b *pki.Bundle, reg prometheus.Registerer, lg *slog.Logger) *certRenewer {
	r := &certRenewer{
		bundle:  b,
		log:     lg.With("component", "certificates"),
		live:    map[string]*liveCert{},
		hooks:   map[string]func() error{},
		pending: map[string]bool{},
		trust:   b.TrustPEM(),
		kick:    make(chan struct{}, 1),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_certificate_renewals_total",
			Help: "Certificates renewed (or found replaced on disk) while the server ran, by name.",
		}, []string{"name"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_certificate_renewal_errors_total",
			Help: "Failed certificate renewals and failures to hand a renewed certificate to its consumer.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.renewals, r.errors, certExpiry{b})
	}
	return r
}

// certExpiry exports skiff_certificate_expiration_seconds, computed at
// each scrape.
type certExpiry struct{ b *pki.Bundle }

func (certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (e certExpiry) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, l := range e.b.Leaves() {
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, l.NotAfter.Sub(now).Seconds(), l.Name)
	}
}

// liveCert returns the named leaf's certificate, kept current.
func (r *certRenewer) liveCert(name string) (*liveCert, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.live[name]; ok {
		return c, nil
	}
	cert, err := r.bundle.TLSCertificate(name)
	if err != nil {
		return nil, err
	}
	c := &liveCert{}
	c.p.Store(cert)
	r.live[name] = c
	return c, nil
}

// onTrustChange has f run after the CA bundle changed.
func (r *certRenewer) onTrustChange(f func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trustHooks = append(r.trustHooks, f)
}

// onRenew has f run after the named leaf was renewed (one f a leaf).
func (r *certRenewer) onRenew(name string, f func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks[name] = f
}

// Start renews until ctx ends: when the first leaf falls due, and at
// least every pki.Bundle.NextCheck interval. It returns when ctx ends.
func (r *certRenewer) Start(ctx context.Context) error {
	t := time.NewTimer(r.wait(time.Now(), nil))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			t.Stop()
		case <-t.C:
		}
		err := r.check(time.Now())
		t.Reset(r.wait(time.Now(), err))
	}
}

// wait is how long to wait for the next check: until the bundle's next
// check, but after a failure no sooner than its interval would bring, so
// that a leaf that can not be written is not retried in a tight loop.
func (r *certRenewer) wait(now time.Time, failed error) time.Duration {
	d := r.bundle.NextCheck(now).Sub(now)
	if failed != nil {
		d = max(d, min(r.bundle.Validity()/10, time.Hour))
	}
	return max(d, time.Second)
}

// check renews what is due and hands it on; it returns what failed.
func (r *certRenewer) check(now time.Time) error {
	renewed, err := r.bundle.Renew(now)
	if err != nil {
		r.errors.Inc()
		r.log.Error("certificate renewal failed", "err", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rn := range renewed {
		r.renewals.WithLabelValues(rn.Name).Inc()
		r.log.Info("certificate renewed", "name", rn.Name, "reason", rn.Reason,
			"serial", rn.Cert.SerialNumber.Text(16), "notAfter", rn.Cert.NotAfter.UTC().Format(time.RFC3339))
		if c, ok := r.live[rn.Name]; ok {
			cert, cerr := r.bundle.TLSCertificate(rn.Name)
			if cerr != nil {
				err = errors.Join(err, cerr)
				r.errors.Inc()
				continue
			}
			c.p.Store(cert)
		}
		r.pending[rn.Name] = true
	}
	for name := range r.pending {
		hook, ok := r.hooks[name]
		if !ok {
			delete(r.pending, name)
			continue
		}
		if herr := hook(); herr != nil {
			herr = fmt.Errorf("after renewing %s: %w", name, herr)
			r.errors.Inc()
			r.log.Error("handing on a renewed certificate failed", "name", name, "err", herr)
			err = errors.Join(err, herr)
			continue
		}
		delete(r.pending, name)
	}
	return errors.Join(err, r.handOnTrust())
}

// handOnTrust hands a changed CA bundle to the live certificates (whose
// chains change with it) and the trust hooks. r.mu is held.
func (r *certRenewer) handOnTrust() error {
	if now := r.bundle.TrustPEM(); !bytes.Equal(now, r.trust) {
		r.trust = now
		r.trustPending = true
		st := r.bundle.CA()
		attrs := []any{"ca", st.Current.Subject.CommonName, "trusted", len(st.Trusted)}
		if !st.OverlapEnds.IsZero() {
			attrs = append(attrs, "overlapEnds", st.OverlapEnds.UTC().Format(time.RFC3339))
		}
		r.log.Info("cluster CA bundle changed", attrs...)
		for name, c := range r.live {
			cert, err := r.bundle.TLSCertificate(name)
			if err != nil {
				return err
			}
			c.p.Store(cert)
		}
	}
	if !r.trustPending {
		return nil
	}
	var err error
	for _, hook := range r.trustHooks {
		err = errors.Join(err, hook())
	}
	if err != nil {
		r.errors.Inc()
		r.log.Error("handing on the CA bundle failed", "err", err)
		return err
	}
	r.trustPending = false
	return nil
}

// rotateCA replaces the cluster CA (see pki.Bundle.RotateCA), reissues
// the leaves and hands them on at once.
func (r *certRenewer) rotateCA(overlap time.Duration) (pki.CAStatus, error) {
	now := time.Now()
	st, err := r.bundle.RotateCA(now, overlap)
	if err != nil {
		return st, err
	}
	r.log.Info("cluster CA rotated", "ca", st.Current.Subject.CommonName, "overlapEnds", st.OverlapEnds.UTC().Format(time.RFC3339))
	err = r.check(now)
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return st, err
}

// restConfig is a client of the API server at host, in process, as the
// named leaf: its certificate is read per handshake, and the server's is
// verified against the trust in force at that moment, so that neither a
// renewal nor a CA rotation needs the client rebuilt. (client-go takes
// its CA once, when it builds a transport.)
func (r *certRenewer) restConfig(host, leaf, userAgent string) (*rest.Config, error) {
	cert, err := r.liveCert(leaf)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, err
	}
	serverName := u.Hostname()
	tc := &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: cert.GetClientCertificate,
		// Verified by VerifyConnection instead, against the pool in
		// force per handshake.
		InsecureSkipVerify: true, //nolint:gosec // see VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return pki.VerifyServer(cs, serverName, r.bundle.TrustPool())
		},
	}
	// A renewed certificate is used from the next handshake on, and the
	// server checks a connection's certificate per request (it would
	// refuse the old one once it expires): so, as client-go does when
	// its certificate files change, the client's connections are closed
	// after each renewal and it connects again.
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	r.onRenew(leaf, func() error { dialer.CloseAll(); return nil })
	t := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 25, DialContext: dialer.DialContext})
	return &rest.Config{Host: host, Transport: t, UserAgent: userAgent}, nil
}
