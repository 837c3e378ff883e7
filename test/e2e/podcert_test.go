package e2e

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestPodCertificates checks on a real node, with the stock kubectl, what
// upstream's conformance tests of podCertificate projections need: a pod
// starts only once its kubelet has a certificate from the signer (a small
// one, run by the test as upstream's tests run theirs), and reads its key
// and chain, with the signer's trust bundle beside them; the chain is for
// the key, verifies against the bundle, lives maxExpirationSeconds, and
// carries what the pod's user annotations asked for; key and chain can be
// written apart; and a pod asking for too long a lifetime is refused with
// upstream's message.
func TestPodCertificates(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	network := framework.NewNetwork(t, "skpc0", "10.199.93.0/24")
	c := framework.StartNodeIn(t, skiffBin, images, network.AddNode(t, "skpc-node"))
	k := kubectl{t: t, c: c}
	const busybox = "docker.io/library/busybox:1.36"
	const signer = "e2e.example.com/pod-identity"
	caPEM := framework.StartPodCertificateSigner(t, c.Client, signer)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(caPEM))

	pod := func(name, script string, sources ...any) string {
		b, err := json.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{
				"restartPolicy": "Never",
				"containers": []any{map[string]any{
					"name": "c", "image": busybox, "command": []string{"sh", "-c", script},
					"volumeMounts": []any{map[string]any{"name": "tls", "mountPath": "/tls"}},
				}},
				"volumes": []any{map[string]any{"name": "tls", "projected": map[string]any{"sources": sources}}},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	trustBundle := map[string]any{"clusterTrustBundle": map[string]any{"signerName": signer, "labelSelector": map[string]any{}, "path": "ca.pem"}}
	logsOf := func(t *testing.T, name string) string {
		t.Helper()
		k.waitFor(t, name+" Succeeded", 120*time.Second, func() (bool, string) {
			s := k.jsonpath("pod/"+name, "{.status.phase}")
			return s == "Succeeded", s
		})
		return k.ok("logs", name)
	}
	// check parses a key and a chain, and checks them against the CA.
	check := func(t *testing.T, keyPEM, chainPEM string, life time.Duration, path string) {
		t.Helper()
		kb, _ := pem.Decode([]byte(keyPEM))
		if kb == nil || kb.Type != "PRIVATE KEY" {
			t.Fatalf("no PEM private key in %q", keyPEM)
		}
		key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		cb, _ := pem.Decode([]byte(chainPEM))
		if cb == nil || cb.Type != "CERTIFICATE" {
			t.Fatalf("no PEM certificate in %q", chainPEM)
		}
		leaf, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
			t.Error("the key is not the certificate's")
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("the certificate does not verify against the signer's CA: %v", err)
		}
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got != life {
			t.Errorf("lifetime %v, want %v", got, life)
		}
		if len(leaf.URIs) != 1 || leaf.URIs[0].Path != path {
			t.Errorf("URIs %v, want one with path %s", leaf.URIs, path)
		}
	}

	t.Run("a credential bundle and the trust bundle", func(t *testing.T) {
		k.t = t
		k.okIn(pod("podcert-bundle", "cat /tls/creds.pem; echo @@; cat /tls/ca.pem; echo @@; stat -L -c '%a' /tls/creds.pem",
			map[string]any{"podCertificate": map[string]any{"signerName": signer, "keyType": "ECDSAP256", "credentialBundlePath": "creds.pem",
				"maxExpirationSeconds": 3600, "userAnnotations": map[string]string{framework.PodCertificatePathAnnotation: "/custom"}}},
			trustBundle), "apply", "-f", "-")
		parts := strings.Split(logsOf(t, "podcert-bundle"), "@@\n")
		if len(parts) != 3 {
			t.Fatalf("pod output in %d parts, want 3: %q", len(parts), parts)
		}
		keyEnd := strings.Index(parts[0], "-----BEGIN CERTIFICATE-----")
		if keyEnd < 0 {
			t.Fatalf("creds.pem holds no certificate: %q", parts[0])
		}
		check(t, parts[0][:keyEnd], parts[0][keyEnd:], time.Hour, "/custom")
		if parts[1] != caPEM {
			t.Errorf("ca.pem = %q, want the signer's CA", parts[1])
		}
		if mode := strings.TrimSpace(parts[2]); mode != "644" {
			t.Errorf("creds.pem mode %s, want 644", mode)
		}
	})

	t.Run("key and chain apart, default lifetime", func(t *testing.T) {
		k.t = t
		k.okIn(pod("podcert-apart", "cat /tls/tls.key; echo @@; cat /tls/tls.crt",
			map[string]any{"podCertificate": map[string]any{"signerName": signer, "keyType": "ED25519", "keyPath": "tls.key", "certificateChainPath": "tls.crt"}}),
			"apply", "-f", "-")
		parts := strings.Split(logsOf(t, "podcert-apart"), "@@\n")
		if len(parts) != 2 {
			t.Fatalf("pod output in %d parts, want 2: %q", len(parts), parts)
		}
		check(t, parts[0], parts[1], 24*time.Hour, "/ns/default/sa/default")
	})

	t.Run("too long a lifetime is refused", func(t *testing.T) {
		k.t = t
		out := k.failsIn(pod("podcert-too-long", "true",
			map[string]any{"podCertificate": map[string]any{"signerName": signer, "keyType": "ECDSAP256", "credentialBundlePath": "creds.pem",
				"maxExpirationSeconds": 91*24*3600 + 1}}), "apply", "-f", "-")
		if want := "if provided, maxExpirationSeconds must be <= 7862400"; !strings.Contains(out, want) {
			t.Errorf("kubectl apply said %q, want %q", out, want)
		}
	})
}
