package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// TestServeWebhooks runs the --webhooks mode as the pod does: the server
// reads tls.crt and tls.key from --cert-dir, answers over HTTPS, and
// returns once its context (SIGTERM in main) ends.
func TestServeWebhooks(t *testing.T) {
	dir := t.TempDir()
	pool := writeServingCert(t, dir)
	cfg := config{webhooks: true, webhookPort: freePort(t), certDir: dir}

	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuffer
	var runErr error
	done := make(chan struct{}) // closed when run has returned runErr
	go func() {
		defer close(done)
		runErr = run(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req := request(admissionv1.Create, "w1", widget(t, "v1", "w1", nil, map[string]any{"data": map[string]any{"forbidden": "x"}}), nil)
	body, err := json.Marshal(admissionv1.AdmissionReview{Request: &req})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d%s", cfg.webhookPort, validatePath)

	// The server is ready when it answers; poll with a deadline.
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err = client.Post(url, "application/json", bytes.NewReader(body))
		if err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("the server stopped before answering: %v\n%s", runErr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s: %v\n%s", url, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d, %v: %s", url, resp.StatusCode, err, raw)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &review); err != nil || review.Response == nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	if review.Response.Allowed || review.Response.Result.Code != http.StatusUnprocessableEntity {
		t.Errorf("allowed=%v result=%+v, want denied with 422", review.Response.Allowed, review.Response.Result)
	}

	cancel()
	select {
	case <-done:
		if runErr != nil {
			t.Errorf("run returned %v, want nil", runErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10s of its context ending")
	}
	if want := "msg=webhook path=/validate-widget name=w1 allowed=false"; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q, want it to hold %q", logs.String(), want)
	}
}

func TestServeWebhooksBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config
		want string
	}{
		{"no certificate", config{webhooks: true, webhookPort: freePort(t), certDir: t.TempDir()}, "tls.crt: no such file or directory"},
		{"port 0", config{webhooks: true, webhookPort: 0, certDir: t.TempDir()}, "--webhook-port=0: want 1-65535"},
		{"with --widgets", config{webhooks: true, widgets: true, webhookPort: 9443}, "does not combine with --widgets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.cfg, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run: %v, want an error holding %q", err, tc.want)
			}
		})
	}
}

// writeServingCert writes a self-signed tls.crt and tls.key for 127.0.0.1
// into dir and returns a pool trusting it.
func writeServingCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "crwatch-webhook"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// freePort returns a TCP port that was free a moment ago: the webhook
// server takes a port number, not a listener.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer the server's goroutines and the test can
// share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
