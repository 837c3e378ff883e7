package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
)

// TLS bootstrap, as upstream's kubelet does it: a node joining with a
// bootstrap token (in a join string that also names the cluster CA's hash)
// verifies the server's CA against the hash before it sends anything, then
// files a CertificateSigningRequest for system:node:<name> with the
// token's credentials; the server's csrapproving controller approves it and
// csrsigning signs it. From then on the node uses that client certificate.
// The certificate and its key are kept in the agent's data dir, so a
// restart reuses them while they have more than a fifth of their life
// left.

// Files of the node's client credentials, below the agent's state dir.
const (
	clientCertFile = "kubelet-client.crt"
	clientKeyFile  = "kubelet-client.key"
)

// csrWait bounds how long the agent waits for its request to be approved
// and signed.
const csrWait = 5 * time.Minute

// verifiedCA fetches kube-public/cluster-info without verifying the server,
// and returns its CA bundle only when a certificate in it has the join
// string's hash.
func verifiedCA(ctx context.Context, server, caHash string) ([]byte, error) {
	servers, err := newAPIServers(server, "", nil)
	if err != nil {
		return nil, err
	}
	return fetchVerifiedCA(ctx, servers, caHash)
}

// fetchVerifiedCA is verifiedCA through servers.
func fetchVerifiedCA(ctx context.Context, servers *apiServers, caHash string) ([]byte, error) {
	caPEM, err := fetchCA(ctx, servers, "")
	if err != nil {
		return nil, err
	}
	return caPEM, checkCA(caPEM, caHash)
}

// checkCA says whether a certificate of the PEM bundle caPEM has the hash.
func checkCA(caPEM []byte, caHash string) error {
	var certs []*x509.Certificate
	for rest := caPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
	if err := bootstraptoken.VerifyCA(caHash, certs); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// nodeClientCert makes sure dir holds the node's client certificate and
// key: the ones kept there if they are still good, else a new pair from a
// CSR filed as the bootstrap token's user. It returns the two files' paths.
func nodeClientCert(ctx context.Context, servers *apiServers, caPEM []byte, token, node, dir string, log *slog.Logger) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, clientCertFile), filepath.Join(dir, clientKeyFile)
	if keptClientCert(certPath, keyPath, caPEM, node) {
		return certPath, keyPath, nil
	}
	client, err := kubernetes.NewForConfig(servers.config(&rest.Config{Host: servers.server, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, UserAgent: "skiff-agent/tls-bootstrap"}))
	if err != nil {
		return "", "", err
	}
	if err := requestClientCert(ctx, client, node, certPath, keyPath, log); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// requestClientCert files a CSR for the node's client certificate with
// client, waits until it is issued and writes the key and the certificate
// to keyPath and certPath.
func requestClientCert(ctx context.Context, client kubernetes.Interface, node, certPath, keyPath string, log *slog.Logger) error {
	err := requestCert(ctx, client, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
	}, certificatesv1.KubeAPIServerClientKubeletSignerName, certificatesv1.UsageClientAuth, certPath, keyPath, log)
	if apierrors.IsUnauthorized(err) {
		return errors.New("agent: the server refused the join token (unknown, expired or deleted)")
	}
	return err
}

// requestCert files a CSR for tmpl to signer with client, waits until it
// is issued and writes the key and the certificate to keyPath and
// certPath (the key first: a reader of the pair sees the old pair or the
// new one once the certificate is in place). An error from filing it is
// returned as the API's (callers tell 401 apart).
func requestCert(ctx context.Context, client kubernetes.Interface, tmpl *x509.CertificateRequest, signer string, usage certificatesv1.KeyUsage, certPath, keyPath string, log *slog.Logger) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return err
	}
	csr, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: signer,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, usage},
		},
	}, metav1.CreateOptions{})
	if apierrors.IsUnauthorized(err) {
		return err
	}
	if err != nil {
		return fmt.Errorf("agent: filing the node's certificate request: %w", err)
	}
	log.Info("certificate request filed, waiting for approval", "csr", csr.Name, "signer", signer)
	certPEM, err := awaitCertificate(ctx, client, csr.Name)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	// The pair must match whenever both are read: write both aside, then
	// rename the key and the certificate in turn; a reader that sees a
	// mismatched pair in between (client-go reloads every few minutes)
	// keeps the pair it had.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM); err != nil {
		return err
	}
	log.Info("node certificate issued", "csr", csr.Name, "signer", signer)
	return nil
}

// rotateClientCert renews the node's client certificate while the agent
// runs, as upstream's kubelet does: at a random point between 70 % and 90 %
// of its lifetime it files a CSR with the current certificate (approved as
// a renewal of the node's own certificate, the selfnodeclient check) and
// replaces the files, which client-go reloads. A failed attempt is retried
// after a back-off, up to the certificate's expiry and beyond. newClient
// makes a client that authenticates with the current files.
func rotateClientCert(ctx context.Context, newClient func() (kubernetes.Interface, error), node, certPath, keyPath string, log *slog.Logger) {
	rotateCert(ctx, newClient, certPath, keyPath, "client", func(ctx context.Context, c kubernetes.Interface) error {
		return requestClientCert(ctx, c, node, certPath, keyPath, log)
	}, log)
}

// rotateCert calls renew at a random point between 70 % and 90 % of the
// life of the certificate in certPath, again after each renewal, and
// after a back-off when it fails, until ctx ends.
func rotateCert(ctx context.Context, newClient func() (kubernetes.Interface, error), certPath, keyPath, what string,
	renew func(context.Context, kubernetes.Interface) error, log *slog.Logger) {
	retry := time.Second
	for {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		wait := retry
		if err == nil && pair.Leaf != nil {
			life := pair.Leaf.NotAfter.Sub(pair.Leaf.NotBefore)
			at := pair.Leaf.NotBefore.Add(life*7/10 + time.Duration(mrand.Int64N(int64(life/5)+1)))
			wait = max(time.Until(at), 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		client, err := newClient()
		if err == nil {
			err = renew(ctx, client)
		}
		if err == nil {
			retry = time.Second
			continue
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("renewing a node certificate failed; retrying", "certificate", what, "err", err, "in", retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, 5*time.Minute)
	}
}

// fileClient is a client authenticating with the node's certificate
// files, for the renewals.
func fileClient(servers *apiServers, caPEM []byte, certPath, keyPath string) func() (kubernetes.Interface, error) {
	return func() (kubernetes.Interface, error) {
		return kubernetes.NewForConfig(servers.config(&rest.Config{Host: servers.server,
			TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertFile: certPath, KeyFile: keyPath},
			UserAgent:       "skiff-agent/certificate-rotation"}))
	}
}

// awaitCertificate polls the CSR until it is issued, denied or failed.
func awaitCertificate(ctx context.Context, client kubernetes.Interface, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, csrWait)
	defer cancel()
	for {
		csr, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range csr.Status.Conditions {
				if c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
					return nil, fmt.Errorf("agent: certificate request %s %s: %s: %s", name, c.Type, c.Reason, c.Message)
				}
			}
			if len(csr.Status.Certificate) > 0 {
				return csr.Status.Certificate, nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("agent: certificate request %s not issued within %v: %w", name, csrWait, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// keptClientCert says whether the pair kept on disk is this node's,
// chains to the cluster CA and has more than a fifth of its life left.
func keptClientCert(certPath, keyPath string, caPEM []byte, node string) bool {
	return keptCert(certPath, keyPath, caPEM, node, x509.ExtKeyUsageClientAuth) != nil
}

// keptCert is the pair kept on disk when it is this node's, for usage,
// chains to the cluster CA and has more than a fifth of its life left;
// else nil.
func keptCert(certPath, keyPath string, caPEM []byte, node string, usage x509.ExtKeyUsage) *tls.Certificate {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil || pair.Leaf == nil {
		return nil
	}
	leaf := pair.Leaf
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if leaf.Subject.CommonName != "system:node:"+node || time.Until(leaf.NotAfter) < life/5 {
		return nil
	}
	return &pair
}

// writeFileAtomic writes data to path (mode 0600) through a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
