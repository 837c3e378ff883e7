package integration

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// certificates.k8s.io/v1 ClusterTrustBundles: served cluster-scoped with
// create, read, update, patch, delete and watch, upstream's columns and
// spec.signerName field selector; upstream's validation messages; a
// bundle linked to a signer needs "attest" on that signer
// (ClusterTrustBundleAttest); and a node, and every service account, may
// read bundles but not write them.
func TestClusterTrustBundles(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("alice-token,alice,u-alice,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithControllers(), framework.WithTokenFile(tokens))
	ctx := ctxT(t)
	admin := c.Client
	ctbs := admin.CertificatesV1().ClusterTrustBundles()

	// Discovery lists the resource, cluster-scoped.
	rl, err := admin.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == "clustertrustbundles" })
	if i < 0 || rl.APIResources[i].Namespaced || rl.APIResources[i].Kind != "ClusterTrustBundle" {
		t.Fatalf("discovery of certificates.k8s.io/v1: %+v", rl.APIResources)
	}

	// Create, get, list by label and by signer, update, patch, delete.
	ca1, ca2, ca3 := testCAPEM(t, "root-1"), testCAPEM(t, "root-2"), testCAPEM(t, "root-3")
	plain := &certificatesv1.ClusterTrustBundle{
		ObjectMeta: metav1.ObjectMeta{Name: "roots", Labels: map[string]string{"team": "a"}},
		Spec:       certificatesv1.ClusterTrustBundleSpec{TrustBundle: ca1},
	}
	created, err := ctbs.Create(ctx, plain, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Generation != 0 || created.UID == "" {
		t.Errorf("created generation %d uid %q, want 0 (as upstream) and a uid", created.Generation, created.UID)
	}
	signed := &certificatesv1.ClusterTrustBundle{
		ObjectMeta: metav1.ObjectMeta{Name: "example.com:foo:v1", Labels: map[string]string{"team": "b"}},
		Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: "example.com/foo", TrustBundle: ca2},
	}
	must(t)(ctbs.Create(ctx, signed, metav1.CreateOptions{}))
	got, err := ctbs.Get(ctx, "example.com:foo:v1", metav1.GetOptions{})
	if err != nil || got.Spec.TrustBundle != ca2 || got.Spec.SignerName != "example.com/foo" {
		t.Fatalf("get: %v %+v", err, got)
	}
	names := func(opts metav1.ListOptions) []string {
		t.Helper()
		l, err := ctbs.List(ctx, opts)
		if err != nil {
			t.Fatalf("list %+v: %v", opts, err)
		}
		var out []string
		for _, b := range l.Items {
			out = append(out, b.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"roots"}, names(metav1.ListOptions{LabelSelector: "team=a"})); diff != "" {
		t.Errorf("list by label (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"example.com:foo:v1"}, names(metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.signerName", "example.com/foo").String()})); diff != "" {
		t.Errorf("list by signer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"roots"}, names(metav1.ListOptions{FieldSelector: "spec.signerName="})); diff != "" {
		t.Errorf("list without a signer (-want +got):\n%s", diff)
	}

	w, err := ctbs.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=roots", ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created.Spec.TrustBundle = ca1 + ca3
	updated, err := ctbs.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil || updated.Spec.TrustBundle != ca1+ca3 {
		t.Fatalf("update: %v", err)
	}
	select {
	case ev := <-w.ResultChan():
		if b, ok := ev.Object.(*certificatesv1.ClusterTrustBundle); !ok || ev.Type != "MODIFIED" || b.Spec.TrustBundle != ca1+ca3 {
			t.Errorf("watch event %s %T, want MODIFIED with the new anchors", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Error("no watch event for the update")
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"trustBundle": ca3}})
	patched, err := ctbs.Patch(ctx, "roots", types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil || patched.Spec.TrustBundle != ca3 {
		t.Fatalf("merge patch: %v", err)
	}

	// kubectl's columns: NAME SIGNERNAME.
	var table metav1.Table
	if err := admin.CertificatesV1().RESTClient().Get().Resource("clustertrustbundles").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Into(&table); err != nil {
		t.Fatalf("table: %v", err)
	}
	var cols []string
	for _, col := range table.ColumnDefinitions {
		cols = append(cols, col.Name)
	}
	var rows [][]any
	for _, r := range table.Rows {
		rows = append(rows, r.Cells)
	}
	wantRows := [][]any{{"example.com:foo:v1", "example.com/foo"}, {"roots", "<none>"}}
	if diff := cmp.Diff([]string{"Name", "SignerName"}, cols); diff != "" {
		t.Errorf("table columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("table rows (-want +got):\n%s", diff)
	}

	// Validation, with upstream's messages.
	invalid := []struct {
		name, signer, bundle, want string
	}{
		{"foo", "example.com/foo", ca1, `ClusterTrustBundle.certificates.k8s.io "foo" is invalid: metadata.name: Invalid value: "foo": ClusterTrustBundle for signerName example.com/foo must be named with prefix example.com:foo:`},
		{"a:b", "", ca1, `ClusterTrustBundle.certificates.k8s.io "a:b" is invalid: metadata.name: Invalid value: "a:b": ClusterTrustBundle without signer name must not have ":" in its name`},
		{"example:x:y", "example/x", ca1, `ClusterTrustBundle.certificates.k8s.io "example:x:y" is invalid: spec.signerName: Invalid value: "example": should be a domain with at least two segments separated by dots`},
		{"dup", "", ca1 + ca1, `ClusterTrustBundle.certificates.k8s.io "dup" is invalid: spec.trustBundle: Invalid value: "<value omitted>": duplicate trust anchor (indices [0 1])`},
		{"empty", "", "", `ClusterTrustBundle.certificates.k8s.io "empty" is invalid: spec.trustBundle: Invalid value: "<value omitted>": at least one trust anchor must be provided`},
		{"key", "", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})),
			`ClusterTrustBundle.certificates.k8s.io "key" is invalid: spec.trustBundle: Invalid value: "<value omitted>": entry 0 has bad block type: PRIVATE KEY`},
	}
	for _, tc := range invalid {
		b := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: tc.name},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: tc.signer, TrustBundle: tc.bundle}}
		if _, err := ctbs.Create(ctx, b, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || err.Error() != tc.want {
			t.Errorf("create %s: %v, want 422 %s", tc.name, err, tc.want)
		}
	}
	moved, err := ctbs.Get(ctx, "example.com:foo:v1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved.Spec.SignerName = "example.com/bar"
	if _, err := ctbs.Update(ctx, moved, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), `spec.signerName: Invalid value: "example.com/bar": field is immutable`) {
		t.Errorf("changing the signer: %v, want 422 field is immutable", err)
	}

	// alice may write bundles, but holds no signer.
	must(t)(admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ctb-writer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"clustertrustbundles"},
			Verbs: []string{"create", "get", "list", "update", "patch", "delete"}}}}, metav1.CreateOptions{}))
	must(t)(admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-ctb"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "ctb-writer"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, metav1.CreateOptions{}))
	alice := clientWithToken(t, c, "alice-token").CertificatesV1().ClusterTrustBundles()
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err := alice.List(ctx, metav1.ListOptions{})
		return err == nil
	})
	if _, err := alice.Create(ctx, &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "alice-roots"},
		Spec: certificatesv1.ClusterTrustBundleSpec{TrustBundle: ca1}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("alice creating a bundle without a signer: %v", err)
	}
	attested := func() *certificatesv1.ClusterTrustBundle {
		return &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "example.com:foo:alice"},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "example.com/foo", TrustBundle: ca1}}
	}
	const refused = `clustertrustbundles.certificates.k8s.io "example.com:foo:alice" is forbidden: user not permitted to attest for signerName "example.com/foo"`
	if _, err := alice.Create(ctx, attested(), metav1.CreateOptions{}); !apierrors.IsForbidden(err) || err.Error() != refused {
		t.Errorf("alice creating a bundle of a signer she may not attest for: %v, want 403 %s", err, refused)
	}
	relabel, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{"team": "c"}}})
	if _, err := alice.Patch(ctx, "example.com:foo:v1", types.MergePatchType, relabel, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice relabelling another signer's bundle: %v, want 403", err)
	}
	// Verb attest on the signer's domain is enough.
	must(t)(admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "example-attester"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"},
			ResourceNames: []string{"example.com/*"}, Verbs: []string{"attest"}}}}, metav1.CreateOptions{}))
	must(t)(admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-attester"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "example-attester"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, metav1.CreateOptions{}))
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err := alice.Create(ctx, attested(), metav1.CreateOptions{})
		return err == nil
	})
	if _, err := alice.Patch(ctx, "example.com:foo:v1", types.MergePatchType, relabel, metav1.PatchOptions{}); err != nil {
		t.Errorf("alice relabelling a bundle of a signer she attests for: %v", err)
	}

	// A node reads every bundle, by name, list and watch, and writes none.
	node := clientWithCert(t, c, "system:node:a", "system:nodes").CertificatesV1().ClusterTrustBundles()
	if _, err := node.Get(ctx, "example.com:foo:v1", metav1.GetOptions{}); err != nil {
		t.Errorf("node get: %v", err)
	}
	if l, err := node.List(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/foo", LabelSelector: "team=c"}); err != nil || len(l.Items) != 1 {
		t.Errorf("node list by signer and labels: %v, %d items, want 1", err, itemsOf(l))
	}
	if nw, err := node.Watch(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("node watch: %v", err)
	} else {
		nw.Stop()
	}
	if err := node.Delete(ctx, "roots", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node delete: %v, want 403", err)
	}

	// So does any service account (system:cluster-trust-bundle-discovery).
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:team:app",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"}}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := sa.CertificatesV1().ClusterTrustBundles().List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) < 3 {
		t.Errorf("service account list: %v, %d items", err, itemsOf(l))
	}
	if err := sa.CertificatesV1().ClusterTrustBundles().Delete(ctx, "roots", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account delete: %v, want 403", err)
	}

	if err := ctbs.Delete(ctx, "roots", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := ctbs.Get(ctx, "roots", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v, want 404", err)
	}
}

func itemsOf(l *certificatesv1.ClusterTrustBundleList) int {
	if l == nil {
		return 0
	}
	return len(l.Items)
}

// testCAPEM is a self-signed CA certificate named cn, as PEM.
func testCAPEM(t *testing.T, cn string) string {
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
