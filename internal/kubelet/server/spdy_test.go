package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// newSPDYStreaming is a streaming server speaking remotecommand v4 over
// SPDY: it greets on stdout, then echoes stdin to stdout until stdin ends.
func newSPDYStreaming(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := httpstream.Handshake(r, w, []string{"v4.channel.k8s.io"}); err != nil {
			return
		}
		streams := make(chan httpstream.Stream, 4)
		conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, _ <-chan struct{}) error {
			streams <- s
			return nil
		})
		if conn == nil {
			return
		}
		defer conn.Close()
		byType := map[string]httpstream.Stream{}
		timeout := time.After(10 * time.Second)
		for len(byType) < 3 { // error, stdin, stdout
			select {
			case s := <-streams:
				byType[s.Headers().Get(v1.StreamType)] = s
			case <-timeout:
				t.Errorf("streams %v arrived, want error, stdin and stdout", byType)
				return
			}
		}
		stdout := byType[v1.StreamTypeStdout]
		_, _ = io.WriteString(stdout, "hello over spdy\n")
		_, _ = io.Copy(stdout, byType[v1.StreamTypeStdin])
		stdout.Close()
		byType[v1.StreamTypeError].Close() // nothing on the error stream: success
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestExecOverSPDY drives the server with client-go's own SPDY executor,
// the path `kubectl exec` takes through the API server.
func TestExecOverSPDY(t *testing.T) {
	backend := newSPDYStreaming(t)
	h, rt, _ := streamFixture(t)
	rt.streamURL = backend.URL + "/exec/token"

	cfg := &rest.Config{
		Host: h.base,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: h.pki.caPEM, CertData: h.pki.clientCertPEM, KeyData: h.pki.clientKeyPEM,
		},
	}
	u, err := url.Parse(h.base + "/exec/default/web/app?command=cat&input=1&output=1")
	if err != nil {
		t.Fatal(err)
	}
	exec, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("ping\n"), Stdout: &stdout}); err != nil {
		t.Fatalf("exec through the kubelet server: %v", err)
	}
	if got, want := stdout.String(), "hello over spdy\nping\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}
