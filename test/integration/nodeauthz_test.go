package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	kubeletserver "github.com/skiff-io/skiff/internal/kubelet/server"
	"github.com/skiff-io/skiff/test/framework"
)

// With --authorization-mode=Node,RBAC a kubelet reads the secrets of the
// pods bound to its node and no others, writes only its own Node and the
// status of its own pods; its kubelet API lets in the API server's
// kubelet client and refuses a caller the API server does not authorize.
func TestNodeAuthorization(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithAuthorization("Node,RBAC"))
	ctx := ctxT(t)
	admin := c.Client
	mustNamespace(t, admin, "team")
	for _, n := range []string{"a", "b"} {
		if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().Secrets("team").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret-" + n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-" + n}, Spec: corev1.PodSpec{
			NodeName:   n,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes:    []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "secret-" + n}}}},
		}}
		if _, err := admin.CoreV1().Pods("team").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nodeA := clientWithCert(t, c, "system:node:a", "system:nodes")

	framework.Eventually(t, 10*time.Second, func() bool {
		_, err := nodeA.CoreV1().Secrets("team").Get(ctx, "secret-a", metav1.GetOptions{})
		return err == nil
	})
	// A pod created unbound enters the graph when it is bound: the graph
	// watches only bound pods, and the binding arrives as an addition.
	late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-late"}, Spec: corev1.PodSpec{
		NodeSelector: map[string]string{"no-such-label": "x"}, // the scheduler leaves it
		Containers:   []corev1.Container{{Name: "c", Image: "busybox"}},
		Volumes:      []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "secret-late"}}}},
	}}
	if _, err := admin.CoreV1().Secrets("team").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret-late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Pods("team").Create(ctx, late, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeA.CoreV1().Secrets("team").Get(ctx, "secret-late", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node a reading the secret of an unbound pod: %v, want 403", err)
	}
	if err := admin.CoreV1().Pods("team").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "pod-late"},
		Target: corev1.ObjectReference{Kind: "Node", Name: "a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() bool {
		_, err := nodeA.CoreV1().Secrets("team").Get(ctx, "secret-late", metav1.GetOptions{})
		return err == nil
	})

	_, err := nodeA.CoreV1().Secrets("team").Get(ctx, "secret-b", metav1.GetOptions{})
	const wantSecret = `secrets "secret-b" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" in the namespace "team": no relationship found between node 'a' and this object`
	if !apierrors.IsForbidden(err) || err.Error() != wantSecret {
		t.Fatalf("node a reading node b's secret: %v, want 403 %q", err, wantSecret)
	}
	if _, err := nodeA.CoreV1().Secrets("team").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node a listing secrets: %v, want 403", err)
	}

	// Its own Node status, yes; node b, no.
	// The node controllers write the Node too (its podCIDR, taints): read
	// again on a conflict, as a kubelet does.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		own, err := nodeA.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		own.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
		_, err = nodeA.CoreV1().Nodes().UpdateStatus(ctx, own, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("node a updating its own status: %v", err)
	}
	other, err := nodeA.CoreV1().Nodes().Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other.Labels = map[string]string{"stolen": "yes"}
	_, err = nodeA.CoreV1().Nodes().Update(ctx, other, metav1.UpdateOptions{})
	const wantNode = `nodes "b" is forbidden: node "a" is not allowed to modify node "b"`
	if !apierrors.IsForbidden(err) || err.Error() != wantNode {
		t.Fatalf("node a updating node b: %v, want 403 %q", err, wantNode)
	}
	podB, err := nodeA.CoreV1().Pods("team").Get(ctx, "pod-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	podB.Status.Phase = corev1.PodFailed
	if _, err := nodeA.CoreV1().Pods("team").UpdateStatus(ctx, podB, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node a updating node b's pod status: %v, want 403", err)
	}
	if err := nodeA.CoreV1().Pods("team").Delete(ctx, "pod-b", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node a deleting node b's pod: %v, want 403", err)
	}

	// TokenReview, as a kubelet asks it.
	if _, err := admin.CoreV1().ServiceAccounts("team").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts("team").CreateToken(ctx, "app", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	review, err := nodeA.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:team:app" || len(review.Status.Audiences) != 1 {
		t.Fatalf("token review of a service account token: %+v", review.Status)
	}
	review, err = nodeA.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
		Token: tr.Status.Token, Audiences: []string{"https://elsewhere.example"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if review.Status.Authenticated || review.Status.Error == "" {
		t.Fatalf("token review for another audience: %+v, want unauthenticated with an error", review.Status)
	}
	if _, err := admin.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{}, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
		t.Fatalf("token review without a token: %v, want 400", err)
	}

	// The kubelet API of node a, authorizing through the API server with
	// node a's credentials.
	base := startKubeletAPI(t, c, "a", nodeA)
	get := func(cert *tls.Certificate, token string) (int, string) {
		t.Helper()
		pool := x509.NewCertPool()
		caPEM, _ := os.ReadFile(filepath.Join(c.DataDir, "tls", "ca.crt"))
		pool.AppendCertsFromPEM(caPEM)
		tc := &tls.Config{RootCAs: pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: tc}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/pods", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	apiserverClient, err := tls.LoadX509KeyPair(filepath.Join(c.DataDir, "tls", "apiserver-kubelet-client.crt"), filepath.Join(c.DataDir, "tls", "apiserver-kubelet-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(&apiserverClient, ""); code != http.StatusOK {
		t.Fatalf("the API server's kubelet client: %d %s, want 200", code, body)
	}
	eve := issueClientCert(t, c.DataDir, "eve")
	if code, body := get(&eve, ""); code != http.StatusForbidden || body != "Forbidden (user=eve, verb=get, resource=nodes, subresource=proxy)" {
		t.Fatalf("eve without nodes/proxy: %d %q, want 403", code, body)
	}
	if code, body := get(nil, tr.Status.Token); code != http.StatusForbidden || body != "Forbidden (user=system:serviceaccount:team:app, verb=get, resource=nodes, subresource=proxy)" {
		t.Fatalf("a service account token without nodes/proxy: %d %q, want 403", code, body)
	}
	if code, _ := get(nil, ""); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
}

// clientWithCert is a client of c with a certificate for user cn in
// groups orgs, signed by the cluster CA.
func clientWithCert(t *testing.T, c *framework.Cluster, cn string, orgs ...string) kubernetes.Interface {
	t.Helper()
	cert := issueClientCert(t, c.DataDir, cn, orgs...)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.CertData, cfg.KeyData = certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// issueClientCert signs a client certificate for user cn in groups orgs
// with the cluster CA in dataDir.
func issueClientCert(t *testing.T, dataDir, cn string, orgs ...string) tls.Certificate {
	t.Helper()
	return issueCert(t, dataDir, pkix.Name{CommonName: cn, Organization: orgs}, x509.ExtKeyUsageClientAuth, nil)
}

func issueCert(t *testing.T, dataDir string, subject pkix.Name, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(filepath.Join(dataDir, "tls", "ca.crt"), filepath.Join(dataDir, "tls", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// noPods is a kubelet with no pods and no runtime: enough for GET /pods.
type noPods struct{ kubeletserver.Runtime }

func (noPods) Pods() []*corev1.Pod { return nil }
func (noPods) Container(_, _, _ string, _ bool) (string, string, error) {
	return "", "", kubeletserver.ErrNotFound
}
func (noPods) SandboxID(_, _ string) (string, error) { return "", kubeletserver.ErrNotFound }

// startKubeletAPI serves node's kubelet API on a loopback port, with the
// cluster CA for client certificates and client for its reviews; it
// returns the base URL.
func startKubeletAPI(t *testing.T, c *framework.Cluster, node string, client kubernetes.Interface) string {
	t.Helper()
	serving := issueCert(t, c.DataDir, pkix.Name{CommonName: node}, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(c.DataDir, "tls", "ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("cluster CA: %v", err)
	}
	srv, err := kubeletserver.New(kubeletserver.Config{
		Addr: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{serving}, ClientCAs: pool},
		NodeName: node, Auth: kubeletserver.APIReviews{Client: client}, Pods: noPods{}, Runtime: noPods{},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kubelet server: %v", err)
		}
	})
	return "https://127.0.0.1:" + strconv.Itoa(srv.Port())
}
