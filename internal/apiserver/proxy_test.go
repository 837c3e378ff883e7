package apiserver

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
)

func TestPodContainer(t *testing.T) {
	pod := func(init, main, eph []string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		for _, n := range init {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n})
		}
		for _, n := range main {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
		}
		for _, n := range eph {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: n}})
		}
		return p
	}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		asked   string
		want    string
		wantErr string
	}{
		{"only container by default", pod(nil, []string{"c"}, nil), "", "c", ""},
		{"only container with init containers", pod([]string{"i"}, []string{"c"}, nil), "", "c", ""},
		{"named", pod(nil, []string{"a", "b"}, nil), "b", "b", ""},
		{"init container by name", pod([]string{"i"}, []string{"a", "b"}, nil), "i", "i", ""},
		{"ephemeral container by name", pod(nil, []string{"a"}, []string{"debug"}), "debug", "debug", ""},
		{"several, none named", pod([]string{"i"}, []string{"a", "b"}, []string{"e"}), "", "",
			"a container name must be specified for pod p, choose one of: [i a b e]"},
		{"no containers", pod(nil, nil, nil), "", "", "a container name must be specified for pod p"},
		{"unknown", pod(nil, []string{"a"}, nil), "x", "", "container x is not valid for pod p"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podContainer(tc.pod, tc.asked)
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want 400 %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("podContainer = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPodLogOptions(t *testing.T) {
	tests := []struct {
		name      string
		query     string
		wantQuery url.Values // to the kubelet
		wantErr   string     // from parsing or validation
	}{
		{"none", "", url.Values{}, ""},
		{"all", "container=c&follow=true&previous=1&timestamps=true&sinceSeconds=10&tailLines=0&limitBytes=5&insecureSkipTLSVerifyBackend=true",
			url.Values{"follow": {"true"}, "previous": {"true"}, "timestamps": {"true"}, "sinceSeconds": {"10"}, "tailLines": {"0"}, "limitBytes": {"5"}}, ""},
		{"false values", "follow=false&previous=0", url.Values{}, ""},
		{"sinceTime", "sinceTime=2024-05-01T10:00:00%2B02:00", url.Values{"sinceTime": {"2024-05-01T08:00:00Z"}}, ""},
		{"bad integer", "tailLines=ten", nil, `tailLines: invalid value "ten": must be an integer`},
		{"bad time", "sinceTime=yesterday", nil, `sinceTime: invalid value "yesterday": must be an RFC 3339 time`},
		{"negative tail", "tailLines=-1", nil, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{"zero limit", "limitBytes=0", nil, "limitBytes: Invalid value: 0: must be greater than 0"},
		{"zero since", "sinceSeconds=0", nil, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{"both since", "sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z", nil, "[]: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := podLogOptions(q)
			if err == nil {
				if errs := validatePodLogOptions(opts); len(errs) > 0 {
					err = errs.ToAggregate()
				}
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantQuery, kubeletLogQuery(opts)); diff != "" {
				t.Errorf("kubelet query (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeKubeletHost(t *testing.T) {
	node := func(port int32, addrs ...corev1.NodeAddress) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{
			Addresses: addrs, DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
		}}
	}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}
	external := corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.1"}
	hostname := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n.example"}
	v6 := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::1"}
	tests := []struct {
		name    string
		node    *corev1.Node
		want    string
		wantErr bool
	}{
		{"internal first", node(10250, hostname, external, internal), "10.0.0.1:10250", false},
		{"external before hostname", node(10250, hostname, external), "203.0.113.1:10250", false},
		{"hostname last", node(10250, hostname), "n.example:10250", false},
		{"ipv6", node(1, v6), "[fd00::1]:1", false},
		{"no address", node(10250), "", true},
		{"no port", node(0, internal), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nodeKubeletHost(tc.node)
			if tc.wantErr {
				if !apierrors.IsServiceUnavailable(err) {
					t.Fatalf("err = %v, want 503", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("nodeKubeletHost = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestStreamRequestInfo(t *testing.T) {
	tests := []struct {
		method, path string
		wantVerb     string
		wantSub      string
	}{
		{"GET", "/api/v1/namespaces/ns/pods/p/exec", "create", "exec"},
		{"POST", "/api/v1/namespaces/ns/pods/p/exec", "create", "exec"},
		{"GET", "/api/v1/namespaces/ns/pods/p/attach", "create", "attach"},
		{"GET", "/api/v1/namespaces/ns/pods/p/portforward", "create", "portforward"},
		{"GET", "/api/v1/namespaces/ns/pods/p/log", "get", "log"},
		{"GET", "/api/v1/nodes/n/proxy/stats/summary", "get", "proxy"},
		{"POST", "/api/v1/nodes/n/proxy/run/x", "create", "proxy"},
		{"GET", "/api/v1/nodes/n/proxy", "get", "proxy"},
		{"GET", "/api/v1/namespaces/ns/configmaps/c/exec/x", "get", "exec/x"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			info := parseRequest(httptest.NewRequest(tc.method, tc.path, nil))
			if info.verb != tc.wantVerb || info.sub != tc.wantSub {
				t.Errorf("verb, sub = %q, %q; want %q, %q", info.verb, info.sub, tc.wantVerb, tc.wantSub)
			}
		})
	}
}

func TestNodeProxyPath(t *testing.T) {
	tests := map[string]string{
		"/api/v1/nodes/n/proxy":                "/",
		"/api/v1/nodes/n/proxy/":               "/",
		"/api/v1/nodes/n/proxy/healthz":        "/healthz",
		"/api/v1/nodes/n/proxy/stats/summary/": "/stats/summary/",
	}
	for in, want := range tests {
		if got := proxySubPath(in, "nodes", "n"); got != want {
			t.Errorf("proxySubPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStreamKubeletQueries(t *testing.T) {
	q, _ := url.ParseQuery("command=sh&command=-c&command=echo+hi&container=c&stdin=true&stdout=1&stderr=false&tty=true")
	opts := parseStreamOptions(q)
	if diff := cmp.Diff(url.Values{"command": {"sh", "-c", "echo hi"}, "input": {"1"}, "output": {"1"}, "tty": {"1"}}, opts.kubeletQuery(true)); diff != "" {
		t.Errorf("exec query (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(url.Values{"input": {"1"}, "output": {"1"}, "tty": {"1"}}, opts.kubeletQuery(false)); diff != "" {
		t.Errorf("attach query (-want +got):\n%s", diff)
	}

	pf, err := portForwardQuery(url.Values{"ports": {"80,443", "8080"}})
	if err != nil || pf.Get("port") != "80,443,8080" {
		t.Errorf("portforward query = %v, %v", pf, err)
	}
	if _, err := portForwardQuery(url.Values{"ports": {"http"}}); !apierrors.IsBadRequest(err) {
		t.Errorf("bad port: err = %v, want 400", err)
	}
}

func TestSizeQueueEndsWithStream(t *testing.T) {
	ch := make(chan clientremotecommand.TerminalSize, 1)
	ch <- clientremotecommand.TerminalSize{Width: 3, Height: 4}
	close(ch)
	q := sizeQueue{ctx: t.Context(), sizes: ch}
	if s := q.Next(); s == nil || s.Width != 3 || s.Height != 4 {
		t.Fatalf("first Next = %v", s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s := q.Next(); s != nil {
			t.Errorf("Next after the stream ended = %v, want nil", s)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Next blocked after the stream ended")
	}
}
