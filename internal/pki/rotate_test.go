package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// poolOf is a pool of the certificates in a PEM bundle file.
func poolOf(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		t.Fatalf("%s: no certificate", file)
	}
	return p
}

// verifyChain verifies a leaf as a TLS peer presents it (leaf first,
// intermediates after) against roots.
func verifyChain(chain [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) error {
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// A CA rotation: both CAs are trusted during the overlap, the leaves are
// reissued under the new CA with their keys and presented with the cross
// certificate, so that a peer trusting only the old CA still verifies
// them; when the overlap ends, only the new CA is trusted.
func TestRotateCA(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(Config{Dir: dir, LeafValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.IssueClient("system:node:n1", []string{NodesOrganization}, filepath.Join(dir, "kubelet"), "client"); err != nil {
		t.Fatal(err)
	}
	oldRoots := poolOf(t, b.CAFile)
	oldCA := b.CA().Current
	oldAdmin, err := b.TLSCertificate(LeafAdmin)
	if err != nil {
		t.Fatal(err)
	}
	oldEtcd, _ := b.TLSCertificate(LeafEtcdServer)

	now := time.Now()
	st, err := b.RotateCA(now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current.Equal(oldCA) || len(st.Trusted) != 2 || !st.Trusted[0].Equal(st.Current) || !st.Trusted[1].Equal(oldCA) {
		t.Fatalf("after rotation: current %s, trusted %d", st.Current.Subject, len(st.Trusted))
	}
	if d := st.OverlapEnds.Sub(now); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("overlap ends %v from now, want 10m", d)
	}
	if _, err := b.RotateCA(now, time.Minute); !errors.Is(err, ErrRotationInProgress) {
		t.Errorf("second rotation during the overlap: %v, want ErrRotationInProgress", err)
	}
	// The files: ca.crt holds both, ca.key the new CA's key.
	if got := len(parseCerts(b.TrustPEM())); got != 2 {
		t.Errorf("ca.crt holds %d certificates, want 2", got)
	}
	if p, err := readPair(b.CAFile, b.CAKeyFile); err != nil || !p.cert.Equal(st.Current) {
		t.Errorf("ca.crt/ca.key: %v", err)
	}
	// A certificate of the old CA is still accepted.
	if err := verifyChain(oldAdmin.Certificate, b.TrustPool(), x509.ExtKeyUsageClientAuth, now); err != nil {
		t.Errorf("old admin certificate during the overlap: %v", err)
	}

	renewed, err := b.Renew(now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range renewed {
		got[r.Name] = r.Reason
	}
	for _, name := range []string{LeafServing, LeafAdmin, LeafKubeletClient, "kubelet/client"} {
		if got[name] != reasonOtherCA {
			t.Errorf("leaf %s: renewed %q, want %q", name, got[name], reasonOtherCA)
		}
	}
	for _, name := range []string{LeafEtcdServer, LeafEtcdClient} {
		if _, ok := got[name]; ok {
			t.Errorf("leaf %s of the etcd CA renewed by a cluster CA rotation", name)
		}
	}
	if etcd, _ := b.TLSCertificate(LeafEtcdServer); !etcd.Leaf.Equal(oldEtcd.Leaf) {
		t.Error("etcd server certificate changed")
	}
	admin, err := b.TLSCertificate(LeafAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(admin.Leaf.PublicKey, oldAdmin.Leaf.PublicKey) {
		t.Error("the admin leaf got a new key; a rotation keeps the keys")
	}
	serving, err := b.TLSCertificate(LeafServing)
	if err != nil {
		t.Fatal(err)
	}
	if len(serving.Certificate) != 2 {
		t.Fatalf("serving chain during the overlap has %d certificates, want leaf and cross", len(serving.Certificate))
	}
	newRoots := x509.NewCertPool()
	newRoots.AddCert(st.Current)
	for name, roots := range map[string]*x509.CertPool{"only the old CA": oldRoots, "only the new CA": newRoots, "the bundle": b.TrustPool()} {
		if err := verifyChain(serving.Certificate, roots, x509.ExtKeyUsageServerAuth, now); err != nil {
			t.Errorf("serving certificate verified by a peer trusting %s: %v", name, err)
		}
	}

	// The overlap ends: only the new CA is trusted.
	later := st.OverlapEnds.Add(time.Second)
	if next := b.NextCheck(st.OverlapEnds.Add(-time.Second)); next.After(st.OverlapEnds) {
		t.Errorf("NextCheck %v is after the overlap's end %v", next, st.OverlapEnds)
	}
	if _, err := b.Renew(later); err != nil {
		t.Fatal(err)
	}
	if got := len(parseCerts(b.TrustPEM())); got != 1 {
		t.Errorf("after the overlap ca.crt holds %d certificates, want 1", got)
	}
	if !fileExists(b.CAFile) || fileExists(b.crossFile()) {
		t.Error("after the overlap: ca.crt missing or ca-cross.crt left")
	}
	if err := verifyChain(oldAdmin.Certificate, b.TrustPool(), x509.ExtKeyUsageClientAuth, now); err == nil {
		t.Error("a certificate of the old CA is accepted after the overlap")
	}
	serving, _ = b.TLSCertificate(LeafServing)
	if len(serving.Certificate) != 1 {
		t.Errorf("serving chain after the overlap has %d certificates, want the leaf alone", len(serving.Certificate))
	}
	if err := verifyChain(serving.Certificate, oldRoots, x509.ExtKeyUsageServerAuth, now); err == nil {
		t.Error("after the overlap a peer trusting only the old CA still verifies the serving certificate")
	}
	if _, err := b.RotateCA(later, time.Minute); err != nil {
		t.Errorf("a second rotation after the overlap: %v", err)
	}
}

// A restart during the overlap keeps it; one after it ends it.
func TestRotateCAAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(Config{Dir: dir, LeafValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.RotateCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Ensure(Config{Dir: dir, LeafValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st2 := b2.CA()
	if !st2.Current.Equal(st.Current) || len(st2.Trusted) != 2 || !st2.OverlapEnds.Equal(st.OverlapEnds) {
		t.Fatalf("after a restart in the overlap: current %s, %d trusted, ends %v (want %v)", st2.Current.Subject, len(st2.Trusted), st2.OverlapEnds, st.OverlapEnds)
	}
	serving, _ := b2.TLSCertificate(LeafServing)
	if serving.Leaf.CheckSignatureFrom(st.Current) != nil || len(serving.Certificate) != 2 {
		t.Errorf("serving leaf after the restart: signed by the new CA %v, chain %d", serving.Leaf.CheckSignatureFrom(st.Current) == nil, len(serving.Certificate))
	}
	if err := b2.loadTrust(st.OverlapEnds.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if st3 := b2.CA(); len(st3.Trusted) != 1 || !st3.OverlapEnds.IsZero() || fileExists(b2.crossFile()) {
		t.Errorf("a start after the overlap: %d trusted, ends %v", len(st3.Trusted), st3.OverlapEnds)
	}
}

// A rotation cut short leaves a CA that works: before ca.crt was
// written, the old CA; after, the new one with its key.
func TestRotateCACrash(t *testing.T) {
	t.Run("before ca.crt", func(t *testing.T) {
		dir := t.TempDir()
		b, err := Ensure(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		old := b.CA().Current
		_, keyPEM, err := newCA("skiff-ca@1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b.nextCAKeyFile(), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		b2, err := Ensure(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if !b2.CA().Current.Equal(old) || fileExists(b2.nextCAKeyFile()) {
			t.Errorf("CA %s, ca.key.next left %v", b2.CA().Current.Subject, fileExists(b2.nextCAKeyFile()))
		}
	})
	t.Run("before ca.key", func(t *testing.T) {
		dir := t.TempDir()
		b, err := Ensure(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		oldKey, err := os.ReadFile(b.CAKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.RotateCA(time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// Undo the last step: the new key back in ca.key.next, the old
		// one in ca.key.
		if err := os.Rename(b.CAKeyFile, b.nextCAKeyFile()); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b.CAKeyFile, oldKey, 0o600); err != nil {
			t.Fatal(err)
		}
		b2, err := Ensure(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if got := b2.CA(); !got.Current.Equal(st.Current) || len(got.Trusted) != 2 || fileExists(b2.nextCAKeyFile()) {
			t.Errorf("CA %s, %d trusted, ca.key.next left %v", got.Current.Subject, len(got.Trusted), fileExists(b2.nextCAKeyFile()))
		}
	})
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
