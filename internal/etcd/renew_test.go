package etcd

import (
	"bytes"
	"crypto/tls"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/pki"
)

// The embedded member presents the server certificate its files hold at
// each handshake (etcd's TLSInfo loads them per handshake): a renewal by
// pki.Bundle.Renew needs no restart.
func TestEmbeddedServesRenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	begin := time.Now()
	b, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls"), LeafValidity: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cfg := embeddedConfig(t)
	cfg.DataDir = filepath.Join(dir, "etcd")
	cfg.CertFile, cfg.KeyFile, cfg.TrustedCAFile = b.EtcdServerCertFile, b.EtcdServerKeyFile, b.EtcdCAFile
	cfg.ClientCertFile, cfg.ClientKeyFile = b.EtcdClientCertFile, b.EtcdClientKeyFile
	e := start(t, cfg)
	u, err := url.Parse(e.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	client, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	// serial dials the member as of clock and returns the serial of the
	// certificate it presents.
	serial := func(clock time.Time) string {
		t.Helper()
		c, err := tls.Dial("tcp", u.Host, &tls.Config{
			RootCAs: b.EtcdCAPool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{client},
			Time: func() time.Time { return clock },
		})
		if err != nil {
			t.Fatalf("dial the member: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial(begin)

	later := begin.Add(45 * time.Second)
	rs, err := b.Renew(later)
	if err != nil {
		t.Fatal(err)
	}
	renewed := false
	for _, r := range rs {
		renewed = renewed || r.Name == pki.LeafEtcdServer
	}
	if !renewed {
		t.Fatalf("etcd/server not renewed 45s into a minute")
	}
	if after := serial(later); after == before {
		t.Errorf("the member still presents serial %s after the renewal", before)
	}
}

// The client presents the pair its files hold at each handshake, and the
// last pair that loaded when they do not.
func TestClientTLSReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	begin := time.Now()
	b, err := pki.Ensure(pki.Config{Dir: dir, LeafValidity: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := clientTLS(Config{ClientCAFile: b.EtcdCAFile, ClientCertFile: b.EtcdClientCertFile, ClientKeyFile: b.EtcdClientKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	get := func() []byte {
		t.Helper()
		c, err := tc.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil || c == nil || len(c.Certificate) == 0 {
			t.Fatalf("GetClientCertificate: %v, %v", c, err)
		}
		return c.Certificate[0]
	}
	first := get()
	if _, err := b.Renew(begin.Add(45 * time.Second)); err != nil {
		t.Fatal(err)
	}
	second := get()
	if bytes.Equal(first, second) {
		t.Fatalf("client certificate unchanged after the renewal")
	}
	if err := os.WriteFile(b.EtcdClientCertFile, []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(get(), second) {
		t.Errorf("with unreadable files the client does not present the last good pair")
	}
}
