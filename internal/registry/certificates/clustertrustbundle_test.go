package certificates

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// caPEM returns a self-signed certificate named cn as PEM: a CA unless
// notCA, with valid basic constraints unless noConstraints.
func caPEM(t testing.TB, cn string, notCA, noConstraints bool) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		IsCA: !notCA, BasicConstraintsValid: !noConstraints}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func bundle(name, signer, trust string) *certificatesv1.ClusterTrustBundle {
	return &certificatesv1.ClusterTrustBundle{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: trust},
	}
}

// errStrings renders errors as the API shows them, for exact comparison
// with upstream's messages.
func errStrings[E interface{ Error() string }](errs []E) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestValidateClusterTrustBundle(t *testing.T) {
	ca, ca2 := caPEM(t, "root", false, false), caPEM(t, "root2", false, false)
	leaf := caPEM(t, "leaf", true, false)
	// A certificate that says CA without valid basic constraints cannot
	// be made with crypto/x509 (IsCA is only written with them); the
	// parser reports IsCA false, which upstream reports first too.
	noConstraints := caPEM(t, "nc", false, true)
	withHeaders := strings.Replace(ca, "-----\n", "-----\nX-Note: h\n\n", 1)
	keyBlock := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))
	garbage := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not der")}))

	tests := []struct {
		name string
		b    *certificatesv1.ClusterTrustBundle
		want []string
	}{
		{"no signer", bundle("roots", "", ca), nil},
		{"no signer, two anchors, text between", bundle("roots", "", "hello\n"+ca+"\n\n"+ca2), nil},
		{"signer with its prefix", bundle("example.com:foo:v1", "example.com/foo", ca), nil},
		{"signer with dots and colons in the prefix", bundle("a.example.com:b.c:x", "a.example.com/b.c", ca), nil},
		{"no signer but a colon", bundle("example.com:foo:v1", "", ca),
			[]string{`metadata.name: Invalid value: "example.com:foo:v1": ClusterTrustBundle without signer name must not have ":" in its name`}},
		{"no signer, not a DNS subdomain", bundle("Roots", "", ca),
			[]string{`metadata.name: Invalid value: "Roots": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`}},
		{"signer without the prefix", bundle("foo", "example.com/foo", ca),
			[]string{`metadata.name: Invalid value: "foo": ClusterTrustBundle for signerName example.com/foo must be named with prefix example.com:foo:`}},
		{"signer, prefix but nothing after", bundle("example.com:foo:", "example.com/foo", ca),
			[]string{`metadata.name: Invalid value: "example.com:foo:": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`}},
		{"signer without a path", bundle("example.com:x", "example.com", ca), []string{
			`spec.signerName: Invalid value: "example.com": must be a fully qualified domain and path of the form 'example.com/signer-name'`}},
		{"signer domain of one label", bundle("example:foo:x", "example/foo", ca), []string{
			`spec.signerName: Invalid value: "example": should be a domain with at least two segments separated by dots`}},
		{"empty bundle", bundle("roots", "", ""),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": at least one trust anchor must be provided`}},
		{"text only", bundle("roots", "", "no pem here"),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": at least one trust anchor must be provided`}},
		{"other block type", bundle("roots", "", ca+keyBlock),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": entry 1 has bad block type: PRIVATE KEY`}},
		{"headers", bundle("roots", "", withHeaders),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": entry 0 has PEM block headers`}},
		{"not X.509", bundle("roots", "", garbage),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": entry 0 does not parse as X.509`}},
		{"not a CA", bundle("roots", "", ca+leaf),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": entry 1 does not have the CA bit set`}},
		{"no basic constraints", bundle("roots", "", noConstraints),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": entry 0 does not have the CA bit set`}},
		{"duplicates", bundle("roots", "", ca+ca2+ca+ca2+ca),
			[]string{
				`spec.trustBundle: Invalid value: "<value omitted>": duplicate trust anchor (indices [0 2 4])`,
				`spec.trustBundle: Invalid value: "<value omitted>": duplicate trust anchor (indices [1 3])`,
			}},
		{"a bad block hides duplicates", bundle("roots", "", ca+ca+keyBlock),
			[]string{`spec.trustBundle: Invalid value: "<value omitted>": entry 2 has bad block type: PRIVATE KEY`}},
		{"too long", bundle("roots", "", strings.Repeat("x", MaxTrustBundleSize+1)),
			[]string{`spec.trustBundle: Too long: may not be more than 1048576 bytes`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, errStrings(validateBundleCreate(tc.b))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("generateName", func(t *testing.T) {
		b := bundle("", "example.com/foo", ca)
		b.GenerateName = "foo-"
		want := []string{`metadata.generateName: Invalid value: "foo-": ClusterTrustBundle for signerName example.com/foo must be named with prefix example.com:foo:`}
		if diff := cmp.Diff(want, errStrings(validateBundleCreate(b))); diff != "" {
			t.Errorf("errors (-want +got):\n%s", diff)
		}
		b.GenerateName = "example.com:foo:v-"
		if errs := validateBundleCreate(b); len(errs) > 0 {
			t.Errorf("a generateName with the prefix: %v", errs)
		}
	})
}

func TestValidateClusterTrustBundleUpdate(t *testing.T) {
	ca, ca2 := caPEM(t, "root", false, false), caPEM(t, "root2", false, false)
	old := bundle("example.com:foo:v1", "example.com/foo", ca)

	changed := old.DeepCopy()
	changed.Spec.TrustBundle = ca2
	if errs := validateBundleUpdate(changed, old); len(errs) > 0 {
		t.Errorf("new anchors: %v", errs)
	}

	signer := old.DeepCopy()
	signer.Spec.SignerName = "example.com/bar"
	want := []string{
		`metadata.name: Invalid value: "example.com:foo:v1": ClusterTrustBundle for signerName example.com/bar must be named with prefix example.com:bar:`,
		`spec.signerName: Invalid value: "example.com/bar": field is immutable`,
	}
	if diff := cmp.Diff(want, errStrings(validateBundleUpdate(signer, old))); diff != "" {
		t.Errorf("signer change (-want +got):\n%s", diff)
	}

	// A stored bundle that no longer validates (an older server, a
	// stricter parser) may still have its labels changed; new anchors
	// are checked.
	stored := bundle("roots", "", ca+ca)
	labelled := stored.DeepCopy()
	labelled.Labels = map[string]string{"a": "b"}
	if errs := validateBundleUpdate(labelled, stored); len(errs) > 0 {
		t.Errorf("label change on a stored bundle: %v", errs)
	}
	bad := stored.DeepCopy()
	bad.Spec.TrustBundle = ca + ca + ca
	if errs := validateBundleUpdate(bad, stored); len(errs) != 1 {
		t.Errorf("changed anchors with duplicates: %v, want one error", errs)
	}
}

func TestClusterTrustBundleDescriptor(t *testing.T) {
	var r = clusterTrustBundles()
	if r.Namespaced || r.Name != "clustertrustbundles" || r.Kind != "ClusterTrustBundle" {
		t.Fatalf("descriptor %s %s namespaced %v", r.Name, r.Kind, r.Namespaced)
	}
	found := false
	for _, res := range Resources() {
		found = found || res.Name == "clustertrustbundles"
	}
	if !found {
		t.Error("Resources() does not serve clustertrustbundles")
	}

	var cols []string
	for _, c := range r.Table.Columns {
		cols = append(cols, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "SignerName"}, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]interface{}{"roots", "<none>"}, r.Table.Row(bundle("roots", "", ""))); diff != "" {
		t.Errorf("row without a signer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]interface{}{"example.com:foo:v1", "example.com/foo"}, r.Table.Row(bundle("example.com:foo:v1", "example.com/foo", ""))); diff != "" {
		t.Errorf("row with a signer (-want +got):\n%s", diff)
	}
	want := fields.Set{"metadata.name": "example.com:foo:v1", "spec.signerName": "example.com/foo"}
	if diff := cmp.Diff(want, r.Fields(bundle("example.com:foo:v1", "example.com/foo", ""))); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}

	// As upstream's strategy: no generation on create.
	b := bundle("roots", "", "")
	r.Strategy.PrepareForCreate(t.Context(), b)
	if b.Generation != 0 {
		t.Errorf("generation %d after create, want 0 as upstream", b.Generation)
	}
}
