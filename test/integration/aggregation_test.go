package integration

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
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// wardle is an extension API server, as sample-apiserver is: it serves
// wardle.example.com/v1alpha1 over TLS, trusts the X-Remote-* headers
// only from a client certificate of the front-proxy CA named in
// extension-apiserver-authentication, and answers with who it was told
// the user is.
type wardle struct {
	srv      *httptest.Server
	caBundle []byte
	ip       string
	port     int

	mu   sync.Mutex
	seen []http.Header // the headers of each request, as received
}

const wardleGV = "wardle.example.com/v1alpha1"

func newWardle(t testing.TB, frontProxyCA []byte) *wardle {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(frontProxyCA) {
		t.Fatal("extension-apiserver-authentication: no front-proxy CA")
	}
	wd := &wardle{}
	mux := http.NewServeMux()
	mux.HandleFunc("/apis/"+wardleGV, func(w http.ResponseWriter, r *http.Request) {
		if !wd.trusted(w, r) {
			return
		}
		writeTestJSON(w, &metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: wardleGV,
			APIResources: []metav1.APIResource{{Name: "flunders", SingularName: "flunder", Namespaced: true, Kind: "Flunder",
				Verbs: metav1.Verbs{"get", "list", "watch"}}},
		})
	})
	mux.HandleFunc("/openapi/v3/apis/"+wardleGV, func(w http.ResponseWriter, r *http.Request) {
		if !wd.trusted(w, r) {
			return
		}
		writeTestJSON(w, map[string]any{"openapi": "3.0.0", "info": map[string]any{"title": "wardle"}, "paths": map[string]any{}})
	})
	mux.HandleFunc("/apis/"+wardleGV+"/", func(w http.ResponseWriter, r *http.Request) {
		if !wd.trusted(w, r) {
			return
		}
		if r.URL.Query().Get("watch") == "true" {
			// A watch streams: two events, flushed a moment apart.
			w.Header().Set("Content-Type", "application/json")
			for i := range 2 {
				fmt.Fprintf(w, `{"type":"ADDED","object":{"kind":"Flunder","apiVersion":%q,"metadata":{"name":"f%d"}}}`+"\n", wardleGV, i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
			return
		}
		writeTestJSON(w, map[string]any{
			"kind": "FlunderList", "apiVersion": wardleGV, "metadata": map[string]any{},
			"items": []any{map[string]any{"kind": "Flunder", "apiVersion": wardleGV,
				"metadata": map[string]any{"name": "seen-by-" + r.Header.Get("X-Remote-User"), "namespace": "default"}}},
		})
	})
	wd.srv = httptest.NewUnstartedServer(mux)
	// An endpoint may not be a loopback address: the server listens on
	// one of the machine's own.
	wd.ip = hostIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(wd.ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	wd.srv.Listener.Close()
	wd.srv.Listener = ln
	caPEM, cert := servingCert(t, "wardle.default.svc")
	wd.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	wd.srv.StartTLS()
	t.Cleanup(wd.srv.Close)
	wd.caBundle = caPEM
	wd.port = wd.srv.Listener.Addr().(*net.TCPAddr).Port
	return wd
}

// trusted records the request and refuses it unless a front-proxy
// client certificate for front-proxy-client came with it.
func (wd *wardle) trusted(w http.ResponseWriter, r *http.Request) bool {
	wd.mu.Lock()
	wd.seen = append(wd.seen, r.Header.Clone())
	wd.mu.Unlock()
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "front-proxy-client" {
		http.Error(w, "no front-proxy client certificate", http.StatusUnauthorized)
		return false
	}
	return true
}

func (wd *wardle) last() http.Header {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if len(wd.seen) == 0 {
		return nil
	}
	return wd.seen[len(wd.seen)-1]
}

// hostIP returns an IPv4 address of this machine that is not loopback.
func hostIP(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no IPv4 address but loopback, which an endpoint may not be")
	return ""
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// servingCert makes a CA and a serving certificate for dnsName; it
// returns the CA's PEM and the certificate.
func servingCert(t testing.TB, dnsName string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wardle-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestAPIAggregation registers an extension API server with an APIService
// and checks what upstream's aggregation layer does: the Available
// condition and its reasons, the group in discovery, requests proxied
// with the user in X-Remote-* headers under the front-proxy certificate
// (and nothing of the client's own credentials), a watch streamed,
// authorization before the proxy, 503 while unavailable, the local
// APIServices, and a group served built in handed to an APIService.
func TestAPIAggregation(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(c.Config)
	agg := aggregatorclient.NewForConfigOrDie(c.Config)
	apis := agg.ApiregistrationV1().APIServices()

	// extension-apiserver-authentication says whom to trust.
	var auth *corev1.ConfigMap
	waitFor(t, "extension-apiserver-authentication", func() (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		auth = cm
		return err == nil, err
	})
	for key, want := range map[string]string{
		"requestheader-allowed-names":    `["front-proxy-client"]`,
		"requestheader-username-headers": `["X-Remote-User"]`,
		"requestheader-group-headers":    `["X-Remote-Group"]`,
	} {
		if got := auth.Data[key]; got != want {
			t.Errorf("extension-apiserver-authentication %s = %q, want %q", key, got, want)
		}
	}
	if !strings.Contains(auth.Data["client-ca-file"], "BEGIN CERTIFICATE") {
		t.Errorf("extension-apiserver-authentication has no client-ca-file")
	}

	// The local APIServices: one per group/version served here.
	waitFor(t, "the local APIService v1.apps", func() (bool, error) {
		s, err := apis.Get(ctx, "v1.apps", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && available(s) == "True/Local", err
	})

	wd := newWardle(t, []byte(auth.Data["requestheader-client-ca-file"]))
	apiService := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "wardle.example.com", Version: "v1alpha1", GroupPriorityMinimum: 2000, VersionPriority: 200,
			Service:  &apiregistrationv1.ServiceReference{Namespace: "default", Name: "wardle", Port: ptr.To[int32](443)},
			CABundle: wd.caBundle,
		},
	}
	if _, err := apis.Create(ctx, apiService, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition := func(what, want string) {
		t.Helper()
		waitFor(t, what, func() (bool, error) {
			s, err := apis.Get(ctx, apiService.Name, metav1.GetOptions{})
			return err == nil && available(s) == want, err
		})
	}
	waitCondition("ServiceNotFound", "False/ServiceNotFound")

	// The service has no selector: its endpoint is the test's server.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "wardle", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition("MissingEndpoints", "False/MissingEndpoints")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "wardle-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "wardle"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{wd.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(wd.port))}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition("Passed", "True/Passed")

	// Discovery: the group in /apis (legacy and aggregated, as kubectl
	// reads it), its resources from the extension server.
	waitFor(t, "wardle.example.com in discovery", func() (bool, error) {
		_, lists, err := cs.Discovery().ServerGroupsAndResources()
		if err != nil {
			return false, nil
		}
		for _, l := range lists {
			if l.GroupVersion == wardleGV && len(l.APIResources) == 1 && l.APIResources[0].Name == "flunders" {
				return true, nil
			}
		}
		return false, nil
	})
	group, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/wardle.example.com").DoRaw(ctx)
	if err != nil || !strings.Contains(string(group), `"preferredVersion":{"groupVersion":"wardle.example.com/v1alpha1"`) {
		t.Errorf("GET /apis/wardle.example.com: %v %s", err, group)
	}

	// OpenAPI v3: the index names the group/version, whose document is
	// the extension server's.
	index, err := cs.Discovery().RESTClient().Get().AbsPath("/openapi/v3").DoRaw(ctx)
	if err != nil || !strings.Contains(string(index), `"apis/wardle.example.com/v1alpha1":{"serverRelativeURL":"/openapi/v3/apis/wardle.example.com/v1alpha1"}`) {
		t.Errorf("GET /openapi/v3: %v %.300s", err, index)
	}
	doc, err := cs.Discovery().RESTClient().Get().AbsPath("/openapi/v3/apis/" + wardleGV).DoRaw(ctx)
	if err != nil || !strings.Contains(string(doc), `"title":"wardle"`) {
		t.Errorf("GET /openapi/v3/apis/%s: %v %s", wardleGV, err, doc)
	}

	// A request, with an impersonation and a forged header: the
	// extension server sees the impersonated user, from the front proxy.
	impersonating := rest.CopyConfig(c.Config)
	impersonating.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"system:masters", "wardens"},
		Extra: map[string][]string{"scopes.example.com/x": {"a"}}}
	raw, err := kubernetes.NewForConfigOrDie(impersonating).Discovery().RESTClient().Get().
		AbsPath("/apis/"+wardleGV+"/namespaces/default/flunders").SetHeader("X-Remote-User", "mallory").SetHeader("X-Remote-Group", "evil").DoRaw(ctx)
	if err != nil || !strings.Contains(string(raw), `"seen-by-alice"`) {
		t.Fatalf("list flunders: %v %s", err, raw)
	}
	h := wd.last()
	if got := h.Values("X-Remote-Group"); strings.Join(got, ",") != "system:masters,wardens,system:authenticated" {
		t.Errorf("X-Remote-Group %q", got)
	}
	if got := h.Get("X-Remote-Extra-Scopes.example.com%2fx"); got != "a" {
		t.Errorf("X-Remote-Extra header: %v", h)
	}
	for _, k := range []string{"Authorization", "Impersonate-User", "Impersonate-Group"} {
		if h.Get(k) != "" {
			t.Errorf("the extension server got the client's %s header", k)
		}
	}

	// A watch streams through.
	watched, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/"+wardleGV+"/flunders").Param("watch", "true").DoRaw(ctx)
	if err != nil || strings.Count(string(watched), `"ADDED"`) != 2 {
		t.Errorf("watch flunders: %v %s", err, watched)
	}

	// Authorization comes first: a user with no rights never reaches
	// the extension server.
	before := len(wd.seen)
	nobody := rest.CopyConfig(c.Config)
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	_, err = kubernetes.NewForConfigOrDie(nobody).Discovery().RESTClient().Get().AbsPath("/apis/" + wardleGV + "/flunders").DoRaw(ctx)
	if !apierrors.IsForbidden(err) {
		t.Errorf("list flunders as nobody: %v, want 403", err)
	}
	wd.mu.Lock()
	if len(wd.seen) != before {
		t.Errorf("a forbidden request reached the extension server")
	}
	wd.mu.Unlock()

	// Without endpoints: unavailable, and requests get 503.
	if err := cs.DiscoveryV1().EndpointSlices("default").Delete(ctx, slice.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition("MissingEndpoints again", "False/MissingEndpoints")
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/apis/" + wardleGV + "/flunders").DoRaw(ctx)
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("list flunders while unavailable: %v, want 503", err)
	}
	metricsText, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	for _, want := range []string{`aggregator_unavailable_apiservice{name="v1alpha1.wardle.example.com"} 1`,
		`aggregator_unavailable_apiservice_total{name="v1alpha1.wardle.example.com",reason="MissingEndpoints"} 1`} {
		if err != nil || !strings.Contains(string(metricsText), want) {
			t.Errorf("/metrics has no %s (%v)", want, err)
		}
	}

	// A group this server serves built in (metrics.k8s.io) goes to the
	// APIService that names a service, and comes back when it is gone.
	metrics := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.metrics.k8s.io"},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "metrics.k8s.io", Version: "v1beta1", GroupPriorityMinimum: 100, VersionPriority: 100,
			Service:               &apiregistrationv1.ServiceReference{Namespace: "default", Name: "wardle", Port: ptr.To[int32](443)},
			InsecureSkipTLSVerify: true,
		},
	}
	// As kubectl apply does: the local one is there, and is updated.
	have, err := apis.Get(ctx, metrics.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the local APIService of metrics.k8s.io: %v", err)
	}
	have.Spec = metrics.Spec
	if _, err := apis.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
		return apierrors.IsServiceUnavailable(err), nil
	})
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("metrics.k8s.io with an unavailable APIService: %v, want 503", err)
	}
	if err := apis.Delete(ctx, metrics.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "metrics.k8s.io served here again", func() (bool, error) {
		s, err := apis.Get(ctx, metrics.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		_, err = cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
		return available(s) == "True/Local" && err == nil, nil
	})
}

// available returns an APIService's Available condition as
// "status/reason".
func available(s *apiregistrationv1.APIService) string {
	for _, c := range s.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

func waitFor(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

// BenchmarkAggregatedGet measures what the aggregation layer adds to a
// request: GETs of a ConfigMap served here ("local") against GETs of a
// list the extension server answers through an APIService ("proxied":
// TLS to the extension server with the front-proxy certificate, the
// user in headers), both over the cluster's own HTTPS connection.
func BenchmarkAggregatedGet(b *testing.B) {
	c := framework.StartInProcess(b)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(unthrottled(c.Config))
	var auth *corev1.ConfigMap
	waitFor(b, "extension-apiserver-authentication", func() (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		auth = cm
		return err == nil, nil
	})
	wd := newWardle(b, []byte(auth.Data["requestheader-client-ca-file"]))
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "wardle", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "wardle-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "wardle"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{wd.ip}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(wd.port))}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	apis := aggregatorclient.NewForConfigOrDie(c.Config).ApiregistrationV1().APIServices()
	if _, err := apis.Create(ctx, &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{Group: "wardle.example.com", Version: "v1alpha1", GroupPriorityMinimum: 2000, VersionPriority: 200,
			Service: &apiregistrationv1.ServiceReference{Namespace: "default", Name: "wardle", Port: ptr.To[int32](443)}, CABundle: wd.caBundle},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	waitFor(b, "the APIService Available", func() (bool, error) {
		s, err := apis.Get(ctx, "v1alpha1.wardle.example.com", metav1.GetOptions{})
		return err == nil && available(s) == "True/Passed", nil
	})
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	rc := cs.Discovery().RESTClient()
	for _, tc := range []struct{ name, path string }{
		{"local", "/api/v1/namespaces/default/configmaps/bench"},
		{"proxied", "/apis/" + wardleGV + "/namespaces/default/flunders"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				began := time.Now()
				if _, err := rc.Get().AbsPath(tc.path).DoRaw(ctx); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(began))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
