package pki

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestWriteKubeconfig(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: filepath.Join(dir, "tls")})

	// A server with the serving cert that requires the admin client cert.
	serverCert, err := tls.LoadX509KeyPair(b.ServingCertFile, b.ServingKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client cert", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: b.TrustPool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	path := filepath.Join(dir, "nested", "dir", "kubeconfig.yaml")
	if err := WriteKubeconfig(path, srv.URL, b); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", st.Mode().Perm())
	}

	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "default" || cfg.Contexts["default"] == nil ||
		cfg.Contexts["default"].Cluster != "skiff" || cfg.Contexts["default"].AuthInfo != "admin" {
		t.Errorf("unexpected contexts: current %q, %+v", cfg.CurrentContext, cfg.Contexts)
	}
	if len(cfg.Clusters["skiff"].CertificateAuthorityData) == 0 || len(cfg.AuthInfos["admin"].ClientKeyData) == 0 {
		t.Errorf("kubeconfig does not embed CA or client key")
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if restCfg.Host != srv.URL {
		t.Errorf("rest.Config host = %q, want %q", restCfg.Host, srv.URL)
	}
	client, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("request with kubeconfig credentials: %v", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusOK || string(buf[:n]) != "system:admin" {
		t.Errorf("server saw status %d, client %q; want 200 system:admin", resp.StatusCode, buf[:n])
	}

	// Rewriting with another URL replaces the file.
	if err := WriteKubeconfig(path, "https://127.0.0.1:6443", b); err != nil {
		t.Fatal(err)
	}
	restCfg, err = clientcmd.BuildConfigFromFlags("", path)
	if err != nil || restCfg.Host != "https://127.0.0.1:6443" {
		t.Errorf("after rewrite: host %q err %v", restCfg.Host, err)
	}
	if err := WriteKubeconfig(path, "x", nil); err == nil {
		t.Errorf("WriteKubeconfig with nil bundle: want error")
	}
}
