package apiserver

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/apimachinery/pkg/util/portforward"
)

// tunnelPortForward serves pods/portforward to a client that tunnels SPDY
// through a WebSocket (subprotocol "SPDY/3.1+portforward.k8s.io",
// kubectl's PortForwardWebsockets). It upgrades the kubelet side to SPDY
// with the tunneled protocols; when the kubelet agrees it accepts the
// WebSocket with the prefixed protocol the kubelet chose and copies bytes:
// each binary message from the client is written to the kubelet as is,
// and whatever the kubelet sends goes back as binary messages (the client
// reads the messages' payloads as one byte stream). A kubelet that does not
// switch protocols has its answer passed to the client, which then falls
// back to plain SPDY.
func (s *Server) tunnelPortForward(w http.ResponseWriter, r *http.Request, loc *url.URL) error {
	var protocols []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, portforward.WebsocketsSPDYTunnelingPrefix) {
				protocols = append(protocols, strings.TrimPrefix(p, portforward.WebsocketsSPDYTunnelingPrefix))
			}
		}
	}
	if len(protocols) == 0 {
		http.Error(w, "unable to upgrade: no tunneling spdy protocols provided", http.StatusBadRequest)
		return nil
	}
	header := forwardHeader(r.Header)
	for k := range header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Sec-Websocket-") {
			header.Del(k)
		}
	}
	header.Set("Connection", "Upgrade")
	header.Set("Upgrade", "SPDY/3.1")
	header["X-Stream-Protocol-Version"] = protocols

	up, err := s.upgradeKubelet(r.Context(), r.Method, loc, header)
	if err != nil {
		return err
	}
	if up.resp.StatusCode != http.StatusSwitchingProtocols {
		up.passResponse(w)
		return nil
	}
	defer up.conn.Close()
	chosen := up.resp.Header.Get("X-Stream-Protocol-Version")
	if chosen == "" {
		chosen = protocols[0]
	}
	upgrader := websocket.Upgrader{
		Subprotocols: []string{portforward.WebsocketsSPDYTunnelingPrefix + chosen},
		// The request is authenticated and authorized; browsers' origin
		// rules do not apply to API clients.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader has answered the client
	}
	defer ws.Close()
	s.pipeTunnel(ws, up)
	return nil
}

// pipeTunnel copies between the WebSocket and the kubelet connection until
// either side ends or the server drains, then closes the WebSocket with a
// normal closure and returns after both copies have stopped.
func (s *Server) pipeTunnel(ws *websocket.Conn, up *kubeletUpgrade) {
	done := make(chan struct{}, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client -> kubelet
		defer wg.Done()
		defer func() { done <- struct{}{} }()
		for {
			typ, msg, err := ws.NextReader()
			if err != nil {
				return
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			if _, err := io.Copy(up.conn, msg); err != nil {
				return
			}
		}
	}()
	go func() { // kubelet -> client
		defer wg.Done()
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32*1024)
		for {
			n, err := up.reader.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-s.shutdown:
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	ws.Close()
	up.conn.Close()
	wg.Wait()
}
