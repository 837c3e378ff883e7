package server

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
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testPKI is a CA with a serving certificate for 127.0.0.1 and a client
// certificate, made fresh for each test.
type testPKI struct {
	server    *tls.Config // for Config.TLS
	client    *tls.Config // trusts the CA, presents the client certificate
	anonymous *tls.Config // trusts the CA, presents nothing

	// PEM forms, for clients configured through rest.Config.
	caPEM, clientCertPEM, clientKeyPEM []byte
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	now := time.Now()
	caKey := mustKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		key := mustKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	serving := issue(2, "node-1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	client := issue(3, "kube-apiserver-kubelet-client", x509.ExtKeyUsageClientAuth, nil)
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{
		server:        &tls.Config{Certificates: []tls.Certificate{serving}, ClientCAs: pool},
		client:        &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}},
		anonymous:     &tls.Config{RootCAs: pool},
		caPEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		clientCertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Certificate[0]}),
		clientKeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeContainer is one container of a fake pod: its current instance and,
// when prevID is set, the previous one.
type fakeContainer struct {
	id, logPath         string
	prevID, prevLogPath string
}

// fakePods is a hand-written Pods. The error texts follow what the kubelet
// core is expected to produce.
type fakePods struct {
	mu         sync.Mutex
	pods       []*v1.Pod
	containers map[string]fakeContainer // "namespace/pod/container"
	sandboxes  map[string]string        // "namespace/pod"
}

func (f *fakePods) Pods() []*v1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pods
}

func (f *fakePods) find(namespace, pod string) bool {
	for _, p := range f.pods {
		if p.Namespace == namespace && p.Name == pod {
			return true
		}
	}
	return false
}

func (f *fakePods) Container(namespace, pod, container string, previous bool) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.find(namespace, pod) {
		return "", "", fmt.Errorf("pod %q does not exist: %w", pod, ErrNotFound)
	}
	c, ok := f.containers[namespace+"/"+pod+"/"+container]
	if !ok {
		return "", "", fmt.Errorf("container %q in pod %q is not available: %w", container, pod, ErrNotAvailable)
	}
	if previous {
		if c.prevID == "" {
			return "", "", fmt.Errorf("previous terminated container %q in pod %q not found: %w", container, pod, ErrNotAvailable)
		}
		return c.prevID, c.prevLogPath, nil
	}
	return c.id, c.logPath, nil
}

func (f *fakePods) SandboxID(namespace, pod string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.find(namespace, pod) {
		return "", fmt.Errorf("pod %q does not exist: %w", pod, ErrNotFound)
	}
	id, ok := f.sandboxes[namespace+"/"+pod]
	if !ok {
		return "", fmt.Errorf("pod %q has no sandbox: %w", pod, ErrNotAvailable)
	}
	return id, nil
}

// fakeRuntime is a hand-written Runtime: it records streaming requests and
// answers with streamURL, and serves the stats and states it is given.
type fakeRuntime struct {
	mu             sync.Mutex
	streamURL      string
	streamErr      error
	execReqs       []*runtimeapi.ExecRequest
	attachReqs     []*runtimeapi.AttachRequest
	portReqs       []*runtimeapi.PortForwardRequest
	states         map[string]runtimeapi.ContainerState
	containerStats []*runtimeapi.ContainerStats
	statsErr       error
	sandboxStats   []*runtimeapi.PodSandboxStats
	sandboxErr     error
	// sandboxStatus answers PodSandboxStatus by sandbox ID (NotFound for
	// others); statusCalls counts the calls.
	sandboxStatus map[string]*runtimeapi.PodSandboxStatusResponse
	statusCalls   int
}

func (f *fakeRuntime) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execReqs = append(f.execReqs, req)
	return &runtimeapi.ExecResponse{Url: f.streamURL}, f.streamErr
}

func (f *fakeRuntime) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attachReqs = append(f.attachReqs, req)
	return &runtimeapi.AttachResponse{Url: f.streamURL}, f.streamErr
}

func (f *fakeRuntime) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.portReqs = append(f.portReqs, req)
	return &runtimeapi.PortForwardResponse{Url: f.streamURL}, f.streamErr
}

func (f *fakeRuntime) setState(id string, st runtimeapi.ContainerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.states == nil {
		f.states = map[string]runtimeapi.ContainerState{}
	}
	f.states[id] = st
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.states[id]
	if !ok {
		st = runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: id, State: st}}, nil
}

func (f *fakeRuntime) ListContainerStats(context.Context, *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containerStats, f.statsErr
}

func (f *fakeRuntime) ListPodSandboxStats(context.Context, *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sandboxStats, f.sandboxErr
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, id string, _ bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusCalls++
	resp, ok := f.sandboxStatus[id]
	if !ok {
		return nil, grpcstatus.Errorf(codes.NotFound, "an error occurred when try to find sandbox %q: not found", id)
	}
	return resp, nil
}

func (f *fakeRuntime) sandboxStatusCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusCalls
}

// harness is a started Server with a client that presents the test client
// certificate.
type harness struct {
	srv    *Server
	base   string // https://127.0.0.1:port
	pki    testPKI
	client *http.Client
	// stop ends the server's context and fails the test unless Start
	// returns cleanly soon after; the test's cleanup calls it too.
	stop func()
}

// startServer starts a Server on a loopback port for the test's lifetime;
// cleanup stops it and checks that Start returned.
func startServer(t *testing.T, pods Pods, rt Runtime, tune func(*Server)) *harness {
	t.Helper()
	return startServerConfig(t, pods, rt, nil, tune)
}

// startServerConfig is startServer with a say in the Config: configure,
// when not nil, changes it before New.
func startServerConfig(t *testing.T, pods Pods, rt Runtime, configure func(*Config), tune func(*Server)) *harness {
	t.Helper()
	pki := newTestPKI(t)
	cfg := Config{
		Addr: "127.0.0.1:0", TLS: pki.server, NodeName: "node-1", Pods: pods, Runtime: rt,
		Auth: &fakeReviews{allow: func(Attributes) bool { return true }},
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.logPoll, srv.logCheck = 10*time.Millisecond, 10*time.Millisecond
	if tune != nil {
		tune(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Start: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Start did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	tr := &http.Transport{TLSClientConfig: pki.client}
	t.Cleanup(tr.CloseIdleConnections)
	return &harness{
		srv:    srv,
		base:   fmt.Sprintf("https://127.0.0.1:%d", srv.Port()),
		pki:    pki,
		client: &http.Client{Transport: tr, Timeout: 20 * time.Second},
		stop:   stop,
	}
}

// get returns the status code and body of GET path.
func (h *harness) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := h.client.Get(h.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// decodeStatus parses a metav1.Status body.
func decodeStatus(t *testing.T, body string) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("body is not a Status: %v: %q", err, body)
	}
	return st
}

// writeLog writes a CRI log file into dir and returns its path.
func writeLog(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testPod(namespace, name, uid string, containers ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID(uid)}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c, Image: "busybox"})
	}
	return p
}
