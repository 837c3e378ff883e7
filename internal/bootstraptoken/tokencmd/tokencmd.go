// Package tokencmd is `skiff token create|list|delete`: kubeadm's token
// commands, through client-go as the user of a kubeconfig (by default the
// server's admin.kubeconfig). create prints a join string
// (bootstraptoken.Join) that names the cluster CA by its hash.
package tokencmd

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is what the token commands are given.
type Config struct {
	// DataDir is the server's data dir; its admin.kubeconfig is used
	// unless Kubeconfig names another.
	DataDir    string
	Kubeconfig string

	// For create: the token (empty: a random one), how long it lives
	// (0: for ever), its description and extra groups.
	Token       string
	TTL         time.Duration
	Description string
	Groups      []string

	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// client is a connection to the server that remembers the serving
// certificate it last saw.
type client struct {
	cs kubernetes.Interface
	// caPEM is the kubeconfig's CA bundle; empty when it names none.
	caPEM []byte

	mu   sync.Mutex
	leaf *x509.Certificate // the server's certificate, once a request has gone through
}

func (cfg Config) connect() (*client, error) {
	path := cfg.Kubeconfig
	if path == "" {
		path = filepath.Join(cfg.DataDir, "admin.kubeconfig")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	c := &client{caPEM: rc.TLSClientConfig.CAData}
	if len(c.caPEM) == 0 && rc.TLSClientConfig.CAFile != "" {
		if c.caPEM, err = os.ReadFile(rc.TLSClientConfig.CAFile); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: certificate-authority: %w", path, err)
		}
	}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
				c.mu.Lock()
				c.leaf = resp.TLS.PeerCertificates[0]
				c.mu.Unlock()
			}
			return resp, err
		})
	})
	if c.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, nil
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Where kubeadm publishes the cluster's CA for joining nodes (the
// server keeps it: internal/server/clusterinfo.go).
const (
	clusterInfoNamespace = metav1.NamespacePublic
	clusterInfoName      = "cluster-info"
	clusterInfoKey       = "kubeconfig"
)

// caBundle returns the cluster's CA certificates: the kubeconfig's
// certificate-authority(-data), or, when it has none (a kubeconfig that
// trusts the system's roots, or skips verification),
// kube-public/cluster-info's.
func (c *client) caBundle(ctx context.Context) ([]*x509.Certificate, error) {
	caPEM, from := c.caPEM, "the kubeconfig's certificate-authority"
	if len(caPEM) == 0 {
		from = "configmap " + clusterInfoNamespace + "/" + clusterInfoName
		cm, err := c.cs.CoreV1().ConfigMaps(clusterInfoNamespace).Get(ctx, clusterInfoName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("the kubeconfig names no CA, and reading %s: %w", from, err)
		}
		info, err := clientcmd.Load([]byte(cm.Data[clusterInfoKey]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		for _, cl := range info.Clusters {
			caPEM = append(caPEM, cl.CertificateAuthorityData...)
		}
	}
	certs, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", from)
	}
	return certs, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bytes.TrimSpace(data); len(rest) > 0; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// signingCA is the CA of bundle that signed the serving certificate leaf:
// the CA a join string names. Without leaf (no TLS seen), or when none of
// bundle signed it directly, it is the first: the server writes the CA
// that signs first in every bundle it hands out, the new one during a
// rotation's overlap.
func signingCA(bundle []*x509.Certificate, leaf *x509.Certificate) *x509.Certificate {
	if leaf != nil {
		for _, ca := range bundle {
			if leaf.CheckSignatureFrom(ca) == nil {
				return ca
			}
		}
	}
	return bundle[0]
}
