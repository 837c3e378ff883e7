package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/pki"
)

// The kubelet endpoint: one TLS listener on all addresses at
// Config.KubeletPort answers for every node. Node InternalIPs are
// loopback addresses (nodeIP) and Linux routes all of 127.0.0.0/8 to lo,
// so a connection to 127.0.0.N:port reaches this listener and its local
// address says which node was asked (nodeIndex).

// kubeletServer is the simulator's kubelet endpoint while it runs.
type kubeletServer struct {
	srv  *http.Server
	ln   net.Listener
	port int32
	cert *servingCert
}

// listenKubelet opens the kubelet endpoint's listener (it does not serve
// yet). A port that is in use is replaced by a free one, with a warning.
func (s *Sim) listenKubelet() (*kubeletServer, error) {
	cas, err := s.clientCAs()
	if err != nil {
		return nil, err
	}
	cert, err := pki.SelfSignedServing("skiff-sim-kubelet", "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(s.cfg.KubeletPort)))
	if err != nil && s.cfg.KubeletPort != 0 && errors.Is(err, syscall.EADDRINUSE) {
		s.log.Warn("kubelet port in use; listening on a free port", "port", s.cfg.KubeletPort)
		ln, err = net.Listen("tcp", ":0")
	}
	if err != nil {
		return nil, fmt.Errorf("kubelet endpoint: %w", err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port) //nolint:gosec // a TCP port fits
	h := &kubeletHandler{sim: s, clientCAs: cas}
	sc := &servingCert{}
	sc.cur.Store(cert)
	srv := &http.Server{
		Handler: h,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: sc.GetCertificate,
			// Verified in the handler, so that a request without a
			// valid certificate gets the kubelet's 401, not a failed
			// handshake.
			ClientAuth: tls.RequestClientCert,
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Handshake errors (port scans, clients that do not trust the
		// certificate) are not the simulator's concern.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return &kubeletServer{srv: srv, ln: ln, port: port, cert: sc}, nil
}

// serve serves until shutdown is called; it returns nil then.
func (k *kubeletServer) serve() error {
	if err := k.srv.ServeTLS(k.ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kubelet endpoint: %w", err)
	}
	return nil
}

// shutdown stops serving and waits (briefly: scrapes are short) for the
// requests in flight.
func (k *kubeletServer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.srv.Shutdown(ctx); err != nil {
		_ = k.srv.Close()
	}
}

// clientCAs are the CAs client certificates must chain to: those of
// Config.ClientCAFile, else those the simulator's client trusts for the
// API server (its rest.Config's CAData or CAFile end up as the
// transport's RootCAs). Without either the endpoint cannot authenticate
// anyone, and the simulator does not start.
func (s *Sim) clientCAs() (*x509.CertPool, error) {
	if f := s.cfg.ClientCAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate", f)
		}
		return pool, nil
	}
	var pool *x509.CertPool
	if rc, ok := s.client.CoreV1().RESTClient().(*rest.RESTClient); ok && rc != nil && rc.Client != nil {
		if cfg, err := utilnet.TLSClientConfig(rc.Client.Transport); err == nil && cfg != nil {
			pool = cfg.RootCAs
		}
	}
	if pool == nil {
		return nil, errors.New("kubelet endpoint: no cluster CA to verify clients against: the client trusts no explicit CA; set the client CA file, or turn the endpoint off with a negative kubelet port")
	}
	return pool, nil
}

// kubeletHandler answers the kubelet API for the node whose address a
// connection was made to. It serves GET /metrics/resource and /healthz;
// every other path is 404.
//
// Like a kubelet it authenticates every request (401 without a client
// certificate of the cluster CA; no bearer tokens), but it authorizes
// nothing: any such certificate may read every node's metrics. A node
// the simulator killed (or that was deleted) does not answer: the
// connection is dropped, as a dead machine's would be.
type kubeletHandler struct {
	sim       *Sim
	clientCAs *x509.CertPool
}

func (h *kubeletHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.sim.localNode(r)
	if n != nil && n.dead() {
		panic(http.ErrAbortHandler) // closes the connection, logs nothing
	}
	if !h.authenticated(r) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if n == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	switch r.URL.Path {
	case "/metrics/resource":
		var b bytes.Buffer
		writeResourceMetrics(&b, h.sim.nodeUsage(n, time.Now()))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	default:
		http.NotFound(w, r)
	}
}

// authenticated reports whether r came with a client certificate that
// chains to the client CAs, for client authentication, with a user name.
func (h *kubeletHandler) authenticated(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	leaf := r.TLS.PeerCertificates[0]
	if leaf.Subject.CommonName == "" {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         h.clientCAs,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err == nil
}

// localNode is the simulator's node whose InternalIP r's connection was
// made to, or nil.
func (s *Sim) localNode(r *http.Request) *simNode {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if !ok {
		return nil
	}
	i, ok := nodeIndex(a.AddrPort().Addr())
	if !ok || i >= len(s.byIndex) {
		return nil
	}
	return s.byIndex[i]
}
