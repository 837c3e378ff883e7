package admission

import (
	"context"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/certificates"
)

func bundleResource(t *testing.T) *registry.Resource {
	t.Helper()
	for _, r := range certificates.Resources() {
		if r.Name == "clustertrustbundles" {
			return r
		}
	}
	t.Fatal("no clustertrustbundles descriptor")
	return nil
}

func TestClusterTrustBundleAttest(t *testing.T) {
	res := bundleResource(t)
	alice := &apiserver.User{Name: "alice", Groups: []string{"system:authenticated"}}
	ctx := apiserver.WithUser(context.Background(), alice)
	b := func(signer string, labels map[string]string) *certificatesv1.ClusterTrustBundle {
		return &certificatesv1.ClusterTrustBundle{
			ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: labels, ResourceVersion: "5"},
			Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: "pem"},
		}
	}
	withOwner := b("example.com/foo", nil)
	withOwner.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "o", UID: "u"}}
	withOwner.Finalizers = []string{"f"}

	tests := []struct {
		name   string
		op     apiserver.Operation
		obj    *certificatesv1.ClusterTrustBundle
		old    *certificatesv1.ClusterTrustBundle
		grants map[string][]string
		denied bool
		asked  bool
	}{
		{name: "no signer needs nothing", op: apiserver.Create, obj: b("", nil)},
		{name: "create without attest", op: apiserver.Create, obj: b("example.com/foo", nil), denied: true, asked: true},
		{name: "create with attest on the signer", op: apiserver.Create, obj: b("example.com/foo", nil),
			grants: map[string][]string{"attest": {"example.com/foo"}}, asked: true},
		{name: "create with attest on the domain", op: apiserver.Create, obj: b("example.com/foo", nil),
			grants: map[string][]string{"attest": {"example.com/*"}}, asked: true},
		{name: "another verb is not enough", op: apiserver.Create, obj: b("example.com/foo", nil),
			grants: map[string][]string{"approve": {"example.com/foo"}, "sign": {"example.com/foo"}}, denied: true, asked: true},
		{name: "update of labels needs attest", op: apiserver.Update, obj: b("example.com/foo", map[string]string{"a": "b"}),
			old: b("example.com/foo", nil), denied: true, asked: true},
		{name: "update of GC fields only needs nothing", op: apiserver.Update, obj: withOwner, old: b("example.com/foo", nil)},
		{name: "delete is not checked", op: apiserver.Delete, old: b("example.com/foo", nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &signerGrants{allow: tc.grants}
			p := &ClusterTrustBundleAttest{Authorizer: g}
			req := &apiserver.AdmissionRequest{Operation: tc.op, Resource: res, Name: "x"}
			if tc.obj != nil {
				req.Obj = tc.obj
			}
			if tc.old != nil {
				req.Old = tc.old
			}
			err := p.Admit(ctx, req)
			if tc.denied {
				want := `clustertrustbundles.certificates.k8s.io "x" is forbidden: user not permitted to attest for signerName "example.com/foo"`
				if !apierrors.IsForbidden(err) || err.Error() != want {
					t.Errorf("error %v, want 403 %s", err, want)
				}
			} else if err != nil {
				t.Errorf("refused: %v", err)
			}
			if asked := len(g.asked) > 0; asked != tc.asked {
				t.Errorf("authorizer asked %v, want %v (%v)", asked, tc.asked, g.asked)
			}
			for _, a := range g.asked {
				if a.Verb != "attest" || a.Resource != "signers" || a.APIGroup != certificatesv1.GroupName || a.User != alice {
					t.Errorf("asked %+v, want attest on signers for alice", a)
				}
			}
		})
	}
}
