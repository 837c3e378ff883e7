package prober

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func serverPort(t *testing.T, s *httptest.Server) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHTTPProbe(t *testing.T) {
	var (
		mu      sync.Mutex
		lastReq *http.Request
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastReq = r.Clone(context.Background())
		mu.Unlock()
		fmt.Fprint(w, "healthy")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "secret internals", http.StatusInternalServerError)
	})
	mux.HandleFunc("/redirect-local", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/redirect-away", func(w http.ResponseWriter, r *http.Request) {
		// Another host name for the same server: not followed, so no traffic goes there.
		http.Redirect(w, r, "http://localhost:1/ok", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	port := serverPort(t, srv)
	refused := closedPort(t)

	container := &v1.Container{Name: "app", Ports: []v1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	get := func(path string, port intstr.IntOrString) *v1.HTTPGetAction {
		return &v1.HTTPGetAction{Path: path, Port: port}
	}
	tests := []struct {
		name    string
		action  *v1.HTTPGetAction
		podIP   string
		timeout time.Duration
		want    outcome
		wantOut string // exact, or a prefix when wantPrefix
		prefix  bool
		wantErr string
	}{
		{name: "200", action: get("/ok", intstr.FromInt(port)), want: outcomeSuccess, wantOut: "healthy"},
		{name: "500", action: get("/fail", intstr.FromInt(port)), want: outcomeFailure, wantOut: "HTTP probe failed with statuscode: 500"},
		{name: "404", action: get("/missing", intstr.FromInt(port)), want: outcomeFailure, wantOut: "HTTP probe failed with statuscode: 404"},
		{name: "named port", action: get("/ok", intstr.FromString("web")), want: outcomeSuccess, wantOut: "healthy"},
		{name: "unknown named port", action: get("/ok", intstr.FromString("nope")), want: outcomeUnknown, wantErr: "port nope not found"},
		{name: "host overrides pod IP", action: &v1.HTTPGetAction{Host: "127.0.0.1", Path: "/ok", Port: intstr.FromInt(port)}, podIP: "-", want: outcomeSuccess, wantOut: "healthy"},
		{name: "no pod IP", action: get("/ok", intstr.FromInt(port)), podIP: "-", want: outcomeUnknown, wantErr: errNoPodIP.Error()},
		{name: "same-host redirect is followed", action: get("/redirect-local", intstr.FromInt(port)), want: outcomeSuccess, wantOut: "healthy"},
		{
			name: "redirect to another host is a warning", action: get("/redirect-away", intstr.FromInt(port)),
			want: outcomeWarning, wantOut: "Probe terminated redirects, Response body: ", prefix: true,
		},
		{
			name: "redirect loop", action: get("/loop", intstr.FromInt(port)),
			want: outcomeFailure, wantOut: `Get "/loop": stopped after 10 redirects`, // net/http names the Location
		},
		{
			name: "connection refused", action: get("/healthz", intstr.FromInt(refused)),
			want: outcomeFailure, wantOut: fmt.Sprintf(`Get "http://127.0.0.1:%d/healthz": dial tcp 127.0.0.1:%d: connect: connection refused`, refused, refused),
		},
		{
			name: "timeout", action: get("/slow", intstr.FromInt(port)), timeout: 50 * time.Millisecond,
			want: outcomeFailure, wantOut: fmt.Sprintf(`Get "http://127.0.0.1:%d/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, port),
		},
		{
			name: "https without verification", action: &v1.HTTPGetAction{Scheme: v1.URISchemeHTTPS, Path: "/ok", Port: intstr.FromInt(serverPort(t, tlsSrv))},
			want: outcomeSuccess, wantOut: "healthy",
		},
	}
	p := newProber(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			podIP := "127.0.0.1"
			if tt.podIP == "-" {
				podIP = ""
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			got, out, err := p.httpGet(context.Background(), tt.action, container, podIP, timeout)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Fatalf("err = %q, want %q", gotErr, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("outcome = %v, want %v (output %q)", got, tt.want, out)
			}
			if tt.prefix && !strings.HasPrefix(out, tt.wantOut) || !tt.prefix && out != tt.wantOut {
				t.Errorf("output = %q, want %q", out, tt.wantOut)
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		tests := []struct {
			name    string
			headers []v1.HTTPHeader
			want    http.Header // the probe-controlled headers seen by the server
			host    string
		}{
			{
				name: "defaults",
				want: http.Header{"User-Agent": {"kube-probe/1.32"}, "Accept": {"*/*"}},
				host: fmt.Sprintf("127.0.0.1:%d", port),
			},
			{
				name:    "custom headers, user agent and host",
				headers: []v1.HTTPHeader{{Name: "x-custom", Value: "a"}, {Name: "X-Custom", Value: "b"}, {Name: "User-Agent", Value: "mine"}, {Name: "Host", Value: "example.test"}},
				want:    http.Header{"User-Agent": {"mine"}, "Accept": {"*/*"}, "X-Custom": {"a", "b"}},
				host:    "example.test",
			},
			{
				name:    "empty accept removes it",
				headers: []v1.HTTPHeader{{Name: "Accept", Value: ""}},
				want:    http.Header{"User-Agent": {"kube-probe/1.32"}},
				host:    fmt.Sprintf("127.0.0.1:%d", port),
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				action := &v1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port), HTTPHeaders: tt.headers}
				if res, out, err := p.httpGet(context.Background(), action, container, "127.0.0.1", 5*time.Second); err != nil || res != outcomeSuccess {
					t.Fatalf("probe = (%v, %q, %v)", res, out, err)
				}
				mu.Lock()
				r := lastReq
				mu.Unlock()
				got := http.Header{}
				for _, k := range []string{"User-Agent", "Accept", "X-Custom"} {
					if v, ok := r.Header[k]; ok {
						got[k] = v
					}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
				if r.Host != tt.host {
					t.Errorf("Host = %q, want %q", r.Host, tt.host)
				}
				if enc := r.Header.Get("Accept-Encoding"); enc != "" {
					t.Errorf("Accept-Encoding = %q, want none", enc)
				}
			})
		}
	})
}

func TestHTTPRequestURL(t *testing.T) {
	c := &v1.Container{}
	tests := []struct {
		action v1.HTTPGetAction
		want   string
	}{
		{v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(8080)}, "http://10.42.0.5:8080/healthz"},
		{v1.HTTPGetAction{Path: "healthz?x=1", Port: intstr.FromInt(8080), Scheme: "HTTPS"}, "https://10.42.0.5:8080/healthz?x=1"},
		{v1.HTTPGetAction{Port: intstr.FromInt(80)}, "http://10.42.0.5:80"},
		{v1.HTTPGetAction{Path: "/", Port: intstr.FromInt(80), Host: "fd00::1"}, "http://[fd00::1]:80/"},
	}
	for _, tt := range tests {
		req, err := newHTTPRequest(context.Background(), &tt.action, c, "10.42.0.5")
		if err != nil {
			t.Fatalf("%+v: %v", tt.action, err)
		}
		if got := req.URL.String(); got != tt.want {
			t.Errorf("%+v: URL %q, want %q", tt.action, got, tt.want)
		}
	}
}
