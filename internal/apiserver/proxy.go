package apiserver

// The proxying subresources — pods/log, pods/exec, pods/attach,
// pods/portforward and nodes/proxy — are served by the node's kubelet: the
// API server finds the node, authenticates to its kubelet with its own
// client certificate (Config.KubeletClientCert) and relays the exchange.
// proxy_*.go hold one subresource each; this file holds what they share.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/pki"
)

var (
	podsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
)

// kubeletClient holds how the API server talks to kubelets.
type kubeletClient struct {
	// tls presents the API server's client certificate. It offers only
	// HTTP/1.1, which connection upgrades (SPDY, WebSocket) need.
	tls *tls.Config
	// cas verify the kubelet's serving certificate for the address
	// dialled; nil: not verified, as upstream without
	// --kubelet-certificate-authority.
	cas func() *x509.CertPool
	// transport carries the plain requests (logs, nodes/proxy).
	transport *http.Transport
}

func newKubeletClient(cert *tls.Certificate, getCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error), cas func() *x509.CertPool) *kubeletClient {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verified by dial against cas, per connection, when set.
		InsecureSkipVerify: true, //nolint:gosec // see dial
		NextProtos:         []string{"http/1.1"},
	}
	switch {
	case getCert != nil:
		// Per handshake: a renewed certificate is presented on the next
		// connection; those open (an exec, a follow) keep the one they
		// began with.
		cfg.GetClientCertificate = getCert
	case cert != nil:
		cfg.Certificates = []tls.Certificate{*cert}
	}
	k := &kubeletClient{tls: cfg, cas: cas}
	k.transport = &http.Transport{
		TLSClientConfig: cfg,
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return k.dial(ctx, addr)
		},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // logs with follow wait as long as the client does
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
	return k
}

// dial opens a TLS connection to the kubelet at host (host:port) and,
// with cas, checks that its certificate is the cluster's for that
// address.
func (k *kubeletClient) dial(ctx context.Context, host string) (*tls.Conn, error) {
	cfg := k.tls
	if k.cas != nil {
		name, _, err := net.SplitHostPort(host)
		if err != nil {
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := pki.VerifyServer(cs, name, k.cas()); err != nil {
				return fmt.Errorf("kubelet at %s: serving certificate: %w", host, err)
			}
			return nil
		}
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// kubeletHost returns host:port of the kubelet of the named node: the
// first of its InternalIP, ExternalIP and Hostname addresses and its
// status.daemonEndpoints.kubeletEndpoint.Port.
func (s *Server) kubeletHost(ctx context.Context, nodeName string) (string, error) {
	sv, ok := s.lookup(nodesGVR)
	if !ok {
		return "", apierrors.NewServiceUnavailable("nodes are not served")
	}
	node := &corev1.Node{}
	if err := sv.store.Get(ctx, sv.key("", nodeName), "", node); err != nil {
		return "", storageError(err, sv.groupResource(), nodeName)
	}
	return nodeKubeletHost(node)
}

// nodeKubeletHost is kubeletHost for a node at hand.
func nodeKubeletHost(node *corev1.Node) (string, error) {
	addr := ""
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				addr = a.Address
				break
			}
		}
		if addr != "" {
			break
		}
	}
	if addr == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q has no InternalIP, ExternalIP or Hostname in status.addresses: its kubelet cannot be reached", node.Name))
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q reports no kubelet port in status.daemonEndpoints.kubeletEndpoint: its kubelet cannot be reached", node.Name))
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port))), nil
}

// getPod reads the pod a pods/<sub> request names.
func getPod(ctx context.Context, info requestInfo, sv *served) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := sv.store.Get(ctx, sv.key(info.namespace, info.name), "", pod); err != nil {
		return nil, storageError(err, sv.groupResource(), info.name)
	}
	return pod, nil
}

// podContainer returns the container a request means: the one named, or
// the pod's only container when none is named. The errors are upstream's.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, containerNames(pod)))
	}
	for _, n := range containerNames(pod) {
		if n == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

// containerNames lists a pod's containers in upstream's visiting order:
// init containers, containers, ephemeral containers.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

// noHost is upstream's error for streaming to a pod not yet scheduled.
func noHost(name string) error {
	return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
}

// kubeletURL is https://host/path?query on a kubelet.
func kubeletURL(host, path string, query url.Values) *url.URL {
	return &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query.Encode()}
}

// forwardHeader copies the headers of a client's request that a kubelet
// may see: not the client's credentials (the API server authenticates as
// itself) nor impersonation.
func forwardHeader(in http.Header) http.Header {
	out := in.Clone()
	out.Del("Authorization")
	out.Del("Proxy-Authorization")
	for k := range out {
		if strings.HasPrefix(k, "Impersonate-") {
			out.Del(k)
		}
	}
	return out
}

// queryBool reads a boolean query parameter as upstream's conversion does:
// absent or "false", "0", "no" is false; anything else is true.
func queryBool(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return false
	}
	switch strings.ToLower(v[0]) {
	case "false", "0", "no", "f", "n":
		return false
	}
	return true
}

// untilShutdown returns a context that ends with parent or when the
// server starts draining, so that long streams do not hold up shutdown.
// The caller must call the CancelFunc, which also ends the goroutine that
// watches for shutdown.
func (s *Server) untilShutdown(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.shutdown:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
