package pki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRenewTime(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name string
		// validity is the bundle's; life the leaf's, from its issue
		// (NotBefore lies the backdate earlier, as issue makes it).
		validity, life time.Duration
		wantAfterIssue time.Duration
	}{
		// A year and an hour: two thirds is 243 days and 8 hours in,
		// before 90 days ahead of expiry (275 days in).
		{"a year", DefaultLeafValidity, DefaultLeafValidity, (DefaultLeafValidity+time.Hour)*2/3 - time.Hour},
		// 99 s (9 s of backdate): two thirds is 66 s from NotBefore, 57
		// s from issue; a quarter ahead of expiry would be 67.5 s.
		{"90 seconds", 90 * time.Second, 90 * time.Second, 57 * time.Second},
		// A leaf of four months under a year's policy (issued by an
		// older skiff, or by hand): 90 days ahead of expiry, day 30,
		// comes before two thirds (day 80).
		{"120 days under a year's policy", DefaultLeafValidity, 120 * day, 30 * day},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lt := newLifetimes(tc.validity)
			c := &x509.Certificate{NotBefore: t0.Add(-lt.backdate), NotAfter: t0.Add(tc.life)}
			at := renewTime(c, lt.renewBefore)
			if got := at.Sub(t0); got != tc.wantAfterIssue {
				t.Errorf("renewed %v after issue, want %v", got, tc.wantAfterIssue)
			}
			// A leaf is not due at once and is due well before it
			// expires.
			if !at.After(t0) || c.NotAfter.Sub(at) < tc.life/4 {
				t.Errorf("renewal at %v: issued %v, expires %v", at, t0, c.NotAfter)
			}
		})
	}
}

// staleReason and renewTime agree: a leaf is "expires soon" exactly from
// its renewal time on, unless its CA ends first.
func TestStaleReasonAtRenewalTime(t *testing.T) {
	now := time.Now()
	lt := newLifetimes(time.Minute)
	ca, _, err := newCA("test-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	spec := leafSpec{commonName: "x", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	p, _, err := issue(ca, spec, lt, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	at := renewTime(p.cert, lt.renewBefore)
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{now, ""},
		{at.Add(-time.Millisecond), ""},
		{at, reasonExpiresSoon},
		{p.cert.NotAfter.Add(time.Hour), reasonExpiresSoon},
	} {
		if got := staleReason(p, ca, spec, lt, tc.now); got != tc.want {
			t.Errorf("at issue%+v: %q, want %q", tc.now.Sub(now), got, tc.want)
		}
	}

	// A leaf cut short at its CA's expiry is not renewed over and over.
	short := *ca
	cert := *ca.cert
	cert.NotAfter = p.cert.NotAfter
	short.cert = &cert
	if got := staleReason(p, &short, spec, lt, at); got != "" {
		t.Errorf("leaf ending with its CA: %q, want it kept", got)
	}
}

// Renew reissues exactly the leaves that are due, Ensure's and those of
// IssueClient and IssueServing alike, keeping their keys and replacing
// each certificate file atomically; the renewed pairs load and verify.
func TestRenew(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	b := mustEnsure(t, Config{Dir: dir, LeafValidity: 90 * time.Second})
	kubelet := filepath.Join(dir, "kubelet")
	if _, _, err := b.IssueClient("system:node:n1", []string{NodesOrganization}, kubelet, "client"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.IssueServing("n1", []string{"n1", "127.0.0.1"}, kubelet, "serving"); err != nil {
		t.Fatal(err)
	}
	names := func(rs []Renewal) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	all := []string{LeafServing, LeafAdmin, LeafKubeletClient, LeafFrontProxy, LeafEtcdServer, LeafEtcdClient, "kubelet/client", "kubelet/serving"}
	var listed []string
	for _, l := range b.Leaves() {
		listed = append(listed, l.Name)
		if got := l.NotAfter.Sub(start); got < 89*time.Second || got > 91*time.Second {
			t.Errorf("%s expires %v after start, want 90s", l.Name, got)
		}
	}
	if diff := cmp.Diff(all, listed); diff != "" {
		t.Fatalf("leaves (-want +got):\n%s", diff)
	}

	rs, err := b.Renew(start.Add(30 * time.Second))
	if err != nil || len(rs) != 0 {
		t.Fatalf("Renew 30s in: %v, %v; want nothing renewed", names(rs), err)
	}
	before := readAll(t, b)
	keys := map[string][]byte{}
	for _, f := range []string{b.ServingKeyFile, b.AdminKeyFile, filepath.Join(kubelet, "serving.key")} {
		keys[f], _ = os.ReadFile(f)
	}

	// 60 s in, past two thirds of 99 s from NotBefore.
	later := start.Add(60 * time.Second)
	rs, err = b.Renew(later)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, names(rs)); diff != "" {
		t.Fatalf("renewed (-want +got):\n%s", diff)
	}
	for _, r := range rs {
		if r.Reason != reasonExpiresSoon {
			t.Errorf("%s renewed because %q", r.Name, r.Reason)
		}
		if got := r.Cert.NotAfter.Sub(later); got < 89*time.Second || got > 91*time.Second {
			t.Errorf("%s renewed to expire %v after the renewal", r.Name, got)
		}
	}
	after := readAll(t, b)
	base := filepath.Base(dir)
	if before[base+"/serving.crt"] == after[base+"/serving.crt"] || before["etcd/server.crt"] == after["etcd/server.crt"] {
		t.Errorf("certificate files unchanged by the renewal")
	}
	for f, k := range keys {
		if now, _ := os.ReadFile(f); string(now) != string(k) {
			t.Errorf("%s changed: a renewal keeps the key", f)
		}
	}
	if before[base+"/ca.crt"] != after[base+"/ca.crt"] {
		t.Errorf("the CA changed")
	}
	// No temporary files are left behind.
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(tmp) > 0 {
		t.Errorf("left over: %v", tmp)
	}
	pair, err := tls.LoadX509KeyPair(b.ServingCertFile, b.ServingKeyFile)
	if err != nil {
		t.Fatalf("renewed serving pair: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.TrustPool(), DNSName: "kubernetes.default.svc", CurrentTime: later}); err != nil {
		t.Errorf("renewed serving certificate: %v", err)
	}
	mem, err := b.TLSCertificate(LeafServing)
	if err != nil || !mem.Leaf.Equal(leaf) {
		t.Errorf("TLSCertificate(serving) is not the renewed certificate (%v)", err)
	}

	// Nothing more is due until two thirds of the new lifetime.
	if rs, err := b.Renew(later.Add(time.Second)); err != nil || len(rs) != 0 {
		t.Errorf("Renew again: %v, %v; want nothing", names(rs), err)
	}
	if next := b.NextCheck(later); next.Sub(later) > 9*time.Second || !next.After(later) {
		t.Errorf("next check %v after a renewal, want within a tenth of the validity", next.Sub(later))
	}
}

// Renew reports a leaf replaced behind the bundle's back (here by a
// second bundle on the same directory) so that its consumers get what the
// files hold, and repairs one whose files were removed.
func TestRenewNoticesFilesChanged(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	b := mustEnsure(t, Config{Dir: dir, LeafValidity: time.Minute})
	other := mustEnsure(t, Config{Dir: dir, LeafValidity: time.Minute})
	if rs, err := other.Renew(start.Add(45 * time.Second)); err != nil || len(rs) != 6 {
		t.Fatalf("second bundle renewed %d: %v", len(rs), err)
	}
	rs, err := b.Renew(start.Add(46 * time.Second))
	if err != nil || len(rs) != 6 {
		t.Fatalf("Renew after another renewed: %d renewals, %v; want all 6", len(rs), err)
	}
	for _, r := range rs {
		if r.Reason != ReasonReplaced {
			t.Errorf("%s: %q, want %q", r.Name, r.Reason, ReasonReplaced)
		}
	}

	if err := os.Remove(b.AdminCertFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(b.AdminKeyFile); err != nil {
		t.Fatal(err)
	}
	rs, err = b.Renew(start.Add(47 * time.Second))
	if err != nil || len(rs) != 1 || rs[0].Name != LeafAdmin || rs[0].Reason != "missing" {
		t.Fatalf("after removing admin's files: %+v, %v", rs, err)
	}
	if _, err := tls.LoadX509KeyPair(b.AdminCertFile, b.AdminKeyFile); err != nil {
		t.Errorf("recreated admin pair: %v", err)
	}
}

func TestEnsureRejectsTooShortValidity(t *testing.T) {
	if _, err := Ensure(Config{Dir: t.TempDir(), LeafValidity: time.Second}); err == nil {
		t.Errorf("Ensure with a 1s validity: want an error")
	}
}
