package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runHook runs a postStart or preStop handler of container c (running as
// id) and returns its output on failure. It gives up after timeout seconds.
func (k *Kubelet) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler, podIPs []string, timeout int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
	defer cancel()
	switch {
	case h.Exec != nil:
		stdout, stderr, err := k.cfg.Runtime.ExecSync(ctx, id, h.Exec.Command, time.Duration(timeout)*time.Second)
		if err != nil {
			return fmt.Sprintf("command %q exited with %v: %s%s", strings.Join(h.Exec.Command, " "), err, stdout, stderr), err
		}
		return "", nil
	case h.HTTPGet != nil:
		return hookHTTP(ctx, c, h.HTTPGet, podIPs)
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return "", nil
	case h.TCPSocket != nil:
		// Deprecated in upstream and never run by its kubelet either.
		return "", nil
	}
	return "", nil
}

// hookClient makes the requests of httpGet hooks, as upstream's kubelet: it
// goes to the pod network directly (never through a proxy the node's
// environment names), does not verify TLS (the kubelet cannot know a pod's
// certificate), follows redirects on the same host only, and carries no
// credentials.
var hookClient = &http.Client{
	Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as upstream: hooks never verify
	},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 || req.URL.Hostname() != via[0].URL.Hostname() {
			return http.ErrUseLastResponse
		}
		return nil
	},
}

func hookHTTP(ctx context.Context, c *corev1.Container, g *corev1.HTTPGetAction, podIPs []string) (string, error) {
	host := g.Host
	if host == "" && len(podIPs) > 0 {
		host = podIPs[0]
	}
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return err.Error(), err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error(), err
	}
	req.Header.Set("User-Agent", "kube-lifecycle/skiff")
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := hookClient.Do(req)
	if err != nil {
		return err.Error(), err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		err := fmt.Errorf("HTTP lifecycle hook (%s) for Container %q failed with statuscode %d: %s", path, c.Name, resp.StatusCode, body)
		return err.Error(), err
	}
	return "", nil
}

// resolvePort turns a port number or a container port name into a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	if c != nil {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort), nil
			}
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %v in %v", p.StrVal, c.Name)
}
