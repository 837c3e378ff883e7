package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/test/framework"
)

// TestCertificateRenewal (issue 13): with leaf certificates that live a
// minute (--cert-validity, hidden), the server renews every one of them
// while it runs, and for longer than a lifetime — past the expiry of the
// certificates it started with — no request fails:
//
//   - a long-lived client-go client, with keep-alive, presenting the admin
//     certificate's files (client-go reads them per handshake, as it
//     does for a kubeconfig's client-certificate: path), whose idle
//     connections are closed now and then so that it handshakes again;
//   - the stock kubectl every few seconds on the admin kubeconfig, which
//     it reads per invocation as a user's does: the server rewrites it;
//   - a TLS handshake with the API server every second, verifying its
//     serving certificate against the cluster CA at that moment;
//   - with a node (when this machine can run containers): the API
//     server's calls to the kubelet (nodes/proxy) and handshakes with the
//     kubelet's serving certificate, and the node stays Ready.
//
// /metrics shows every certificate expiring within its lifetime. Then,
// on the same cluster, the CA is rotated (testRotateCA).
func TestCertificateRenewal(t *testing.T) {
	const validity = time.Minute
	var c *framework.Cluster
	withNode := framework.CanRunContainers() == ""
	if withNode {
		c = framework.StartNode(t, skiffBin, t.TempDir(), "--cert-validity="+validity.String())
	} else {
		t.Logf("without a node (%s): the kubelet's certificates are not exercised", framework.CanRunContainers())
		c = framework.StartBinary(t, skiffBin, "--cert-validity="+validity.String())
	}
	k := kubectl{t: t, c: c}
	tlsDir := filepath.Join(c.DataDir, "tls")
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))

	kc, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	adminAtStart := kubeconfigCert(t, c.Kubeconfig)
	restCfg := &rest.Config{
		Host: kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].CertificateAuthorityData,
			CertFile: filepath.Join(tlsDir, "admin.crt"),
			KeyFile:  filepath.Join(tlsDir, "admin.key"),
		},
		UserAgent: "cert-renewal-e2e",
		QPS:       100,
		Burst:     200,
	}
	// Its connections, to check that it handshakes again now and then.
	var dials atomic.Int32
	restCfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}
	hc, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfigAndClient(restCfg, hc)
	if err != nil {
		t.Fatal(err)
	}

	// The certificates the server started with: the load runs until
	// well past their expiry.
	servingAtStart := handshake(t, apiAddr, roots, time.Now())
	until := servingAtStart.NotAfter.Add(20 * time.Second)
	if d := time.Until(servingAtStart.NotAfter); d > validity {
		t.Fatalf("serving certificate expires in %v, want within --cert-validity=%v", d, validity)
	}
	var kubeletAddr string
	var kubeletAtStart *x509.Certificate
	if withNode {
		n, err := client.CoreV1().Nodes().Get(context.Background(), framework.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		kubeletAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(n.Status.DaemonEndpoints.KubeletEndpoint.Port)))
		kubeletAtStart = handshake(t, kubeletAddr, roots, time.Now())
	}

	// Failures from every load, and the serials each endpoint showed.
	var (
		mu       sync.Mutex
		failures []string
		requests = map[string]int{}
		failed   = map[string]int{}
		serials  = map[string][]*big.Int{}
	)
	record := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		requests[what]++
		if err != nil {
			failed[what]++
			failures = append(failures, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), what, err))
		}
	}
	saw := func(endpoint string, c *x509.Certificate) {
		mu.Lock()
		defer mu.Unlock()
		s := serials[endpoint]
		if len(s) == 0 || s[len(s)-1].Cmp(c.SerialNumber) != 0 {
			serials[endpoint] = append(s, c.SerialNumber)
			t.Logf("%s presents serial %x, expiring %s", endpoint, c.SerialNumber, c.NotAfter.Format("15:04:05"))
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	var wg sync.WaitGroup
	every := func(d time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(d)
			defer tick.Stop()
			for {
				f()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	// A request's own deadline, not the load's: one in flight when the
	// load ends finishes.
	reqCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}
	every(100*time.Millisecond, func() {
		rctx, cancel := reqCtx()
		defer cancel()
		_, err := client.CoreV1().Namespaces().List(rctx, metav1.ListOptions{})
		record("client-go list namespaces", err)
	})
	// Every 10 s it connects anew: its connection is closed once idle
	// (a request may be in flight at the first attempts).
	every(10*time.Second, func() {
		for before := dials.Load(); dials.Load() == before && ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
			utilnet.CloseIdleConnectionsFor(hc.Transport)
		}
	})
	every(3*time.Second, func() {
		out, err := k.run("", "get", "ns", "kube-system", "-o", "name")
		if err == nil && strings.TrimSpace(out) != "namespace/kube-system" {
			err = fmt.Errorf("unexpected output %q", out)
		} else if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		record("kubectl get ns", err)
	})
	probe := func(name, addr string) func() {
		return func() {
			cert, err := dialVerify(addr, roots, time.Now())
			record(name+" handshake", err)
			if err == nil {
				saw(name, cert)
			}
		}
	}
	every(time.Second, probe("api server", apiAddr))
	if withNode {
		every(time.Second, probe("kubelet", kubeletAddr))
		every(3*time.Second, func() {
			rctx, cancel := reqCtx()
			defer cancel()
			body, err := client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + framework.NodeName + "/proxy/healthz").DoRaw(rctx)
			if err == nil && string(body) != "ok" {
				err = fmt.Errorf("body %q", body)
			}
			record("api server to kubelet (nodes/proxy)", err)
		})
	}
	t.Logf("load until %s, 20s past the expiry of the certificates the server started with", until.Format("15:04:05"))
	wg.Wait()

	mu.Lock()
	t.Logf("requests: %v; the long-lived client connected %d times", requests, dials.Load())
	if dials.Load() < 6 {
		t.Errorf("the long-lived client connected %d times, want a new connection every 10s", dials.Load())
	}
	if len(failures) > 0 {
		t.Errorf("%d failed requests %v:\n%s\nserver log:\n%s", len(failures), failed, strings.Join(failures, "\n"), tail(c.ServerLog(), 40))
	}
	for _, ep := range []string{"api server", "kubelet"} {
		if ep == "kubelet" && !withNode {
			continue
		}
		if len(serials[ep]) < 2 {
			t.Errorf("the %s presented one serving certificate throughout (%v)", ep, serials[ep])
		}
	}
	mu.Unlock()
	if kubeletAtStart != nil && time.Now().Before(kubeletAtStart.NotAfter) {
		t.Errorf("the load ended before the kubelet's first certificate expired")
	}

	adminNow := kubeconfigCert(t, c.Kubeconfig)
	if adminNow.SerialNumber.Cmp(adminAtStart.SerialNumber) == 0 {
		t.Errorf("the admin kubeconfig still holds the certificate it started with")
	}
	if _, err := adminNow.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the admin kubeconfig's certificate: %v", err)
	}

	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	expiry := metricByName(string(body), "skiff_certificate_expiration_seconds")
	want := []string{"serving", "admin", "apiserver-kubelet-client", "etcd/server", "etcd/client"}
	if withNode {
		want = append(want, "kubelet/client", "kubelet/serving", "kubelet/proxy", "kubelet/dns")
	}
	for _, name := range want {
		v, ok := expiry[name]
		if !ok || v <= 0 || v > validity.Seconds() {
			t.Errorf("skiff_certificate_expiration_seconds{name=%q} = %v (present %v), want in (0, %v]", name, v, ok, validity.Seconds())
		}
	}
	renewals := metricByName(string(body), "skiff_certificate_renewals_total")
	for _, name := range want {
		if renewals[name] < 1 {
			t.Errorf("skiff_certificate_renewals_total{name=%q} = %v, want at least 1", name, renewals[name])
		}
	}
	if errs := metricByName(string(body), "skiff_certificate_renewal_errors_total")[""]; errs != 0 {
		t.Errorf("skiff_certificate_renewal_errors_total = %v", errs)
	}
	// The server checks a connection's client certificate per request:
	// no client of its own (the node's) kept using an expired one.
	if n := requestsWithCode(string(body), "401"); n != 0 {
		t.Errorf("%v requests answered 401 Unauthorized", n)
	}
	if withNode {
		n, err := client.CoreV1().Nodes().Get(context.Background(), framework.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
				t.Errorf("node %s not Ready after the renewals: %s", framework.NodeName, cond.Message)
			}
		}
	}
	if t.Failed() {
		return
	}
	for _, line := range strings.Split(c.ServerLog(), "\n") {
		if strings.Contains(line, "certificate renewed") && strings.Contains(line, "name=serving") {
			t.Logf("server: %s", line)
		}
	}
	t.Run("rotate-ca", func(t *testing.T) { testRotateCA(t, c, withNode) })
}

// handshake is dialVerify that fails t.
func handshake(t *testing.T, addr string, roots *x509.CertPool, now time.Time) *x509.Certificate {
	t.Helper()
	c, err := dialVerify(addr, roots, now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialVerify does a TLS handshake with addr, verifying its certificate
// for 127.0.0.1 against roots as of now, and returns the certificate.
func dialVerify(addr string, roots *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		RootCAs: roots, ServerName: "127.0.0.1", Time: func() time.Time { return now },
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// kubeconfigCert is the client certificate a kubeconfig holds.
func kubeconfigCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ai := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo]
	pair, err := tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// metricByName reads the samples of one metric family from Prometheus
// text, by their name label ("" without one).
func metricByName(text, family string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, family)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		name := ""
		if i := strings.Index(rest, `name="`); i >= 0 {
			name = rest[i+len(`name="`):]
			name = name[:strings.IndexByte(name, '"')]
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// requestsWithCode sums apiserver_request_total over the series with
// the given code.
func requestsWithCode(metrics, code string) float64 {
	var sum float64
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `code="`+code+`"`) {
			continue
		}
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}
