package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// certificates.k8s.io/v1 PodCertificateRequest is served as upstream's
// conformance test drives it (test/e2e/auth/podcertificaterequest.go):
// CRUD, issuing through /status with every patch type, list, watch and
// deletecollection; then upstream's spec and status validation in 422s.
func TestPodCertificateRequest(t *testing.T) {
	c := framework.StartInProcess(t)
	ns := "pcr"
	mustNamespace(t, c.Client, ns)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Minute).Truncate(time.Second)
	notAfter := notBefore.Add(time.Hour)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "pod.example.com"},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	nb, na := metav1.NewTime(notBefore), metav1.NewTime(notAfter)
	refresh := metav1.NewTime(notBefore.Add(15 * time.Minute))
	now := metav1.Now()

	status := map[string]interface{}{
		"certificateChain": chain, "notBefore": nb, "notAfter": na, "beginRefreshAt": refresh,
		"conditions": []map[string]interface{}{{"type": "Issued", "status": "True", "reason": "E2E",
			"message": "Issued by E2E test patch", "lastTransitionTime": now}},
	}
	statusPatch, _ := json.Marshal(map[string]interface{}{"status": status})
	jsonPatch := fmt.Sprintf(`[
		{"op": "add", "path": "/status/certificateChain", "value": %q},
		{"op": "add", "path": "/status/notBefore", "value": %q},
		{"op": "add", "path": "/status/notAfter", "value": %q},
		{"op": "add", "path": "/status/beginRefreshAt", "value": %q},
		{"op": "add", "path": "/status/conditions", "value": [
			{"type": "Issued", "status": "True", "reason": "E2E", "message": "Issued by E2E test patch", "lastTransitionTime": %q}
		]}]`, chain, notBefore.Format(time.RFC3339), notAfter.Format(time.RFC3339), refresh.Format(time.RFC3339), now.Format(time.RFC3339))
	const label = "test.podcertificaterequest.example.com"
	labelPatch := `{"metadata": {"labels": {"test.podcertificaterequest.example.com": "test"}}}`

	spec := certificatesv1.PodCertificateRequestSpec{
		SignerName: "example.com/e2e-pcr", PodName: "test-pod", PodUID: "12345678-1234-1234-1234-123456789012",
		ServiceAccountName: "default", ServiceAccountUID: "12345678-1234-1234-1234-123456789013",
		NodeName: "test-node", NodeUID: "12345678-1234-1234-1234-123456789014",
		MaxExpirationSeconds: ptr.To[int32](86400), StubPKCS10Request: csr,
	}
	driveAPICRUD(t, c, ns, apiCRUDCase{
		gvr:        certificatesv1.SchemeGroupVersion.WithResource("podcertificaterequests"),
		namespaced: true,
		initial:    &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-example-pcr-"}, Spec: spec},
		updateSpec: func(u *unstructured.Unstructured) {
			l := u.GetLabels()
			l[label] = "test"
			u.SetLabels(l)
		},
		wantSpec: labelIs(label, "test"),
		updateStatus: func(u *unstructured.Unstructured) {
			st := map[string]interface{}{}
			raw, _ := json.Marshal(status)
			_ = json.Unmarshal(raw, &st)
			_ = unstructured.SetNestedMap(u.Object, st, "status")
		},
		wantStatus: func(u *unstructured.Unstructured) error {
			if err := conditionIs("Issued", "True")(u); err != nil {
				return err
			}
			return fieldIs(chain, "status", "certificateChain")(u)
		},
		specPatches: map[types.PatchType]string{
			types.ApplyPatchType:          labelPatch,
			types.StrategicMergePatchType: labelPatch,
			types.MergePatchType:          labelPatch,
			types.JSONPatchType:           `[{"op": "add", "path": "/metadata/labels/test.podcertificaterequest.example.com", "value": "test"}]`,
		},
		statusPatches: map[types.PatchType]string{
			types.ApplyPatchType:          string(statusPatch),
			types.StrategicMergePatchType: string(statusPatch),
			types.MergePatchType:          string(statusPatch),
			types.JSONPatchType:           jsonPatch,
		},
	})

	ctx := ctxT(t)
	pcrs := c.Client.CertificatesV1().PodCertificateRequests(ns)
	create := func(mut func(*certificatesv1.PodCertificateRequestSpec)) (*certificatesv1.PodCertificateRequest, error) {
		s := spec
		mut(&s)
		return pcrs.Create(ctx, &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: "v-"}, Spec: s}, metav1.CreateOptions{})
	}

	_, err = create(func(s *certificatesv1.PodCertificateRequestSpec) { s.SignerName = "no-slash" })
	expectInvalid(t, err, "spec.signerName", "must be a fully qualified domain and path")
	_, err = create(func(s *certificatesv1.PodCertificateRequestSpec) {
		s.SignerName = "kubernetes.io/foo"
		s.MaxExpirationSeconds = ptr.To[int32](2 * 86400)
	})
	expectInvalid(t, err, "spec.maxExpirationSeconds", "must be in the range [3600, 86400]")
	_, err = create(func(s *certificatesv1.PodCertificateRequestSpec) { s.StubPKCS10Request = []byte("junk") })
	expectInvalid(t, err, "spec.stubPKCS10Request", "must be a valid PKCS#10 CSR")
	_, err = create(func(s *certificatesv1.PodCertificateRequestSpec) { s.PodUID = "" })
	expectInvalid(t, err, "spec.podUID", "must not be empty")

	pcr, err := create(func(*certificatesv1.PodCertificateRequestSpec) {})
	if err != nil {
		t.Fatal(err)
	}
	pcr.Spec.PodName = "other-pod"
	_, err = pcrs.Update(ctx, pcr, metav1.UpdateOptions{})
	expectInvalid(t, err, "spec", "field is immutable")

	pcr, _ = pcrs.Get(ctx, pcr.Name, metav1.GetOptions{})
	issued := func() {
		pcr.Status = certificatesv1.PodCertificateRequestStatus{CertificateChain: chain, NotBefore: &nb, NotAfter: &na, BeginRefreshAt: &refresh,
			Conditions: []metav1.Condition{{Type: "Issued", Status: metav1.ConditionTrue, Reason: "E2E", LastTransitionTime: now}}}
	}
	issued()
	early := metav1.NewTime(notBefore.Add(time.Minute))
	pcr.Status.BeginRefreshAt = &early
	_, err = pcrs.UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
	expectInvalid(t, err, "status.beginRefreshAt", "must be at least 10 minutes after status.notBefore")
	issued()
	pcr.Status.Conditions[0].Type = "Approved"
	_, err = pcrs.UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
	expectInvalid(t, err, "status.conditions[0].type", "Unsupported value")
	issued()
	if pcr, err = pcrs.UpdateStatus(ctx, pcr, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("issue: %v", err)
	}
	pcr.Status.Conditions[0].Message = "changed"
	_, err = pcrs.UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
	expectInvalid(t, err, "status", "immutable after PodCertificateRequest is issued, denied, or failed")

	// Upstream's field selectors.
	list, err := pcrs.List(ctx, metav1.ListOptions{FieldSelector: "spec.podName=test-pod,spec.signerName=example.com/e2e-pcr"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("field selector: %v, %d items", err, len(list.Items))
	}
}
