package certificates

import (
	"context"
	"crypto/x509"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	k8stesting "k8s.io/client-go/testing"
)

// A bootstrapping kubelet's CSR goes through the queues and informer
// events alone: csrapproving approves it, csrsigning issues its
// certificate; a refused one stays pending.
func TestApproveThenSign(t *testing.T) {
	ca := newTestCA(t, false, 10*365*24*time.Hour)
	f := newFakeCluster()
	var strangerAsked atomic.Bool
	f.client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		sar.Status.Allowed = sar.Spec.User == "system:bootstrap:abcdef" && sar.Spec.ResourceAttributes.Subresource == "nodeclient"
		if sar.Spec.User == "system:bootstrap:zzzzzz" {
			strangerAsked.Store(true)
		}
		return true, sar, nil
	})
	approver, err := NewApprover(f.client, f.factory)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(f.client, f.factory, SignerOptions{CA: ca.get})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, r := range []interface{ Start(context.Context) error }{approver, signer} {
		wg.Go(func() {
			if err := r.Start(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	f.start(t)

	csrs := f.client.CertificatesV1().CertificateSigningRequests()
	for name, user := range map[string]string{"joining": "system:bootstrap:abcdef", "stranger": "system:bootstrap:zzzzzz"} {
		csr := csrObject(t, name, certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, user, "system:bootstrappers")
		if _, err := csrs.Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var issued *certv1.CertificateSigningRequest
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		issued, err = csrs.Get(ctx, "joining", metav1.GetOptions{})
		return err == nil && len(issued.Status.Certificate) > 0, nil
	}); err != nil {
		t.Fatalf("no certificate issued: %+v", issued.Status)
	}
	c := parseCert(t, issued.Status.Certificate)
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify against the CA: %v", err)
	}
	if c.Subject.CommonName != "system:node:n1" {
		t.Errorf("certificate for %s", c.Subject)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return strangerAsked.Load(), nil
	}); err != nil {
		t.Fatal("the stranger's CSR was never reviewed")
	}
	stranger, err := csrs.Get(ctx, "stranger", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stranger.Status.Conditions) != 0 || len(stranger.Status.Certificate) != 0 {
		t.Errorf("refused CSR was handled: %+v", stranger.Status)
	}
}
