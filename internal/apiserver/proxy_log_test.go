package apiserver

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/net/websocket"
)

// A pods/log request with a WebSocket upgrade gets the log as WebSocket
// messages, raw or base64 by subprotocol, and the socket closes at the end
// of the log, as upstream's API server serves it (the conformance test
// "should support retrieving logs from the container over websockets").
func TestServeLogWebSocket(t *testing.T) {
	const logText = "container is alive\nsecond line\n"
	s := &Server{log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As in the server, the handler's writer is a wrapper that only
		// unwraps to the one that can hijack.
		// And the log's last read comes with io.EOF, as a response body's.
		if err := s.serveLogWebSocket(unwrapOnly{w}, r, iotest.DataErrReader(strings.NewReader(logText))); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	dial := func(protocols ...string) (*websocket.Conn, error) {
		cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/namespaces/ns/pods/p/log", srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Protocol = protocols
		return websocket.DialConfig(cfg)
	}
	for _, tc := range []struct {
		protocol string
		decode   func(string) string
	}{
		{"binary.k8s.io", func(s string) string { return s }},
		{"base64.binary.k8s.io", func(s string) string {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatalf("message %q is not base64: %v", s, err)
			}
			return string(b)
		}},
	} {
		ws, err := dial(tc.protocol)
		if err != nil {
			t.Fatalf("%s: dial: %v", tc.protocol, err)
		}
		var got strings.Builder
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("%s: receive: %v", tc.protocol, err)
				}
				break
			}
			got.WriteString(tc.decode(msg))
		}
		_ = ws.Close()
		if got.String() != logText {
			t.Errorf("%s: log over the websocket = %q, want %q", tc.protocol, got.String(), logText)
		}
	}
	if ws, err := dial("v4.channel.k8s.io"); err == nil {
		_ = ws.Close()
		t.Error("a websocket offering only an unknown subprotocol was accepted")
	}
}

// unwrapOnly wraps a ResponseWriter as the server's middleware does,
// without implementing http.Hijacker itself.
type unwrapOnly struct{ http.ResponseWriter }

func (u unwrapOnly) Unwrap() http.ResponseWriter { return u.ResponseWriter }
