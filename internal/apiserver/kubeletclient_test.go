package apiserver

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-io/skiff/internal/pki"
)

// TestKubeletClientVerifies checks that, given the cluster's CAs, the API
// server's kubelet client accepts a kubelet serving a certificate of that
// CA for the address dialled, and refuses a self-signed one and one
// issued for another address; without CAs it verifies nothing (upstream's
// default).
func TestKubeletClientVerifies(t *testing.T) {
	dir := t.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	issued := func(sans ...string) tls.Certificate {
		t.Helper()
		certFile, keyFile, err := bundle.IssueServing("system:node:n1", sans, filepath.Join(dir, "kubelet"), strings.Join(sans, "-"))
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	selfSigned, err := pki.SelfSignedServing("n1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cert    tls.Certificate
		verify  bool
		wantErr string
	}{
		{"the cluster CA's, for the address", issued("n1", "127.0.0.1"), true, ""},
		{"self-signed", *selfSigned, true, "unknown authority"},
		{"the cluster CA's, for another address", issued("n1", "10.0.0.9"), true, "127.0.0.1"},
		{"self-signed, not verifying", *selfSigned, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{tc.cert}}
			srv.StartTLS()
			defer srv.Close()
			k := newKubeletClient(nil, nil, nil)
			if tc.verify {
				k = newKubeletClient(nil, nil, bundle.TrustPool)
			}
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			resp, err := (&http.Client{Transport: k.transport}).Get("https://127.0.0.1:" + port + "/")
			if err == nil {
				resp.Body.Close()
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("GET: %v, want success", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("GET: %v, want an error containing %q", err, tc.wantErr)
			}
			conn, err := k.dial(t.Context(), "127.0.0.1:"+port)
			if err == nil {
				conn.Close()
			}
			if (err != nil) != (tc.wantErr != "") {
				t.Fatalf("dial: %v, want error %v", err, tc.wantErr != "")
			}
		})
	}
}
