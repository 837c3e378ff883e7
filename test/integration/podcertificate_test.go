package integration

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/kubelet/podcert"
	"github.com/skiff-io/skiff/internal/kubelet/volume"
	"github.com/skiff-io/skiff/test/framework"
)

// A pod's podCertificate projection gets a certificate from a signer
// through a PodCertificateRequest that the node makes, under
// --authorization-mode=Node,RBAC and NodeRestriction: the kubelet's pod
// certificate manager and volume manager run in-process as node "a"
// (everything but containers), a small signer issues as an admin, and the
// projected volume ends up holding a key and a chain that verifies
// against the signer's ClusterTrustBundle, projected beside it. The node
// may not ask for another node's pod, list other nodes' requests or sign;
// a user may write a request's status only with "sign" on the signer.
func TestPodCertificateProjection(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithAuthorization("Node,RBAC"))
	ctx := ctxT(t)
	admin := c.Client
	const signer, ns = "example.com/pod-identity", "team"
	mustNamespace(t, admin, ns)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "runner"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for _, n := range []string{"a", "b"} {
		if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-" + n}, Spec: corev1.PodSpec{
			NodeName: n, ServiceAccountName: "runner",
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{
					{PodCertificate: &corev1.PodCertificateProjection{SignerName: signer, KeyType: "ED25519", CredentialBundlePath: "creds.pem",
						UserAnnotations: map[string]string{framework.PodCertificatePathAnnotation: "/custom"}}},
					{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{SignerName: ptr.To(signer), LabelSelector: &metav1.LabelSelector{}, Path: "ca.pem"}},
				}}}}},
		}}
		created, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods[n] = created
	}
	framework.StartPodCertificateSigner(t, admin, signer)
	// Every goroutine started here ends before the test does.
	runCtx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	t.Cleanup(func() { stop(); running.Wait() })

	nodeA := clientWithCert(t, c, "system:node:a", "system:nodes")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	certs := podcert.New(nodeA, "a", log)
	woken := make(chan struct{}, 16)
	certs.SetNotify(func(uid types.UID) {
		if uid == pods["a"].UID {
			select {
			case woken <- struct{}{}:
			default:
			}
		}
	})
	running.Add(1)
	go func() { defer running.Done(); _ = certs.Start(runCtx) }()
	root := t.TempDir()
	volumes := volume.New(root, volume.NewClientSources(nodeA), nil, log)
	volumes.SetPodCertificates(certs)
	pod := pods["a"]
	t.Cleanup(func() { _ = volumes.TearDown(pod.UID) })

	// The first SetUp asks; the pod is woken when the signer answers.
	if err := volumes.SetUp(ctx, pod); err == nil || !strings.Contains(err.Error(), podcert.ErrNotIssued.Error()) {
		t.Fatalf("first SetUp: %v, want %q", err, podcert.ErrNotIssued)
	}
	select {
	case <-woken:
	case <-time.After(20 * time.Second):
		t.Fatal("the pod was never woken by its request")
	}
	var setUpErr error
	framework.Eventually(t, 20*time.Second, func() bool {
		setUpErr = volumes.SetUp(ctx, pod)
		return setUpErr == nil
	})

	dir := filepath.Join(root, string(pod.UID), "volumes", "kubernetes.io~projected", "tls")
	creds, err := os.ReadFile(filepath.Join(dir, "creds.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyBlock, rest := pem.Decode(creds)
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
		t.Fatalf("creds.pem does not start with a private key")
	}
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leafBlock, _ := pem.Decode(rest)
	if leafBlock == nil {
		t.Fatal("creds.pem holds no certificate after the key")
	}
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(ed25519.PrivateKey).Public().(ed25519.PublicKey).Equal(leaf.PublicKey) {
		t.Error("the key is not the certificate's")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("ca.pem holds no certificate: %q", caPEM)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the certificate does not verify against the signer's trust bundle: %v", err)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 24*time.Hour {
		t.Errorf("lifetime %v, want the default 24h", life)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].Path != "/custom" {
		t.Errorf("URIs %v, want the path from the user annotation", leaf.URIs)
	}

	// The request as stored: made for the pod, by the node, defaulted.
	reqs, err := admin.CertificatesV1().PodCertificateRequests(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs.Items) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs.Items))
	}
	r := reqs.Items[0]
	if r.Spec.PodUID != pod.UID || r.Spec.NodeName != "a" || ptr.Deref(r.Spec.MaxExpirationSeconds, 0) != 86400 || len(r.OwnerReferences) != 1 {
		t.Errorf("request spec %+v, owners %v", r.Spec, r.OwnerReferences)
	}
	// Another sync changes nothing and asks for nothing.
	if err := volumes.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(filepath.Join(dir, "creds.pem"))
	if err != nil || !bytes.Equal(again, creds) {
		t.Errorf("a second SetUp changed the credentials (%v)", err)
	}
	if reqs, _ := admin.CertificatesV1().PodCertificateRequests(ns).List(ctx, metav1.ListOptions{}); len(reqs.Items) != 1 {
		t.Errorf("%d requests after a second SetUp, want 1", len(reqs.Items))
	}

	// What the node may not do.
	theirs := r.DeepCopy()
	theirs.ObjectMeta = metav1.ObjectMeta{GenerateName: "req-"}
	theirs.Spec.PodName, theirs.Spec.PodUID = pods["b"].Name, pods["b"].UID
	if _, err := nodeA.CertificatesV1().PodCertificateRequests(ns).Create(ctx, theirs, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a request for another node's pod: %v, want 403", err)
	}
	if _, err := nodeA.CertificatesV1().PodCertificateRequests(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing every request: %v, want 403", err)
	}
	if _, err := nodeA.CertificatesV1().PodCertificateRequests(ns).UpdateStatus(ctx, &r, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("writing a status: %v, want 403", err)
	}

	// Two pods' credentials make a mutual TLS connection, each trusting
	// the other through its projected trust bundle (what upstream's
	// conformance test does between an mtlsserver and an mtlsclient).
	client := pods["a"].DeepCopy()
	client.ObjectMeta = metav1.ObjectMeta{Name: "client"}
	client.Spec.Volumes[0].Projected.Sources[0].PodCertificate.UserAnnotations = nil
	if client, err = admin.CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = volumes.TearDown(client.UID) })
	framework.Eventually(t, 20*time.Second, func() bool { return volumes.SetUp(ctx, client) == nil })
	clientCreds, err := os.ReadFile(filepath.Join(root, string(client.UID), "volumes", "kubernetes.io~projected", "tls", "creds.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got := mutualTLS(t, creds, clientCreds, caPEM, "server."+ns+".svc"); got != "spiffe://cluster.local/ns/team/sa/runner" {
		t.Errorf("the server saw the client as %q, want its spiffe URI", got)
	}

	// A user who may write the status but not sign gets upstream's 422.
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pcr-status"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"podcertificaterequests", "podcertificaterequests/status"},
			Verbs: []string{"get", "create", "update"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pcr-status"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "pcr-status"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "mallory"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mallory := clientWithCert(t, c, "mallory")
	pending := r.DeepCopy()
	pending.ObjectMeta = metav1.ObjectMeta{Name: "pending"}
	pending.Spec.SignerName = "example.com/nobody"
	if pending, err = admin.CertificatesV1().PodCertificateRequests(ns).Create(ctx, pending, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pending.Status.Conditions = []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeDenied, Status: metav1.ConditionTrue,
		Reason: "No", Message: "no", LastTransitionTime: metav1.Now()}}
	framework.Eventually(t, 10*time.Second, func() bool {
		_, err = mallory.CertificatesV1().PodCertificateRequests(ns).UpdateStatus(ctx, pending, metav1.UpdateOptions{})
		return !apierrors.IsForbidden(err) // until RBAC sees the binding
	})
	if want := `User "mallory" is not permitted to "sign" for signer "example.com/nobody"`; !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("status without sign: %v, want 422 %q", err, want)
	}
}

// mutualTLS connects a client with clientCreds to a server with
// serverCreds (each a PEM key followed by its chain), both trusting
// caPEM, the client asking for serverName, and returns the URI the
// server saw in the client's certificate.
func mutualTLS(t *testing.T, serverCreds, clientCreds, caPEM []byte, serverName string) string {
	t.Helper()
	serverCert, err := tls.X509KeyPair(serverCreds, serverCreds)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.X509KeyPair(clientCreds, clientCreds)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			return
		}
		peer := tc.ConnectionState().PeerCertificates
		if len(peer) > 0 && len(peer[0].URIs) > 0 {
			_, _ = io.WriteString(tc, peer[0].URIs[0].String())
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{Certificates: []tls.Certificate{clientCert},
		RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatalf("mutual TLS handshake: %v", err)
	}
	got, err := io.ReadAll(conn)
	conn.Close()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}
