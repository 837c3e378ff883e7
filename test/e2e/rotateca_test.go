package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// testRotateCA (issue 13): `skiff certificate rotate-ca` replaces the
// cluster CA of a running server, with an overlap in which both CAs are
// trusted, and no request of a client that follows the CA bundle fails:
//
//   - during the overlap, a client that holds only the old CA and a
//     client certificate of the old CA (one handed out before) still
//     works: the server's certificate comes with the new CA cross-signed
//     by the old one; the admin kubeconfig, kube-root-ca.crt and
//     cluster-info carry both CAs; a second rotation is refused;
//   - after it, that client is refused both ways, only the new CA is
//     published, and the node (whose clients run in the server's
//     process) stays Ready with the API server still reaching its kubelet.
//
// It runs on TestCertificateRenewal's cluster, whose leaves also renew
// every minute meanwhile.
func testRotateCA(t *testing.T, c *framework.Cluster, withNode bool) {
	const overlap = 30 * time.Second
	tlsDir := filepath.Join(c.DataDir, "tls")
	oldCAPEM, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	oldRoots := x509.NewCertPool()
	oldRoots.AppendCertsFromPEM(oldCAPEM)
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
	host := fmt.Sprintf("https://%s", apiAddr)

	// A credential of the old CA, as a user or a remote agent holds it.
	legacyCert, legacyKey := issueWithCAFiles(t, filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "ca.key"), "legacy-admin", "system:masters")
	legacy := func(roots []byte) kubernetes.Interface {
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: host, Timeout: 10 * time.Second,
			TLSClientConfig: rest.TLSClientConfig{CAData: roots, CertData: legacyCert, KeyData: legacyKey}})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	legacyOld := legacy(oldCAPEM)
	listNS := func(cs kubernetes.Interface) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
		return err
	}
	if err := listNS(legacyOld); err != nil {
		t.Fatalf("the old CA's client before the rotation: %v", err)
	}

	// Load throughout, as clients that follow the CA bundle: kubectl on
	// the admin kubeconfig, and client-go built from it afresh.
	var (
		mu       sync.Mutex
		failures []string
		requests int
	)
	record := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), what, err))
		}
	}
	k := kubectl{t: t, c: c}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			out, err := k.run("", "get", "ns", "kube-system", "-o", "name")
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
			record("kubectl get ns", err)
			if withNode {
				record("api server to kubelet (nodes/proxy)", kubeletHealthz(c.Kubeconfig))
			}
			time.Sleep(time.Second)
		}
	}()

	out, err := exec.Command(skiffBin, "certificate", "rotate-ca", "--data-dir", c.DataDir, "--overlap", overlap.String(), "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("skiff certificate rotate-ca: %v: %s", err, out)
	}
	var st server.CertificateStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("rotate-ca -o json: %v: %s", err, out)
	}
	if len(st.Trusted) != 2 || st.OverlapEnds == nil || st.Trusted[0].Name != st.CA.Name {
		t.Fatalf("after rotate-ca: %s", out)
	}
	t.Logf("new CA %s; both trusted until %s", st.CA.Name, st.OverlapEnds.Format("15:04:05"))
	overlapEnds := *st.OverlapEnds
	out, err = exec.Command(skiffBin, "certificate", "rotate-ca", "--data-dir", c.DataDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "409 Conflict: a CA rotation is in progress") {
		t.Errorf("a second rotate-ca during the overlap: %v: %s", err, out)
	}

	newCAPEM := pemOfFirstCert(t, filepath.Join(tlsDir, "ca.crt"))
	newRoots := x509.NewCertPool()
	newRoots.AppendCertsFromPEM(newCAPEM)

	// The overlap.
	if err := listNS(legacyOld); err != nil {
		t.Errorf("during the overlap, the client of the old CA: %v", err)
	}
	for name, roots := range map[string]*x509.CertPool{"old": oldRoots, "new": newRoots} {
		if _, err := dialVerify(apiAddr, roots, time.Now()); err != nil {
			t.Errorf("during the overlap, a client trusting only the %s CA: %v", name, err)
		}
	}
	cs := kubeconfigClient(t, c.Kubeconfig)
	waitForCerts(t, "kube-root-ca.crt during the overlap", 2, func() (string, error) {
		cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return cm.Data["ca.crt"], nil
	})
	waitForCerts(t, "cluster-info during the overlap", 2, func() (string, error) { return clusterInfoCA(cs) })
	if n := certsIn(kubeconfigCA(t, c.Kubeconfig)); n != 2 {
		t.Errorf("the admin kubeconfig trusts %d CAs during the overlap, want 2", n)
	}

	time.Sleep(time.Until(overlapEnds.Add(3 * time.Second)))

	// After it.
	if err := listNS(legacyOld); err == nil {
		t.Error("after the overlap, a client trusting only the old CA still reaches the server")
	}
	if _, err := dialVerify(apiAddr, oldRoots, time.Now()); err == nil {
		t.Error("after the overlap, the server's certificate still verifies against the old CA")
	}
	if _, err := dialVerify(apiAddr, newRoots, time.Now()); err != nil {
		t.Errorf("after the overlap, against the new CA: %v", err)
	}
	if err := listNS(legacy(newCAPEM)); err == nil {
		t.Error("after the overlap, a client certificate of the old CA is still accepted")
	}
	cs = kubeconfigClient(t, c.Kubeconfig)
	waitForCerts(t, "kube-root-ca.crt after the overlap", 1, func() (string, error) {
		cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return cm.Data["ca.crt"], nil
	})
	waitForCerts(t, "cluster-info after the overlap", 1, func() (string, error) { return clusterInfoCA(cs) })
	if got := kubeconfigCA(t, c.Kubeconfig); certsIn(got) != 1 || !strings.Contains(string(got), strings.TrimSpace(string(newCAPEM))) {
		t.Errorf("after the overlap the admin kubeconfig trusts %d CAs, want the new one alone", certsIn(got))
	}
	if withNode {
		// The node's clients, in the server's process, went on: its Lease
		// is renewed after the old CA is gone, and it is Ready.
		deadline := time.Now().Add(30 * time.Second)
		for {
			l, err := cs.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), framework.NodeName, metav1.GetOptions{})
			if err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(overlapEnds) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the node's Lease was not renewed after the overlap ended (%v)", err)
			}
			time.Sleep(time.Second)
		}
		n, err := cs.CoreV1().Nodes().Get(context.Background(), framework.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
				t.Errorf("node not Ready after the rotation: %s", cond.Message)
			}
		}
		kubeletAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(n.Status.DaemonEndpoints.KubeletEndpoint.Port)))
		if _, err := dialVerify(kubeletAddr, newRoots, time.Now()); err != nil {
			t.Errorf("the kubelet's serving certificate against the new CA: %v", err)
		}
	}
	stopLoad()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests of clients following the CA bundle", requests)
	if len(failures) > 0 {
		t.Errorf("%d failed:\n%s\nserver log:\n%s", len(failures), strings.Join(failures, "\n"), tail(c.ServerLog(), 40))
	}
}

// kubeletHealthz asks the kubelet's /healthz through the API server
// (nodes/proxy) with a client built afresh from kubeconfig.
func kubeletHealthz(kubeconfig string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	rc.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + framework.NodeName + "/proxy/healthz").DoRaw(context.Background())
	if err == nil && string(body) != "ok" {
		err = fmt.Errorf("body %q", body)
	}
	return err
}

func kubeconfigClient(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// kubeconfigCA is the CA bundle a kubeconfig trusts.
func kubeconfigCA(t *testing.T, path string) []byte {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].CertificateAuthorityData
}

// clusterInfoCA is the CA bundle kube-public/cluster-info publishes.
func clusterInfoCA(cs kubernetes.Interface) (string, error) {
	cm, err := cs.CoreV1().ConfigMaps("kube-public").Get(context.Background(), "cluster-info", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
	if err != nil {
		return "", err
	}
	for _, cl := range kc.Clusters {
		return string(cl.CertificateAuthorityData), nil
	}
	return "", fmt.Errorf("cluster-info names no cluster")
}

func certsIn(bundle []byte) int { return strings.Count(string(bundle), "-----BEGIN CERTIFICATE-----") }

// waitForCerts waits up to 15 s for get to return a bundle of n
// certificates.
func waitForCerts(t *testing.T, what string, n int, get func() (string, error)) {
	t.Helper()
	var (
		last string
		err  error
	)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last, err = get(); err == nil && certsIn([]byte(last)) == n {
			return
		}
	}
	t.Errorf("%s: %d certificates (%v), want %d", what, certsIn([]byte(last)), err, n)
}

// pemOfFirstCert is the first certificate of a PEM file, as PEM.
func pemOfFirstCert(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return pem.EncodeToMemory(blk)
}

// issueWithCAFiles signs a client certificate for cn in org with the CA
// in caFile/keyFile, valid for an hour, and returns it and its key as PEM.
func issueWithCAFiles(t *testing.T, caFile, keyFile, cn, org string) (certPEM, keyPEM []byte) {
	t.Helper()
	caCertPEM := pemOfFirstCert(t, caFile)
	caKeyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tls.X509KeyPair(caCertPEM, caKeyPEM)
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
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
