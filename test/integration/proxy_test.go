package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/skiff-io/skiff/test/framework"
)

// proxyEnv is a control plane with one node whose kubelet is a
// fakeKubelet, and pods in namespace "px":
//
//	one      container c, on the node
//	two      init container i, containers a and b, on the node
//	pending  container c, not scheduled
type proxyEnv struct {
	c       *framework.Cluster
	cs      kubernetes.Interface
	kubelet *fakeKubelet
}

func startProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	k := startFakeKubelet(t, c.DataDir)
	cs := c.Client
	_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1.invalid"}, {Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.port)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// n2 has an address but no kubelet port.
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n2"},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustNamespace(t, cs, "px")
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "one"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "two"}, Spec: corev1.PodSpec{NodeName: "n1",
			InitContainers: []corev1.Container{{Name: "i", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "crash"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "crashing", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "portless"}, Spec: corev1.PodSpec{NodeName: "n2", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
	} {
		created, err := cs.CoreV1().Pods("px").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "" { // kubectl port-forward wants a running pod
			created.Status.Phase = corev1.PodRunning
			if _, err := cs.CoreV1().Pods("px").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &proxyEnv{c: c, cs: cs, kubelet: k}
}

func TestProxyToKubelet(t *testing.T) {
	env := startProxyEnv(t)
	t.Run("logs", env.testLogs)
	t.Run("log errors", env.testLogErrors)
	t.Run("exec over websocket", func(t *testing.T) { env.testExec(t, "websocket") })
	t.Run("exec over spdy", func(t *testing.T) { env.testExec(t, "spdy") })
	t.Run("exec tty resize over websocket", env.testExecTTY)
	t.Run("attach over websocket", env.testAttach)
	t.Run("stream errors", env.testStreamErrors)
	t.Run("portforward over spdy", func(t *testing.T) { env.testPortForward(t, "spdy") })
	t.Run("portforward over websocket tunnel", func(t *testing.T) { env.testPortForward(t, "websocket") })
	t.Run("node proxy", env.testNodeProxy)
	t.Run("kubectl", env.testKubectl)
	if !env.kubelet.sawClient() {
		t.Errorf("the fake kubelet never saw the API server's client certificate %s", "kube-apiserver-kubelet-client/system:masters")
	}
}

func (env *proxyEnv) testLogs(t *testing.T) {
	ctx := ctxT(t)
	tail, since := int64(5), int64(30)
	body, err := env.cs.CoreV1().Pods("px").GetLogs("one", &corev1.PodLogOptions{
		Timestamps: true, TailLines: &tail, SinceSeconds: &since, Previous: true,
	}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if string(got) != "c line 1\nc line 2\n" {
		t.Errorf("log body = %q", got)
	}
	want := url.Values{"timestamps": {"true"}, "tailLines": {"5"}, "sinceSeconds": {"30"}, "previous": {"true"}}
	if diff := cmp.Diff(want, env.kubelet.lastLogQuery()); diff != "" {
		t.Errorf("kubelet log query (-want +got):\n%s", diff)
	}

	// A named container among several; follow streams as data comes.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	limit := int64(100)
	body, err = env.cs.CoreV1().Pods("px").GetLogs("two", &corev1.PodLogOptions{Container: "b", Follow: true, LimitBytes: &limit}).Stream(fctx)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	buf := make([]byte, len("b line 1\nb line 2\n"))
	if _, err := io.ReadFull(body, buf); err != nil {
		t.Fatalf("following: %v", err)
	}
	if string(buf) != "b line 1\nb line 2\n" {
		t.Errorf("followed log = %q", buf)
	}
	want = url.Values{"follow": {"true"}, "limitBytes": {"100"}}
	if diff := cmp.Diff(want, env.kubelet.lastLogQuery()); diff != "" {
		t.Errorf("kubelet log query (-want +got):\n%s", diff)
	}

	// An unscheduled pod has no logs yet: 204, empty.
	raw, err := env.cs.CoreV1().Pods("px").GetLogs("pending", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || len(raw) != 0 {
		t.Errorf("logs of an unscheduled pod: %q, %v; want empty, no error", raw, err)
	}
}

func (env *proxyEnv) testLogErrors(t *testing.T) {
	ctx := ctxT(t)
	neg, zero := int64(-1), int64(0)
	now := metav1.Now()
	tests := []struct {
		name    string
		pod     string
		opts    corev1.PodLogOptions
		code    int32
		message string
	}{
		{"no container among several", "two", corev1.PodLogOptions{}, 400,
			"a container name must be specified for pod two, choose one of: [i a b]"},
		{"unknown container", "one", corev1.PodLogOptions{Container: "nope"}, 400,
			"container nope is not valid for pod one"},
		{"negative tailLines", "one", corev1.PodLogOptions{TailLines: &neg}, 422,
			`PodLogOptions "one" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0`},
		{"zero limitBytes", "one", corev1.PodLogOptions{LimitBytes: &zero}, 422,
			`PodLogOptions "one" is invalid: limitBytes: Invalid value: 0: must be greater than 0`},
		{"sinceSeconds and sinceTime", "one", corev1.PodLogOptions{SinceSeconds: &neg, SinceTime: &now}, 422,
			"PodLogOptions \"one\" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"missing pod", "ghost", corev1.PodLogOptions{}, 404, `pods "ghost" not found`},
		{"kubelet refuses", "crash", corev1.PodLogOptions{}, 400, `container "crashing" in pod "crash" is waiting to start: ContainerCreating` + "\n"},
		{"node without kubelet port", "portless", corev1.PodLogOptions{}, 503,
			`node "n2" reports no kubelet port in status.daemonEndpoints.kubeletEndpoint: its kubelet cannot be reached`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := env.cs.CoreV1().Pods("px").GetLogs(tc.pod, &tc.opts).Stream(ctx)
			if err == nil {
				body.Close()
			}
			assertStatus(t, err, tc.code, tc.message)
		})
	}
}

// assertStatus checks that err is an API Status with code and message.
func assertStatus(t *testing.T, err error, code int32, message string) {
	t.Helper()
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want a Status %d", err, err, code)
	}
	st := se.Status()
	if st.Code != code || st.Message != message {
		t.Errorf("Status = %d %q, want %d %q", st.Code, st.Message, code, message)
	}
}

// executor returns a remote command executor of the given kind for a pod
// subresource.
func (env *proxyEnv) executor(t *testing.T, kind string, req *rest.Request) remotecommand.Executor {
	t.Helper()
	var (
		ex  remotecommand.Executor
		err error
	)
	switch kind {
	case "websocket":
		ex, err = remotecommand.NewWebSocketExecutor(env.c.Config, http.MethodGet, req.URL().String())
	default:
		ex, err = remotecommand.NewSPDYExecutor(env.c.Config, http.MethodPost, req.URL())
	}
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func (env *proxyEnv) execRequest(pod string, opts *corev1.PodExecOptions) *rest.Request {
	return env.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("px").Name(pod).SubResource("exec").
		VersionedParams(opts, scheme.ParameterCodec)
}

func (env *proxyEnv) testExec(t *testing.T, kind string) {
	ctx := ctxT(t)
	// stdin -> stdout through "cat".
	req := env.execRequest("two", &corev1.PodExecOptions{Container: "a", Command: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true})
	var stdout, stderr bytes.Buffer
	err := env.executor(t, kind, req).StreamWithContext(ctx, remotecommand.StreamOptions{
		Stdin: strings.NewReader("hello through " + kind), Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("exec cat: %v (stderr %q)", err, stderr.String())
	}
	if stdout.String() != "hello through "+kind {
		t.Errorf("stdout = %q", stdout.String())
	}
	path, q := env.kubelet.lastExecQuery()
	if path != "/exec/px/two/a" || q.Get("input") != "1" || q.Get("output") != "1" || q.Get("error") != "1" || q.Get("tty") != "" ||
		!cmp.Equal(q["command"], []string{"cat"}) {
		t.Errorf("kubelet exec request = %s %v", path, q)
	}

	// A non-zero exit code comes back as an exit code error.
	req = env.execRequest("one", &corev1.PodExecOptions{Command: []string{"sh", "-c", "exit 3"}, Stdout: true, Stderr: true})
	stdout.Reset()
	stderr.Reset()
	err = env.executor(t, kind, req).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	var exitErr utilexec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
		t.Fatalf("exec exit 3: err = %v (%T), want exit code 3", err, err)
	}
	if stderr.String() != "exiting with 3\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
	if path, _ := env.kubelet.lastExecQuery(); path != "/exec/px/one/c" {
		t.Errorf("default container: kubelet path %s, want /exec/px/one/c", path)
	}
}

// fixedSize is a TerminalSizeQueue that reports one size.
type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		// Block like a terminal that is never resized again; the
		// executor stops asking when the stream ends.
		select {}
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 120, Height: 40}
}

func (env *proxyEnv) testExecTTY(t *testing.T) {
	ctx := ctxT(t)
	req := env.execRequest("one", &corev1.PodExecOptions{Command: []string{"size"}, Stdout: true, TTY: true})
	var stdout bytes.Buffer
	err := env.executor(t, "websocket", req).StreamWithContext(ctx, remotecommand.StreamOptions{
		Stdout: &stdout, Tty: true, TerminalSizeQueue: &fixedSize{},
	})
	if err != nil {
		t.Fatalf("exec tty: %v", err)
	}
	if stdout.String() != "120x40" {
		t.Errorf("the kubelet saw terminal size %q, want 120x40", stdout.String())
	}
	if _, q := env.kubelet.lastExecQuery(); q.Get("tty") != "1" {
		t.Errorf("kubelet query %v lacks tty=1", q)
	}
}

func (env *proxyEnv) testAttach(t *testing.T) {
	ctx := ctxT(t)
	req := env.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("px").Name("two").SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: "b", Stdin: true, Stdout: true}, scheme.ParameterCodec)
	var stdout bytes.Buffer
	err := env.executor(t, "websocket", req).StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("attached"), Stdout: &stdout})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if stdout.String() != "attached" {
		t.Errorf("stdout = %q", stdout.String())
	}
	if path, q := env.kubelet.lastExecQuery(); path != "/attach/px/two/b" || q.Has("command") {
		t.Errorf("kubelet attach request = %s %v", path, q)
	}
}

func (env *proxyEnv) testStreamErrors(t *testing.T) {
	ctx := ctxT(t)
	post := func(pod, sub string, params map[string]string) error {
		r := env.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("px").Name(pod).SubResource(sub)
		for k, v := range params {
			r = r.Param(k, v)
		}
		return r.Do(ctx).Error()
	}
	tests := []struct {
		name, pod, sub string
		params         map[string]string
		code           int32
		message        string
	}{
		{"exec unscheduled pod", "pending", "exec", map[string]string{"command": "ls", "stdout": "true"}, 400, "pod pending does not have a host assigned"},
		{"portforward unscheduled pod", "pending", "portforward", map[string]string{"ports": "80"}, 400, "pod pending does not have a host assigned"},
		{"exec no container among several", "two", "exec", map[string]string{"command": "ls"}, 400, "a container name must be specified for pod two, choose one of: [i a b]"},
		{"attach unknown container", "one", "attach", map[string]string{"container": "x"}, 400, "container x is not valid for pod one"},
		{"exec without upgrade", "one", "exec", map[string]string{"command": "ls"}, 400, "Upgrade request required"},
		{"portforward bad port", "one", "portforward", map[string]string{"ports": "http"}, 400, `ports: invalid port "http": must be an integer`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertStatus(t, post(tc.pod, tc.sub, tc.params), tc.code, tc.message)
		})
	}

	// Over SPDY the client sees the same Status.
	req := env.execRequest("pending", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true})
	err := env.executor(t, "spdy", req).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "pod pending does not have a host assigned") {
		t.Errorf("spdy exec on an unscheduled pod: %v", err)
	}
}

func (env *proxyEnv) testPortForward(t *testing.T, kind string) {
	req := env.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("px").Name("one").SubResource("portforward")
	var pfDialer httpstream.Dialer
	switch kind {
	case "websocket":
		d, err := portforward.NewSPDYOverWebsocketDialer(req.URL(), env.c.Config)
		if err != nil {
			t.Fatal(err)
		}
		pfDialer = d
	default:
		rt, upgrader, err := spdy.RoundTripperFor(env.c.Config)
		if err != nil {
			t.Fatal(err)
		}
		pfDialer = spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, req.URL())
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	var out, errOut lockedBuffer // the forwarder writes from several goroutines
	pf, err := portforward.NewOnAddresses(pfDialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	t.Cleanup(func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("ForwardPorts: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port forward ended before ready: %v (%s)", err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("port forward not ready after 30s")
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 || ports[0].Remote != 8080 {
		t.Fatalf("ports = %v, %v", ports, err)
	}
	for i := range 2 { // two connections over the same tunnel
		msg := fmt.Sprintf("echo %d over %s", i, kind)
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || string(got) != msg {
			t.Errorf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

func (env *proxyEnv) testNodeProxy(t *testing.T) {
	ctx := ctxT(t)
	body, err := env.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/healthz").DoRaw(ctx)
	if err != nil || string(body) != "ok" {
		t.Errorf("nodes/n1/proxy/healthz = %q, %v", body, err)
	}
	body, err = env.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/containerLogs/px/one/c").Param("tailLines", "7").DoRaw(ctx)
	if err != nil || string(body) != "c line 1\nc line 2\n" {
		t.Errorf("nodes/n1/proxy/containerLogs = %q, %v", body, err)
	}
	if q := env.kubelet.lastLogQuery(); q.Get("tailLines") != "7" {
		t.Errorf("the query did not reach the kubelet: %v", q)
	}
	err = env.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n2/proxy/healthz").Do(ctx).Error()
	assertStatus(t, err, 503, `node "n2" reports no kubelet port in status.daemonEndpoints.kubeletEndpoint: its kubelet cannot be reached`)
	err = env.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/ghost/proxy/healthz").Do(ctx).Error()
	assertStatus(t, err, 404, `nodes "ghost" not found`)
}

// testKubectl drives the stock kubectl: logs, exec with stdin (WebSocket
// first, as kubectl 1.32 does), an exit code, port-forward, and a raw
// node proxy read.
func (env *proxyEnv) testKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	run := func(t *testing.T, env2 []string, stdin string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", env.c.Kubeconfig, "-n", "px"}, args...)...)
		cmd.Env = append(os.Environ(), env2...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("kubectl %v: %v", args, err)
		}
		return stdout.String(), stderr.String(), code
	}
	spdyOnly := []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}
	tests := []struct {
		name       string
		env        []string
		stdin      string
		args       []string
		wantOut    string
		wantCode   int
		wantErrSub string
	}{
		{"logs", nil, "", []string{"logs", "one"}, "c line 1\nc line 2\n", 0, ""},
		{"logs container", nil, "", []string{"logs", "two", "-c", "b", "--tail", "3"}, "b line 1\nb line 2\n", 0, ""},
		{"logs unknown container", nil, "", []string{"logs", "one", "-c", "zz"}, "", 1, "container zz is not valid for pod one"},
		{"exec stdin", nil, "hello kubectl\n", []string{"exec", "-i", "one", "--", "cat"}, "hello kubectl\n", 0, ""},
		{"exec stdin over spdy", spdyOnly, "hello spdy\n", []string{"exec", "-i", "one", "--", "cat"}, "hello spdy\n", 0, ""},
		{"exec exit code", nil, "", []string{"exec", "one", "--", "sh", "-c", "exit 3"}, "", 3, "command terminated with exit code 3"},
		{"exec exit code over spdy", spdyOnly, "", []string{"exec", "one", "--", "sh", "-c", "exit 4"}, "", 4, "command terminated with exit code 4"},
		{"node proxy", nil, "", []string{"get", "--raw", "/api/v1/nodes/n1/proxy/healthz"}, "ok", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, tc.env, tc.stdin, tc.args...)
			if out != tc.wantOut || code != tc.wantCode || !strings.Contains(errOut, tc.wantErrSub) {
				t.Errorf("kubectl %v: stdout %q, exit %d, stderr %q; want %q, %d, stderr containing %q",
					tc.args, out, code, errOut, tc.wantOut, tc.wantCode, tc.wantErrSub)
			}
			// kubectl tries WebSocket first: that exec reaches the kubelet
			// from the translator (the API server's own SPDY client);
			// kubectl's SPDY is relayed with kubectl's User-Agent.
			if tc.args[0] == "exec" {
				_, q := env.kubelet.lastExecQuery()
				if relayed := strings.HasPrefix(q.Get("__ua"), "kubectl"); relayed != (tc.env != nil) {
					t.Errorf("kubectl exec reached the kubelet with User-Agent %q (want relayed SPDY: %v)", q.Get("__ua"), tc.env != nil)
				}
			}
		})
	}

	t.Run("port-forward", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.c.Kubeconfig, "-n", "px", "port-forward", "--address", "127.0.0.1", "pod/one", ":9000")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cancel()
			_ = cmd.Wait()
		}()
		line := make([]byte, 256)
		n, err := stdout.Read(line)
		m := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 9000`).FindSubmatch(line[:n])
		if err != nil || m == nil {
			t.Fatalf("kubectl port-forward said %q, %v (stderr %q)", line[:n], err, stderr.String())
		}
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+string(m[1]), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.WriteString(conn, "via kubectl")
		_ = conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(conn)
		if err != nil || string(got) != "via kubectl" {
			t.Errorf("echo through kubectl port-forward = %q, %v (stderr %q)", got, err, stderr.String())
		}
	})
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
