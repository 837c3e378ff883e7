package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// upgradeTimeout bounds dialing the kubelet and its answer to an upgrade.
const upgradeTimeout = 30 * time.Second

// kubeletUpgrade is a kubelet's answer to an upgrade request: the
// connection, a reader holding what the kubelet sent after its answer's
// head, and the answer.
type kubeletUpgrade struct {
	conn   net.Conn
	reader *bufio.Reader
	resp   *http.Response
}

// upgradeKubelet sends an upgrade request (method, header) for loc to the
// kubelet on a new connection and reads the answer. The caller owns the
// returned connection.
func (s *Server) upgradeKubelet(ctx context.Context, method string, loc *url.URL, header http.Header) (*kubeletUpgrade, error) {
	dctx, cancel := context.WithTimeout(ctx, upgradeTimeout)
	defer cancel()
	conn, err := s.kubelet.dial(dctx, loc.Host)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("error dialing backend: %w", err))
	}
	_ = conn.SetDeadline(time.Now().Add(upgradeTimeout))
	req := &http.Request{
		Method: method, URL: loc, Host: loc.Host, Header: header,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, apierrors.NewInternalError(fmt.Errorf("error sending request to backend: %w", err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, apierrors.NewInternalError(fmt.Errorf("error reading backend response: %w", err))
	}
	_ = conn.SetDeadline(time.Time{})
	return &kubeletUpgrade{conn: conn, reader: br, resp: resp}, nil
}

// passResponse sends a kubelet's answer that is not an upgrade to the
// client as it is, and closes the kubelet connection.
func (u *kubeletUpgrade) passResponse(w http.ResponseWriter) {
	defer u.conn.Close()
	defer u.resp.Body.Close()
	for k, v := range u.resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(u.resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(u.resp.Body, maxKubeletErrorBody))
}

// proxyUpgrade relays an upgrade request (SPDY or WebSocket) to loc with
// header. When the kubelet switches protocols it hijacks the client's
// connection, forwards the kubelet's 101 and copies bytes both ways until
// either side ends or the server drains; any other answer goes to the
// client as it is (so a client may fall back as with upstream).
func (s *Server) proxyUpgrade(w http.ResponseWriter, r *http.Request, loc *url.URL, header http.Header) error {
	up, err := s.upgradeKubelet(r.Context(), r.Method, loc, header)
	if err != nil {
		return err
	}
	if up.resp.StatusCode != http.StatusSwitchingProtocols {
		up.passResponse(w)
		return nil
	}
	defer up.conn.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("hijacking the client connection: %w", err))
	}
	defer client.Close()
	_ = client.SetDeadline(time.Time{})
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 %s\r\n", up.resp.Status)
	_ = up.resp.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := client.Write(head.Bytes()); err != nil {
		return nil // the client is gone; nothing to answer
	}
	s.pipe(client, brw.Reader, up.conn, up.reader)
	return nil
}

// pipe copies a's input (read through ar) to b and b's (through br) to a,
// until either direction ends or the server drains; then it closes both
// connections and returns after both copies have stopped.
func (s *Server) pipe(a net.Conn, ar io.Reader, b net.Conn, br io.Reader) {
	done := make(chan struct{}, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(b, ar)
		done <- struct{}{}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(a, br)
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-s.shutdown:
	}
	a.Close()
	b.Close()
	wg.Wait()
}

// rawWriter returns the innermost ResponseWriter that can hijack, for
// libraries that assert http.Hijacker instead of using
// http.ResponseController.
func rawWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return w
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}
