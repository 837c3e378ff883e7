package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/skiff-io/skiff/internal/pki"
)

// fakeKubelet is a kubelet's HTTPS API as far as the API server's proxies
// use it: /containerLogs, /exec and /attach speaking remotecommand v4 over
// SPDY, /portForward echoing every byte, and /healthz. It requires the API
// server's kubelet client certificate, signed by the cluster CA.
type fakeKubelet struct {
	t    *testing.T
	srv  *httptest.Server
	port int

	mu          sync.Mutex
	logQueries  []url.Values
	execQueries []url.Values
	clientCNs   map[string]bool
	// usage, when set, renders /metrics/resource at the time of a
	// request; nil answers 404 as a kubelet without it would.
	usage func(now time.Time) string
}

// startFakeKubelet serves on 127.0.0.1 with a certificate of the cluster CA
// in dataDir (the API server verifies kubelets) and trusts client
// certificates of that CA.
func startFakeKubelet(t *testing.T, dataDir string) *fakeKubelet {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("cluster CA does not parse")
	}
	k := &fakeKubelet{t: t, clientCNs: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/", k.serveLogs)
	mux.HandleFunc("/exec/", k.serveExec)
	mux.HandleFunc("/attach/", k.serveExec)
	mux.HandleFunc("/portForward/", k.servePortForward)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/metrics/resource", k.serveResourceMetrics)
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		for _, c := range r.TLS.PeerCertificates[:1] {
			k.clientCNs[c.Subject.CommonName+"/"+strings.Join(c.Subject.Organization, ",")] = true
		}
		k.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	k.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		Certificates: []tls.Certificate{kubeletServingCert(t, dataDir)}}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	k.port = k.srv.Listener.Addr().(*net.TCPAddr).Port
	return k
}

// sawClient reports whether the API server's kubelet client certificate
// was presented.
func (k *fakeKubelet) sawClient() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clientCNs[pki.KubeletClientCommonName+"/"]
}

func (k *fakeKubelet) lastLogQuery() url.Values {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.logQueries) == 0 {
		return nil
	}
	return k.logQueries[len(k.logQueries)-1]
}

func (k *fakeKubelet) lastExecQuery() (path string, q url.Values) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.execQueries) == 0 {
		return "", nil
	}
	q = k.execQueries[len(k.execQueries)-1]
	return q.Get("__path"), q
}

// serveLogs answers /containerLogs/<ns>/<pod>/<container> with two lines
// naming the container; with follow it flushes each line and then holds
// the stream open until the client goes away.
func (k *fakeKubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.logQueries = append(k.logQueries, r.URL.Query())
	k.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 {
		http.Error(w, "bad path", http.StatusNotFound)
		return
	}
	if parts[2] == "crashing" {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", parts[2], parts[1]), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(w, "%s line %d\n", parts[2], i)
		w.(http.Flusher).Flush()
	}
	if r.URL.Query().Get("follow") == "true" {
		<-r.Context().Done()
	}
}

// serveExec speaks remotecommand v4 over SPDY. Commands: "cat" copies
// stdin to stdout; "sh -c 'exit N'" exits with N; "size" (tty) prints the
// first terminal size it receives. Attach behaves as "cat".
func (k *fakeKubelet) serveExec(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := url.Values{"__path": {r.URL.Path}, "__ua": {r.UserAgent()}}
	for key, v := range q {
		rec[key] = v
	}
	k.mu.Lock()
	k.execQueries = append(k.execQueries, rec)
	k.mu.Unlock()

	if _, err := httpstream.Handshake(r, w, []string{remotecommand.StreamProtocolV4Name}); err != nil {
		return // Handshake has answered
	}
	type newStream struct {
		s     httpstream.Stream
		reply <-chan struct{}
	}
	streamCh := make(chan newStream, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, reply <-chan struct{}) error {
		streamCh <- newStream{s, reply}
		return nil
	})
	if conn == nil {
		return
	}
	defer conn.Close()
	tty := q.Get("tty") == "1"
	want := 1 // error
	for _, key := range []string{"input", "output"} {
		if q.Get(key) == "1" {
			want++
		}
	}
	if q.Get("error") == "1" && !tty {
		want++
	}
	if tty {
		want++ // resize
	}
	streams := map[string]httpstream.Stream{}
	for len(streams) < want {
		select {
		case ns := <-streamCh:
			<-ns.reply
			streams[ns.s.Headers().Get("streamType")] = ns.s
		case <-time.After(10 * time.Second):
			k.t.Errorf("fake kubelet: only %d of %d streams arrived", len(streams), want)
			return
		}
	}
	status := metav1.Status{Status: metav1.StatusSuccess}
	command := q["command"]
	if strings.HasPrefix(r.URL.Path, "/attach/") {
		command = []string{"cat"}
	}
	switch {
	case len(command) == 1 && command[0] == "cat":
		if in, out := streams["stdin"], streams["stdout"]; in != nil && out != nil {
			_, _ = io.Copy(out, in)
		}
	case len(command) == 3 && command[0] == "sh" && strings.HasPrefix(command[2], "exit "):
		code, _ := strconv.Atoi(strings.TrimPrefix(command[2], "exit "))
		if errs := streams["stderr"]; errs != nil {
			fmt.Fprintf(errs, "exiting with %d\n", code)
		}
		if code != 0 {
			status = metav1.Status{
				Status:  metav1.StatusFailure,
				Reason:  remotecommand.NonZeroExitCodeReason,
				Message: fmt.Sprintf("command terminated with non-zero exit code: error executing command %v, exit code %d", command, code),
				Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(code)}}},
			}
		}
	case len(command) == 1 && command[0] == "size" && tty:
		var size struct{ Width, Height uint16 }
		if err := json.NewDecoder(streams["resize"]).Decode(&size); err == nil {
			fmt.Fprintf(streams["stdout"], "%dx%d", size.Width, size.Height)
		}
	default:
		status = metav1.Status{Status: metav1.StatusFailure, Message: fmt.Sprintf("fake kubelet: unknown command %v", command)}
	}
	data, _ := json.Marshal(status)
	_, _ = streams["error"].Write(data)
	for _, s := range streams {
		s.Close()
	}
}

// servePortForward speaks portforward.k8s.io over SPDY: every data stream
// is echoed back, and its error stream closed once the data stream ends.
func (k *fakeKubelet) servePortForward(w http.ResponseWriter, r *http.Request) {
	if _, err := httpstream.Handshake(r, w, []string{"portforward.k8s.io"}); err != nil {
		return
	}
	var mu sync.Mutex
	errorStreams := map[string]httpstream.Stream{}
	var wg sync.WaitGroup
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, reply <-chan struct{}) error {
		id := s.Headers().Get("requestID")
		switch s.Headers().Get("streamType") {
		case "error":
			mu.Lock()
			errorStreams[id] = s
			mu.Unlock()
		case "data":
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-reply
				_, _ = io.Copy(s, s)
				s.Close()
				mu.Lock()
				if e := errorStreams[id]; e != nil {
					e.Close()
				}
				mu.Unlock()
			}()
		}
		return nil
	})
	if conn == nil {
		return
	}
	<-conn.CloseChan()
	wg.Wait()
}

// setUsage sets what /metrics/resource answers (see fakeKubelet.usage).
func (k *fakeKubelet) setUsage(render func(now time.Time) string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.usage = render
}

func (k *fakeKubelet) serveResourceMetrics(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	render := k.usage
	k.mu.Unlock()
	if render == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, render(time.Now()))
}

// kubeletServingCert is a serving certificate for 127.0.0.1, signed by the
// cluster CA in dataDir, as a real node's kubelet-serving CSR gets.
func kubeletServingCert(t *testing.T, dataDir string) tls.Certificate {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(filepath.Join(dataDir, "tls", "ca.crt"), filepath.Join(dataDir, "tls", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"n1.invalid"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
