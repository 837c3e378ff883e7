package volume

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCA returns a self-signed CA certificate named cn, as PEM.
func testCA(t *testing.T, cn string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// pemSet splits PEM data into its blocks, sorted, for comparisons that
// do not care about order.
func pemSet(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	rest := []byte(data)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		out = append(out, string(pem.EncodeToMemory(b)))
	}
	if strings.TrimSpace(string(rest)) != "" {
		t.Errorf("trailing data after PEM blocks: %q", rest)
	}
	slices.Sort(out)
	return out
}

func TestAnchorsPEM(t *testing.T) {
	a, b, c := testCA(t, "a"), testCA(t, "b"), testCA(t, "c")
	withHeaders := strings.Replace(c, "-----\n", "-----\nX-Note: dropped\n\n", 1)
	tests := []struct {
		name    string
		bundles []string
		want    []string
	}{
		{"one bundle", []string{a}, []string{a}},
		{"bundles combined", []string{a, b}, []string{a, b}},
		{"duplicates across bundles written once", []string{a + b, b, a}, []string{a, b}},
		{"duplicate within a bundle written once", []string{a + a}, []string{a}},
		{"text between blocks and headers dropped", []string{"comment\n" + a + "more text\n" + withHeaders}, []string{a, c}},
		{"nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(anchorsPEM(tc.bundles, 7))
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if diff := cmp.Diff(want, pemSet(t, got)); diff != "" {
				t.Errorf("certificates (-want +got):\n%s", diff)
			}
			if len(want) > 0 && !strings.HasPrefix(got, "-----BEGIN CERTIFICATE-----\n") {
				t.Errorf("output does not start with a CERTIFICATE block: %q", got)
			}
		})
	}

	t.Run("order depends only on the certificates and the key", func(t *testing.T) {
		var cas []string
		for _, cn := range []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"} {
			cas = append(cas, testCA(t, cn))
		}
		first := string(anchorsPEM(cas, 1))
		reversed := slices.Clone(cas)
		slices.Reverse(reversed)
		if got := string(anchorsPEM(reversed, 1)); got != first {
			t.Error("the order of the bundles changed the file")
		}
		if got := string(anchorsPEM([]string{strings.Join(cas, "")}, 1)); got != first {
			t.Error("one bundle holding them all gave another file than one bundle each")
		}
		// Some key among a few gives another order: the order is not a
		// plain sort that consumers could come to rely on.
		differs := false
		for key := uint64(2); key < 10 && !differs; key++ {
			differs = string(anchorsPEM(cas, key)) != first
		}
		if !differs {
			t.Error("every key gave the same order")
		}
	})
}

func TestClusterTrustBundleProjection(t *testing.T) {
	const signer = "example.com/signer"
	src := newFakeSources()
	ca := map[string]string{}
	for _, n := range []string{"alive1", "alive2", "dead", "unlabelled", "other", "plain"} {
		ca[n] = testCA(t, n)
	}
	src.setBundle("example.com:signer:alive1", signer, map[string]string{"alive": "true"}, ca["alive1"])
	// alive2's bundle repeats alive1's certificate: written once.
	src.setBundle("example.com:signer:alive2", signer, map[string]string{"alive": "true"}, ca["alive2"], ca["alive1"])
	src.setBundle("example.com:signer:dead", signer, map[string]string{"alive": "false"}, ca["dead"])
	src.setBundle("example.com:signer:unlabelled", signer, nil, ca["unlabelled"])
	src.setBundle("example.org:other:x", "example.org/other", map[string]string{"alive": "true"}, ca["other"])
	src.setBundle("plain", "", map[string]string{"alive": "true"}, ca["plain"])

	bySigner := func(sel *metav1.LabelSelector, optional *bool) *v1.ClusterTrustBundleProjection {
		return &v1.ClusterTrustBundleProjection{SignerName: ptr(signer), LabelSelector: sel, Optional: optional, Path: "ca.pem"}
	}
	tests := []struct {
		name string
		proj *v1.ClusterTrustBundleProjection
		want []string // certificates, by key of ca
	}{
		{"by name", &v1.ClusterTrustBundleProjection{Name: ptr("plain"), Path: "ca.pem"}, []string{"plain"}},
		{"by name, missing, optional", &v1.ClusterTrustBundleProjection{Name: ptr("nope"), Optional: ptr(true), Path: "ca.pem"}, nil},
		{"signer and labels", bySigner(&metav1.LabelSelector{MatchLabels: map[string]string{"alive": "true"}}, nil), []string{"alive1", "alive2"}},
		{"signer and expression", bySigner(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "alive", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}},
		}}, nil), []string{"dead", "unlabelled"}},
		{"empty selector matches all of the signer", bySigner(&metav1.LabelSelector{}, nil), []string{"alive1", "alive2", "dead", "unlabelled"}},
		{"nil selector matches none, optional", bySigner(nil, ptr(true)), nil},
		{"no match, optional", bySigner(&metav1.LabelSelector{MatchLabels: map[string]string{"alive": "maybe"}}, ptr(true)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, src)
			pod := testPod(v1.Volume{Name: "ctb", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
				Sources: []v1.VolumeProjection{{ClusterTrustBundle: tc.proj}}, DefaultMode: ptr[int32](0o644),
			}}})
			if err := m.SetUp(context.Background(), pod); err != nil {
				t.Fatalf("SetUp: %v", err)
			}
			got := readVolume(t, m.volumeDir(pod.UID, kindProjected, "ctb"))
			f, ok := got["ca.pem"]
			if !ok {
				t.Fatalf("no ca.pem in the volume: %v", got)
			}
			if f.Mode != 0o644 {
				t.Errorf("mode %v, want 0644", f.Mode)
			}
			var want []string
			for _, k := range tc.want {
				want = append(want, ca[k])
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, pemSet(t, f.Content)); diff != "" {
				t.Errorf("certificates (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("nil selector matches none, required", func(t *testing.T) {
		m := newTestManager(t, src)
		pod := testPod(v1.Volume{Name: "ctb", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
			Sources: []v1.VolumeProjection{{ClusterTrustBundle: bySigner(nil, ptr(false))}},
		}}})
		err := m.SetUp(context.Background(), pod)
		if want := `MountVolume.SetUp failed for volume "ctb" : combination of signerName and labelSelector matched zero ClusterTrustBundles`; err == nil || err.Error() != want {
			t.Errorf("SetUp error %v, want %s", err, want)
		}
	})
}
