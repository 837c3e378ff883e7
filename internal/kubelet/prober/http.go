package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// newHTTPTransport returns the transport all HTTP probes share: no proxy, no
// keep-alives (each probe opens a fresh connection, as a health check
// should), no certificate verification, no compression.
func newHTTPTransport() *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyURL(nil),
		DialContext:         probeDialer().DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes never verify, as upstream
		TLSHandshakeTimeout: 10 * time.Second,
		DisableKeepAlives:   true,
		DisableCompression:  true,
		ForceAttemptHTTP2:   true,
	}
}

// httpGet runs an httpGet probe. A response with 200 <= code < 400 is a
// success (a 3xx one that was not followed is a warning); any other code is
// a failure "HTTP probe failed with statuscode: N"; a transport error is a
// failure carrying it ("Get \"http://10.42.0.5:8080/healthz\": dial tcp ...").
// Redirects are followed only to the same host, at most 10.
func (p *prober) httpGet(ctx context.Context, action *v1.HTTPGetAction, c *v1.Container, podIP string, timeout time.Duration) (outcome, string, error) {
	req, err := newHTTPRequest(ctx, action, c, podIP)
	if err != nil {
		return outcomeUnknown, "", err
	}
	client := &http.Client{Timeout: timeout, Transport: p.transport, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxOutput))
	if err != nil {
		return outcomeFailure, "", fmt.Errorf("read probe response from %s: %w", req.URL, err)
	}
	body := string(b)
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			return outcomeWarning, "Probe terminated redirects, Response body: " + body, nil
		}
		return outcomeSuccess, body, nil
	}
	// Never put the body in a failure message: it ends up in events (upstream #99425).
	return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// sameHostRedirects follows redirects to the same host name only; a
// redirect elsewhere ends the probe with the redirect response itself.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// newHTTPRequest builds the GET request of an httpGet action: scheme (default
// http), host (default the pod IP), port (number or container port name),
// path, and headers, with User-Agent kube-probe/1.32 and Accept */* unless
// the action sets them (an empty Accept removes the header).
func newHTTPRequest(ctx context.Context, action *v1.HTTPGetAction, c *v1.Container, podIP string) (*http.Request, error) {
	scheme := strings.ToLower(string(action.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := action.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return nil, errNoPodIP
	}
	port, err := resolvePort(action.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(action.Path)
	if err != nil {
		// A path that does not parse is passed along as it is, as upstream does.
		u = &url.URL{Path: action.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build probe request: %w", err)
	}
	headers := make(http.Header, len(action.HTTPHeaders)+2)
	for _, h := range action.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", userAgent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}
