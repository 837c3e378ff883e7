package certificates

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certv1 "k8s.io/api/certificates/v1"
	"k8s.io/utils/ptr"
)

func TestLifetime(t *testing.T) {
	year := 365 * 24 * time.Hour
	tests := []struct {
		name    string
		longest time.Duration
		seconds *int32
		want    time.Duration
	}{
		{"signer's duration", year, nil, year},
		{"shorter asked", year, ptr.To[int32](3600), time.Hour},
		{"longer asked", time.Hour, ptr.To[int32](7200), time.Hour},
		{"below the floor", year, ptr.To[int32](60), 10 * time.Minute},
		{"at the floor", year, ptr.To[int32](600), 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lifetime(tt.longest, tt.seconds); got != tt.want {
				t.Errorf("lifetime = %v, want %v", got, tt.want)
			}
		})
	}
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("certificate is not one PEM CERTIFICATE block: %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssue(t *testing.T) {
	year := 365 * 24 * time.Hour
	ecCA := newTestCA(t, false, 10*year)
	rsaCA := newTestCA(t, true, 10*year)
	dyingCA := newTestCA(t, false, 30*time.Minute)
	serving := request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1.example"}, ips: []string{"10.0.0.1"}}
	tests := []struct {
		name          string
		ca            testCA
		req           request
		usages        []certv1.KeyUsage
		d             time.Duration
		wantNotAfter  time.Time
		wantKeyUsage  x509.KeyUsage
		wantExtUsages []x509.ExtKeyUsage
	}{
		{name: "client, a year", ca: ecCA, req: nodeClient("n1"), usages: clientUsages, d: year,
			wantNotAfter: t0.Add(year - 5*time.Minute), wantKeyUsage: x509.KeyUsageDigitalSignature,
			wantExtUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{name: "serving, rsa CA", ca: rsaCA, req: serving, usages: servingUsages, d: year,
			wantNotAfter: t0.Add(year - 5*time.Minute), wantKeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			wantExtUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{name: "short-lived: no backdate at the end", ca: ecCA, req: nodeClient("n1"), usages: clientUsages, d: time.Hour,
			wantNotAfter: t0.Add(time.Hour), wantKeyUsage: x509.KeyUsageDigitalSignature,
			wantExtUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{name: "capped at the CA's expiry", ca: dyingCA, req: nodeClient("n1"), usages: clientUsages, d: year,
			wantNotAfter: t0.Add(30 * time.Minute), wantKeyUsage: x509.KeyUsageDigitalSignature,
			wantExtUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{name: "usages sorted, duplicates once", ca: ecCA, req: request{cn: "jane"}, d: time.Hour,
			usages:       []certv1.KeyUsage{certv1.UsageServerAuth, certv1.UsageClientAuth, certv1.UsageServerAuth, certv1.UsageSigning},
			wantNotAfter: t0.Add(time.Hour), wantKeyUsage: x509.KeyUsageDigitalSignature,
			wantExtUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := parsed(t, pemRequest(t, tt.req))
			out, err := issue(req, tt.usages, tt.d, tt.ca.cert, tt.ca.key, t0)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCert(t, out)
			if err := c.CheckSignatureFrom(tt.ca.cert); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
			if c.Subject.CommonName != tt.req.cn || !cmp.Equal(c.Subject.Organization, tt.req.orgs) {
				t.Errorf("subject %s, want CN=%s O=%v", c.Subject, tt.req.cn, tt.req.orgs)
			}
			if !cmp.Equal(c.DNSNames, tt.req.dns) || len(c.IPAddresses) != len(tt.req.ips) {
				t.Errorf("names %v %v, want %v %v", c.DNSNames, c.IPAddresses, tt.req.dns, tt.req.ips)
			}
			for i, ip := range tt.req.ips {
				if !c.IPAddresses[i].Equal(net.ParseIP(ip)) {
					t.Errorf("ip %d = %v, want %s", i, c.IPAddresses[i], ip)
				}
			}
			if !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(req.PublicKey) {
				t.Error("certificate is not for the request's key")
			}
			if c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA %v BasicConstraintsValid %v, want a leaf", c.IsCA, c.BasicConstraintsValid)
			}
			if want := t0.Add(-5 * time.Minute); !c.NotBefore.Equal(want) {
				t.Errorf("NotBefore %v, want %v", c.NotBefore, want)
			}
			if !c.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("NotAfter %v, want %v", c.NotAfter, tt.wantNotAfter)
			}
			if c.KeyUsage != tt.wantKeyUsage {
				t.Errorf("KeyUsage %v, want %v", c.KeyUsage, tt.wantKeyUsage)
			}
			if diff := cmp.Diff(tt.wantExtUsages, c.ExtKeyUsage); diff != "" {
				t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
			}
			if tt.ca.cert.PublicKeyAlgorithm == x509.RSA && c.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("signature algorithm %v under an RSA CA", c.SignatureAlgorithm)
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	ca := newTestCA(t, false, time.Hour)
	good := parsed(t, pemRequest(t, nodeClient("n1")))
	if _, err := issue(good, clientUsages, time.Hour, ca.cert, ca.key, t0.Add(2*time.Hour)); err == nil {
		t.Error("signed with an expired CA")
	}
	if _, err := issue(good, []certv1.KeyUsage{"frobnicate"}, time.Hour, ca.cert, ca.key, t0); err == nil {
		t.Error("signed for an unknown usage")
	}
	// A request whose signature does not hold: its key swapped.
	other := parsed(t, pemRequest(t, nodeClient("n2")))
	forged := *good
	forged.PublicKey = other.PublicKey
	if _, err := issue(&forged, clientUsages, time.Hour, ca.cert, ca.key, t0); err == nil {
		t.Error("signed a request whose signature does not verify")
	}
}
