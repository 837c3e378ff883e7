package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The API server's kubelet client certificate is kept by Ensure and is
// kube-apiserver-kubelet-client in no group (system:masters would let it
// past every kubelet's authorization), for client auth.
func TestKubeletClientCert(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir})
	c := loadCert(t, b.KubeletClientCertFile)
	if c.Subject.CommonName != KubeletClientCommonName || len(c.Subject.Organization) != 0 {
		t.Errorf("subject = %v", c.Subject)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: b.TrustPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("kubelet client cert does not verify as a client: %v", err)
	}
	if st, err := os.Stat(b.KubeletClientKeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v", err)
	}
	first, _ := os.ReadFile(b.KubeletClientCertFile)
	b = mustEnsure(t, Config{Dir: dir})
	if again, _ := os.ReadFile(b.KubeletClientCertFile); string(again) != string(first) {
		t.Errorf("second Ensure reissued the kubelet client certificate")
	}
}

// A kubelet serving certificate from IssueServing verifies for its node's
// names, and a kubelet can require the API server's client certificate
// with Bundle.TrustPool.
func TestIssueServingForKubelet(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir})
	certFile, keyFile, err := b.IssueServing("node-1", []string{"node-1", "127.0.0.1", " ", "Node-1.Example"}, filepath.Join(dir, "kubelet"), "serving")
	if err != nil {
		t.Fatal(err)
	}
	c := loadCert(t, certFile)
	if diff := cmp.Diff([]string{"node-1", "node-1.example"}, c.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
	if len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs = %v", c.IPAddresses)
	}
	first, _ := os.ReadFile(certFile)
	if _, _, err := b.IssueServing("node-1", []string{"127.0.0.1", "node-1.example", "node-1"}, filepath.Join(dir, "kubelet"), "serving"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(certFile); string(again) != string(first) {
		t.Errorf("IssueServing with the same names in another order reissued the certificate")
	}

	serving, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientCAs: b.TrustPool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client, err := tls.LoadX509KeyPair(b.KubeletClientCertFile, b.KubeletClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     *tls.Config
		want    string
		wantErr bool
	}{
		{"api server client cert, verified serving cert", &tls.Config{RootCAs: b.TrustPool(), ServerName: "node-1", Certificates: []tls.Certificate{client}}, KubeletClientCommonName, false},
		{"no client cert", &tls.Config{RootCAs: b.TrustPool(), ServerName: "node-1"}, "", true},
		{"wrong server name", &tls.Config{RootCAs: b.TrustPool(), ServerName: "node-2", Certificates: []tls.Certificate{client}}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.tls}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get(srv.URL)
			if err != nil {
				if !tc.wantErr {
					t.Fatalf("GET: %v", err)
				}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if tc.wantErr {
				t.Fatalf("GET succeeded (%s), want a TLS error", body)
			}
			if string(body) != tc.want {
				t.Errorf("kubelet saw client %q, want %q", body, tc.want)
			}
		})
	}

	var nilBundle *Bundle
	if _, _, err := nilBundle.IssueServing("x", nil, dir, "x"); err == nil {
		t.Errorf("IssueServing on nil bundle: want error")
	}
}
