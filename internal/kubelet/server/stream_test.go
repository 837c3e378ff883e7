package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeStreaming stands in for containerd's streaming server: it records the
// request line and headers of each request and answers WebSocket upgrades
// (echoing on channel 1) and SPDY-style upgrades (echoing raw bytes).
type fakeStreaming struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newFakeStreaming(t *testing.T) *fakeStreaming {
	f := &fakeStreaming{}
	upgrader := websocket.Upgrader{Subprotocols: []string{"v5.channel.k8s.io", "channel.k8s.io"}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(r.Context()))
		f.mu.Unlock()
		switch {
		case websocket.IsWebSocketUpgrade(r):
			conn, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.WriteMessage(websocket.BinaryMessage, append([]byte{1}, "hello from the runtime\n"...))
			for {
				typ, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if err := conn.WriteMessage(typ, append([]byte{1}, msg[1:]...)); err != nil {
					return
				}
			}
		case strings.EqualFold(r.Header.Get("Upgrade"), "SPDY/3.1"):
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n",
				r.Header.Get("X-Stream-Protocol-Version"))
			_ = rw.Flush()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(rw, buf); err != nil {
				return
			}
			_, _ = conn.Write(buf)
		default:
			http.Error(w, "upgrade required", http.StatusBadRequest)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeStreaming) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

func streamFixture(t *testing.T) (*harness, *fakeRuntime, *fakeStreaming) {
	backend := newFakeStreaming(t)
	pods := &fakePods{
		pods:       []*v1.Pod{testPod("default", "web", "u1", "app")},
		containers: map[string]fakeContainer{"default/web/app": {id: "c1"}},
		sandboxes:  map[string]string{"default/web": "sb1"},
	}
	rt := &fakeRuntime{streamURL: backend.srv.URL + "/exec/one-time-token?session=abc"}
	return startServer(t, pods, rt, nil), rt, backend
}

func TestExecOverWebSocket(t *testing.T) {
	h, rt, backend := streamFixture(t)
	dialer := websocket.Dialer{TLSClientConfig: h.pki.client, Subprotocols: []string{"v5.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	url := "wss" + strings.TrimPrefix(h.base, "https") + "/exec/default/web/app?command=echo&command=hi&output=1&error=1"
	conn, resp, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial through the kubelet server: %v (response %v)", err, resp)
	}
	defer conn.Close()
	if got := conn.Subprotocol(); got != "v5.channel.k8s.io" {
		t.Errorf("negotiated subprotocol %q, want v5.channel.k8s.io", got)
	}
	_, msg, err := conn.ReadMessage()
	if err != nil || string(msg) != "\x01hello from the runtime\n" {
		t.Fatalf("first message = %q, %v", msg, err)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte("\x00ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err = conn.ReadMessage(); err != nil || string(msg) != "\x01ping" {
		t.Fatalf("echo = %q, %v", msg, err)
	}

	want := []*runtimeapi.ExecRequest{{ContainerId: "c1", Cmd: []string{"echo", "hi"}, Stdout: true, Stderr: true}}
	if diff := cmp.Diff(want, rt.execReqs, protocmp.Transform()); diff != "" {
		t.Errorf("ExecRequest (-want +got):\n%s", diff)
	}
	reqs := backend.requests()
	if len(reqs) != 1 {
		t.Fatalf("backend saw %d requests, want 1", len(reqs))
	}
	if got := reqs[0].URL.RequestURI(); got != "/exec/one-time-token?session=abc" {
		t.Errorf("backend request URI %q, want the runtime's URL", got)
	}
	if got := reqs[0].Header.Get("Sec-WebSocket-Protocol"); got != "v5.channel.k8s.io" {
		t.Errorf("backend saw Sec-WebSocket-Protocol %q", got)
	}
}

// TestShutdownEndsStreams: Start returns while a proxied stream is open, and
// the client's connection is closed.
func TestShutdownEndsStreams(t *testing.T) {
	h, _, _ := streamFixture(t)
	dialer := websocket.Dialer{TLSClientConfig: h.pki.client, Subprotocols: []string{"v5.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := dialer.Dial("wss"+strings.TrimPrefix(h.base, "https")+"/attach/default/web/app?output=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	h.stop()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := conn.ReadMessage(); err == nil {
		t.Fatalf("stream still open after shutdown: read %q", msg)
	} else if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatal("stream still open after shutdown: read timed out")
	}
}

func TestPortForwardSPDYUpgrade(t *testing.T) {
	h, rt, backend := streamFixture(t)
	conn, err := tls.Dial("tcp", strings.TrimPrefix(h.base, "https://"), h.pki.client)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /portForward/default/web HTTP/1.1\r\nHost: node\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"+
		"X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "SPDY/3.1" ||
		resp.Header.Get("X-Stream-Protocol-Version") != "portforward.k8s.io" {
		t.Fatalf("response %s %v, want 101 to SPDY/3.1 with the protocol echoed", resp.Status, resp.Header)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo over the upgraded connection = %q, %v", buf, err)
	}
	if diff := cmp.Diff([]*runtimeapi.PortForwardRequest{{PodSandboxId: "sb1"}}, rt.portReqs, protocmp.Transform()); diff != "" {
		t.Errorf("PortForwardRequest (-want +got):\n%s", diff)
	}
	if reqs := backend.requests(); len(reqs) != 1 || reqs[0].Method != "POST" {
		t.Errorf("backend requests %v, want one POST", reqs)
	}
}

func TestStreamRequests(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		runtime  func(*fakeRuntime)
		wantCode int
		wantMsg  string // Status message, for errors
		check    func(t *testing.T, rt *fakeRuntime)
	}{
		{
			name: "exec passes flags", path: "/exec/default/web/app?command=sh&input=1&output=1&tty=1", wantCode: 400,
			check: func(t *testing.T, rt *fakeRuntime) {
				want := []*runtimeapi.ExecRequest{{ContainerId: "c1", Cmd: []string{"sh"}, Stdin: true, Stdout: true, Tty: true}}
				if diff := cmp.Diff(want, rt.execReqs, protocmp.Transform()); diff != "" {
					t.Errorf("ExecRequest (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "exec with the uid form and API server names", path: "/exec/default/web/u1/app?command=ls&stdout=true", wantCode: 400,
			check: func(t *testing.T, rt *fakeRuntime) {
				want := []*runtimeapi.ExecRequest{{ContainerId: "c1", Cmd: []string{"ls"}, Stdout: true}}
				if diff := cmp.Diff(want, rt.execReqs, protocmp.Transform()); diff != "" {
					t.Errorf("ExecRequest (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "attach", path: "/attach/default/web/app?output=1&error=1", wantCode: 400,
			check: func(t *testing.T, rt *fakeRuntime) {
				want := []*runtimeapi.AttachRequest{{ContainerId: "c1", Stdout: true, Stderr: true}}
				if diff := cmp.Diff(want, rt.attachReqs, protocmp.Transform()); diff != "" {
					t.Errorf("AttachRequest (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "portForward with ports", path: "/portForward/default/web?port=80&port=8080", wantCode: 400,
			check: func(t *testing.T, rt *fakeRuntime) {
				want := []*runtimeapi.PortForwardRequest{{PodSandboxId: "sb1", Port: []int32{80, 8080}}}
				if diff := cmp.Diff(want, rt.portReqs, protocmp.Transform()); diff != "" {
					t.Errorf("PortForwardRequest (-want +got):\n%s", diff)
				}
			},
		},
		{name: "exec without command", path: "/exec/default/web/app?output=1", wantCode: 400, wantMsg: "you must specify at least one command for the container"},
		{name: "exec without streams", path: "/exec/default/web/app?command=ls", wantCode: 400, wantMsg: "you must specify at least 1 of stdin, stdout, stderr"},
		{name: "unknown pod", path: "/exec/default/nope/app?command=ls&output=1", wantCode: 404, wantMsg: `pod "nope" does not exist`},
		{name: "unknown container", path: "/attach/default/web/db?output=1", wantCode: 400, wantMsg: `container "db" in pod "web" is not available`},
		{name: "bad port", path: "/portForward/default/web?port=70000", wantCode: 400, wantMsg: `invalid port "70000": must be between 1 and 65535`},
		{
			name: "runtime says not found", path: "/exec/default/web/app?command=ls&output=1", wantCode: 404,
			runtime: func(rt *fakeRuntime) { rt.streamErr = grpcstatus.Error(codes.NotFound, "container gone") },
			wantMsg: `exec in container "c1": container gone`,
		},
		{
			name: "runtime URL unusable", path: "/portForward/default/web", wantCode: 500,
			runtime: func(rt *fakeRuntime) { rt.streamURL = "/relative" },
			wantMsg: `runtime returned an unusable streaming URL "/relative"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rt, _ := streamFixture(t)
			if tt.runtime != nil {
				tt.runtime(rt)
			}
			// A plain GET is not an upgrade: the fake streaming server
			// answers 400, which the proxy passes through.
			code, body := h.get(t, tt.path)
			if code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", code, tt.wantCode, body)
			}
			if tt.wantMsg != "" {
				if st := decodeStatus(t, body); st.Message != tt.wantMsg {
					t.Errorf("message %q, want %q", st.Message, tt.wantMsg)
				}
			}
			if tt.check != nil {
				tt.check(t, rt)
			}
		})
	}
}
