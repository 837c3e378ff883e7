package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// readAll returns the contents of every file the bundle names.
func readAll(t *testing.T, b *Bundle) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range bundleFiles(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		out[filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f)] = string(data)
	}
	return out
}

func bundleFiles(b *Bundle) []string {
	return []string{
		b.CAFile, b.CAKeyFile, b.ServingCertFile, b.ServingKeyFile, b.AdminCertFile, b.AdminKeyFile,
		b.KubeletClientCertFile, b.KubeletClientKeyFile,
		b.EtcdCAFile, b.EtcdCAKeyFile, b.EtcdServerCertFile, b.EtcdServerKeyFile, b.EtcdClientCertFile, b.EtcdClientKeyFile,
	}
}

func mustEnsure(t *testing.T, cfg Config) *Bundle {
	t.Helper()
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCert(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureCreatesThenReuses(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SANs: []string{"skiff.example.com", "192.0.2.10"}, ServiceIP: net.ParseIP("10.43.0.1")}
	b1 := mustEnsure(t, cfg)
	first := readAll(t, b1)

	for _, f := range []string{b1.CAKeyFile, b1.ServingKeyFile, b1.AdminKeyFile, b1.EtcdCAKeyFile, b1.EtcdServerKeyFile, b1.EtcdClientKeyFile} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
	}

	b2 := mustEnsure(t, cfg)
	if diff := cmp.Diff(first, readAll(t, b2)); diff != "" {
		t.Errorf("second Ensure changed files (-first +second):\n%s", diff)
	}
	if !b1.CA().Current.Equal(b2.CA().Current) {
		t.Errorf("CA changed across Ensure calls")
	}
}

func TestEnsureCertificateContents(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir, SANs: []string{"Skiff.Example.com", " ", "192.0.2.10", "2001:db8::1"}, ServiceIP: net.ParseIP("10.43.0.1")})
	host, _ := os.Hostname()

	ca := loadCert(t, b.CAFile)
	if ca.Subject.CommonName != "skiff-ca" || !ca.IsCA {
		t.Errorf("CA subject %q IsCA %v", ca.Subject.CommonName, ca.IsCA)
	}
	if got := ca.NotAfter.Sub(ca.NotBefore); got < 9*365*24*60*60*1e9 {
		t.Errorf("CA validity %v, want about 10 years", got)
	}

	serving := loadCert(t, b.ServingCertFile)
	wantDNS := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", "skiff.example.com"}
	if host != "" {
		wantDNS = append(wantDNS, host)
	}
	if diff := cmp.Diff(wantDNS, serving.DNSNames, cmpSorted); diff != "" {
		t.Errorf("serving DNS SANs (-want +got):\n%s", diff)
	}
	wantIPs := []string{"10.43.0.1", "127.0.0.1", "192.0.2.10", "2001:db8::1", "::1"}
	if diff := cmp.Diff(wantIPs, ipStrings(serving.IPAddresses), cmpSorted); diff != "" {
		t.Errorf("serving IP SANs (-want +got):\n%s", diff)
	}

	admin := loadCert(t, b.AdminCertFile)
	if admin.Subject.CommonName != "system:admin" || !cmp.Equal(admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject = %v", admin.Subject)
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: b.TrustPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert does not verify as a client cert: %v", err)
	}

	etcdServer := loadCert(t, b.EtcdServerCertFile)
	if _, err := etcdServer.Verify(x509.VerifyOptions{Roots: b.EtcdCAPool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("etcd server cert does not verify for 127.0.0.1: %v", err)
	}
	if _, err := etcdServer.Verify(x509.VerifyOptions{Roots: b.TrustPool(), DNSName: "127.0.0.1"}); err == nil {
		t.Errorf("etcd server cert verifies against the cluster CA; want a separate etcd CA")
	}
	etcdClient := loadCert(t, b.EtcdClientCertFile)
	if _, err := etcdClient.Verify(x509.VerifyOptions{Roots: b.EtcdCAPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("etcd client cert does not verify: %v", err)
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestEnsureSANChangeReissuesServingOnly(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir, SANs: []string{"a.example.com"}})
	before := readAll(t, b)

	b = mustEnsure(t, Config{Dir: dir, SANs: []string{"a.example.com", "203.0.113.5"}})
	after := readAll(t, b)

	var changed []string
	for name := range before {
		if before[name] != after[name] {
			changed = append(changed, name)
		}
	}
	base := filepath.Base(dir)
	want := []string{base + "/serving.crt", base + "/serving.key"}
	if diff := cmp.Diff(want, changed, cmpSorted); diff != "" {
		t.Errorf("changed files (-want +got):\n%s", diff)
	}
	serving := loadCert(t, b.ServingCertFile)
	if diff := cmp.Diff([]string{"127.0.0.1", "203.0.113.5", "::1"}, ipStrings(serving.IPAddresses), cmpSorted); diff != "" {
		t.Errorf("IP SANs after change (-want +got):\n%s", diff)
	}
}

func TestEnsureReissuesBrokenLeafKeepsCA(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir})
	before := readAll(t, b)
	if err := os.WriteFile(b.AdminKeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	b = mustEnsure(t, Config{Dir: dir})
	after := readAll(t, b)
	if before[filepath.Base(dir)+"/ca.crt"] != after[filepath.Base(dir)+"/ca.crt"] {
		t.Errorf("CA changed after repairing a leaf")
	}
	if before[filepath.Base(dir)+"/admin.crt"] == after[filepath.Base(dir)+"/admin.crt"] {
		t.Errorf("admin certificate was not reissued after its key was corrupted")
	}
	if _, err := tls.LoadX509KeyPair(b.AdminCertFile, b.AdminKeyFile); err != nil {
		t.Errorf("repaired admin pair does not load: %v", err)
	}
}

func TestEnsureRefusesBrokenCA(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(b *Bundle) error
	}{
		{"key missing", func(b *Bundle) error { return os.Remove(b.CAKeyFile) }},
		{"cert garbage", func(b *Bundle) error { return os.WriteFile(b.CAFile, []byte("nope"), 0o644) }},
		{"etcd key of another CA", func(b *Bundle) error {
			data, err := os.ReadFile(b.CAKeyFile)
			if err != nil {
				return err
			}
			return os.WriteFile(b.EtcdCAKeyFile, data, 0o600)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := mustEnsure(t, Config{Dir: dir})
			if err := tc.break_(b); err != nil {
				t.Fatal(err)
			}
			if _, err := Ensure(Config{Dir: dir}); err == nil {
				t.Errorf("Ensure succeeded with a broken CA; want an error")
			}
		})
	}
}

func TestServingCertVerifiesWithTLS(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir, SANs: []string{"skiff.example.com", "192.0.2.10"}})
	serverCert, err := tls.LoadX509KeyPair(b.ServingCertFile, b.ServingKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()

	tests := []struct {
		serverName string
		wantErr    bool
	}{
		{"127.0.0.1", false},
		{"skiff.example.com", false},
		{"192.0.2.10", false},
		{"kubernetes.default.svc", false},
		{"other.example.com", true},
	}
	for _, tc := range tests {
		t.Run(tc.serverName, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: b.TrustPool(), ServerName: tc.serverName})
			if conn != nil {
				conn.Close()
			}
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Errorf("dial as %q: err = %v, want error %v", tc.serverName, err, tc.wantErr)
			}
		})
	}
}

func TestIssueClient(t *testing.T) {
	dir := t.TempDir()
	b := mustEnsure(t, Config{Dir: dir})
	out := filepath.Join(dir, "kubelet")
	certFile, keyFile, err := b.IssueClient("system:node:n1", []string{"system:nodes"}, out, "client")
	if err != nil {
		t.Fatal(err)
	}
	c := loadCert(t, certFile)
	if c.Subject.CommonName != "system:node:n1" || !cmp.Equal(c.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject = %v", c.Subject)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: b.TrustPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert does not verify: %v", err)
	}
	first, _ := os.ReadFile(certFile)

	// Same subject: reused.
	if _, _, err := b.IssueClient("system:node:n1", []string{"system:nodes"}, out, "client"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(certFile); string(again) != string(first) {
		t.Errorf("IssueClient with the same subject reissued the certificate")
	}
	// Other subject: reissued.
	if _, _, err := b.IssueClient("system:node:n2", []string{"system:nodes"}, out, "client"); err != nil {
		t.Fatal(err)
	}
	if c := loadCert(t, certFile); c.Subject.CommonName != "system:node:n2" {
		t.Errorf("CN after reissue = %q", c.Subject.CommonName)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v mode %v", err, st.Mode().Perm())
	}

	var nilBundle *Bundle
	if _, _, err := nilBundle.IssueClient("x", nil, out, "x"); err == nil {
		t.Errorf("IssueClient on nil bundle: want error")
	}
}
