package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/image"
)

// crwatchImage is the image crwatch runs from in a pod: the static binary
// alone.
const crwatchImage = "skiff.io/test/crwatch:e2e"

// writeCRWatchImage writes crwatch's image into the images directory a
// node imports at start.
func writeCRWatchImage(t *testing.T, bin, images string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = image.WriteOCI(&buf, crwatchImage, image.ImageConfig{Entrypoint: []string{"/crwatch"}},
		[]image.File{{Path: "crwatch", Mode: 0o755, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "crwatch.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// webhookCerts makes a CA and a serving certificate for dnsName, as a
// webhook's owner does (cert-manager, or a chart's hook): it returns the
// CA's PEM and the files of the certificate and its key.
func webhookCerts(t *testing.T, dnsName string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crwatch-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

// crwatchWebhookManifest runs crwatch --webhooks in a pod behind the
// Service crwatch-webhook (443 to the pod's 9443), its certificate from a
// Secret.
const crwatchWebhookManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: crwatch-webhook
  namespace: crw
spec:
  replicas: 1
  selector:
    matchLabels: {app: crwatch-webhook}
  template:
    metadata:
      labels: {app: crwatch-webhook}
    spec:
      containers:
      - name: crwatch
        image: ` + crwatchImage + `
        imagePullPolicy: Never
        args: ["--webhooks", "--webhook-port=9443", "--cert-dir=/certs"]
        ports:
        - containerPort: 9443
        readinessProbe:
          tcpSocket: {port: 9443}
          periodSeconds: 1
        volumeMounts:
        - {name: certs, mountPath: /certs, readOnly: true}
      volumes:
      - name: certs
        secret: {secretName: crwatch-webhook-tls}
---
apiVersion: v1
kind: Service
metadata:
  name: crwatch-webhook
  namespace: crw
spec:
  selector: {app: crwatch-webhook}
  ports:
  - {port: 443, targetPort: 9443}
`

// crwatchWebhookConfigs registers crwatch's webhooks for the Widgets of
// namespace crw. CABUNDLE and POLICY are replaced.
const crwatchWebhookConfigs = `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: crwatch
webhooks:
- name: mutate.crwatch.skiff.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: POLICY
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: crw}
  rules:
  - {apiGroups: ["crwatch.skiff.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["widgets"]}
  clientConfig:
    service: {namespace: crw, name: crwatch-webhook, path: /mutate-widget}
    caBundle: CABUNDLE
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: crwatch
webhooks:
- name: validate.crwatch.skiff.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: POLICY
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: crw}
  rules:
  - {apiGroups: ["crwatch.skiff.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["widgets"]}
  clientConfig:
    service: {namespace: crw, name: crwatch-webhook, path: /validate-widget}
    caBundle: CABUNDLE
- name: slow.crwatch.skiff.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 2
  objectSelector:
    matchLabels: {slow: "yes"}
  rules:
  - {apiGroups: ["crwatch.skiff.io"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["widgets"]}
  clientConfig:
    service: {namespace: crw, name: crwatch-webhook, path: /slow}
    caBundle: CABUNDLE
`

func widgetYAML(name, labels, annotations, data string) string {
	return "apiVersion: crwatch.skiff.io/v1\nkind: Widget\nmetadata:\n  name: " + name + "\n  namespace: crw\n" +
		"  labels: {" + labels + "}\n  annotations: {" + annotations + "}\nspec:\n  data: {" + data + "}\n"
}

// crwatchWebhooks runs crwatch's admission and conversion webhooks from a
// pod: the mutating one defaults a label, the validating one refuses a
// key, both behave by their failurePolicy when the pod is gone, a slow
// one is cut at its timeoutSeconds, and the conversion webhook serves a
// second version of the Widget. The Widget CRD is installed.
func crwatchWebhooks(t *testing.T, k kubectl) {
	caPEM, certFile, keyFile := webhookCerts(t, "crwatch-webhook.crw.svc")
	caBundle := base64.StdEncoding.EncodeToString(caPEM)
	k.ok("create", "secret", "tls", "crwatch-webhook-tls", "-n", "crw", "--cert="+certFile, "--key="+keyFile)
	k.okIn(crwatchWebhookManifest, "apply", "-f", "-")
	k.ok("rollout", "status", "deployment/crwatch-webhook", "-n", "crw", "--timeout=120s")
	configs := func(policy string) string {
		return strings.NewReplacer("CABUNDLE", caBundle, "POLICY", policy).Replace(crwatchWebhookConfigs)
	}
	k.okIn(configs("Fail"), "apply", "-f", "-")

	// The server reads the configurations through an informer: wait for
	// the mutating webhook to default a new Widget's color.
	n := 0
	waitFor(t, k, 30*time.Second, "the mutating webhook in effect", func() bool {
		n++
		name := fmt.Sprintf("probe-%d", n)
		if _, err := k.run(widgetYAML(name, "", "", `a: "1"`), "create", "-f", "-"); err != nil {
			return false
		}
		out, _ := k.run("", "get", "widget", name, "-n", "crw", "-o", `jsonpath={.metadata.labels.crwatch\.skiff\.io/color}`)
		return out == "blue"
	})

	t.Run("mutating and validating webhooks in a pod", func(t *testing.T) {
		k.t = t
		out := k.okIn(widgetYAML("painted", "", "", `a: "1"`), "create", "-f", "-")
		mustContain(t, "kubectl create's warnings", out, "crwatch: defaulted the color")
		if got := k.ok("get", "widget", "painted", "-n", "crw", "-o", `jsonpath={.metadata.labels.crwatch\.skiff\.io/color}`); got != "blue" {
			t.Errorf("color = %q, want the webhook's default", got)
		}
		// A color given is kept.
		k.okIn(widgetYAML("red", `crwatch.skiff.io/color: red`, "", `a: "1"`), "create", "-f", "-")
		if got := k.ok("get", "widget", "red", "-n", "crw", "-o", `jsonpath={.metadata.labels.crwatch\.skiff\.io/color}`); got != "red" {
			t.Errorf("color = %q, want red", got)
		}
		out = k.failsIn(widgetYAML("bad", "", "", `forbidden: "1"`), "create", "-f", "-")
		mustContain(t, "a refused widget", out, `admission webhook "validate.crwatch.skiff.io" denied the request`,
			`spec.data.forbidden: crwatch does not allow the key "forbidden"`)
		// Updates are admitted too.
		out = k.fails("patch", "widget", "painted", "-n", "crw", "--type=merge", "-p", `{"spec":{"data":{"forbidden":"x"}}}`)
		mustContain(t, "a refused update", out, `denied the request`)
	})

	t.Run("timeoutSeconds", func(t *testing.T) {
		k.t = t
		began := time.Now()
		out := k.failsIn(widgetYAML("slow", `slow: "yes"`, `crwatch.skiff.io/sleep: 10s`, `a: "1"`), "create", "-f", "-")
		took := time.Since(began)
		mustContain(t, "a widget past the webhook's timeout", out, `failed calling webhook "slow.crwatch.skiff.io"`, "context deadline exceeded")
		if took > 8*time.Second {
			t.Errorf("the create took %v with timeoutSeconds 2", took)
		}
		k.okIn(widgetYAML("quick", `slow: "yes"`, `crwatch.skiff.io/sleep: 100ms`, `a: "1"`), "create", "-f", "-")
	})

	t.Run("failurePolicy when the webhook is down", func(t *testing.T) {
		k.t = t
		k.ok("scale", "deployment/crwatch-webhook", "-n", "crw", "--replicas=0")
		waitFor(t, k, 60*time.Second, "the webhook's pod gone", func() bool {
			out, err := k.run("", "get", "pods", "-n", "crw", "-l", "app=crwatch-webhook", "-o", "name")
			return err == nil && strings.TrimSpace(out) == ""
		})
		out := k.failsIn(widgetYAML("down", "", "", `a: "1"`), "create", "-f", "-")
		mustContain(t, "a create under Fail with the webhook down", out, `failed calling webhook "mutate.crwatch.skiff.io"`)
		k.okIn(configs("Ignore"), "apply", "-f", "-")
		waitFor(t, k, 30*time.Second, "Ignore in effect", func() bool {
			_, err := k.run(widgetYAML("ignored", "", "", `a: "1"`), "create", "-f", "-")
			return err == nil
		})
		if got := k.ok("get", "widget", "ignored", "-n", "crw", "-o", `jsonpath={.metadata.labels}`); strings.Contains(got, "color") {
			t.Errorf("labels %s: no webhook ran, none should have been added", got)
		}
		k.okIn(configs("Fail"), "apply", "-f", "-")
		k.ok("scale", "deployment/crwatch-webhook", "-n", "crw", "--replicas=1")
		k.ok("rollout", "status", "deployment/crwatch-webhook", "-n", "crw", "--timeout=120s")
	})

	t.Run("a conversion webhook round-trips two versions", func(t *testing.T) {
		k.t = t
		crd, err := os.ReadFile("testdata/crwatch-widget-crd-v2.yaml")
		if err != nil {
			t.Fatal(err)
		}
		k.okIn(strings.ReplaceAll(string(crd), "CABUNDLE", caBundle), "apply", "-f", "-")
		k.ok("wait", "--for=condition=Established", "crd/widgets.crwatch.skiff.io", "--timeout=30s")
		v2 := "apiVersion: crwatch.skiff.io/v2\nkind: Widget\nmetadata:\n  name: two\n  namespace: crw\n" +
			"spec:\n  entries:\n  - {key: b, value: \"2\"}\n  - {key: a, value: \"1\"}\n"
		waitFor(t, k, 30*time.Second, "a v2 widget created", func() bool {
			_, err := k.run(v2, "apply", "-f", "-")
			return err == nil
		})
		// Stored as v1, read as either.
		if got := k.ok("get", "widgets.v1.crwatch.skiff.io", "two", "-n", "crw", "-o", "jsonpath={.apiVersion} {.spec.data.a} {.spec.data.b}"); got != "crwatch.skiff.io/v1 1 2" {
			t.Errorf("as v1: %q", got)
		}
		if got := k.ok("get", "widgets.v2.crwatch.skiff.io", "two", "-n", "crw", "-o", `jsonpath={.apiVersion} {range .spec.entries[*]}{.key}={.value} {end}`); got != "crwatch.skiff.io/v2 a=1 b=2 " {
			t.Errorf("as v2: %q", got)
		}
		// A v1 object read as v2, and changed through v2.
		got := k.ok("get", "widgets.v2.crwatch.skiff.io", "painted", "-n", "crw", "-o", `jsonpath={range .spec.entries[*]}{.key}={.value} {end}`)
		if got != "a=1 " {
			t.Errorf("a v1 widget as v2: %q", got)
		}
		k.ok("patch", "widgets.v2.crwatch.skiff.io", "painted", "-n", "crw", "--type=json", "-p", `[{"op":"add","path":"/spec/entries/-","value":{"key":"c","value":"3"}}]`)
		if got := k.ok("get", "widgets.v1.crwatch.skiff.io", "painted", "-n", "crw", "-o", "jsonpath={.spec.data.c}"); got != "3" {
			t.Errorf("a change through v2 read as v1: %q", got)
		}
	})
}
