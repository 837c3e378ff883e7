package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// certificates.k8s.io/v1 CertificateSigningRequests: the server records
// who asked, whatever the client sent; approval goes through /approval and
// needs "approve" on the signer besides the subresource; a certificate
// goes through /status, once, on an approved request, and needs "sign";
// the spec does not change; a kubelet may ask for its own; and the stock
// kubectl lists, approves and denies them.
func TestCertificateSigningRequests(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("alice-token,alice,u-alice,\"staff\"\nbob-token,bob,u-bob,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No controllers: nothing but this test approves or signs.
	c := framework.StartInProcess(t, framework.WithControllers(), framework.WithTokenFile(tokens))
	ctx := ctxT(t)
	admin := c.Client
	alice := clientWithToken(t, c, "alice-token")
	bob := clientWithToken(t, c, "bob-token")

	// alice may ask for certificates as a joining node may; bob may write
	// /approval and /status but holds no signer.
	must(t)(admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-csr"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-bootstrapper"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, metav1.CreateOptions{}))
	must(t)(admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "csr-writer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/approval", "certificatesigningrequests/status"}, Verbs: []string{"update"}},
		}}, metav1.CreateOptions{}))
	must(t)(admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bob-csr"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "csr-writer"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "bob"}}}, metav1.CreateOptions{}))
	csrs := alice.CertificatesV1().CertificateSigningRequests()
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err1 := csrs.List(ctx, metav1.ListOptions{})
		_, err2 := bob.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		return err1 == nil && err2 == nil
	})

	// The requester is the authenticated user.
	created, err := csrs.Create(ctx, newCSR(t, "alice-1", "example.com/signer", "alice", "staff"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.Username != "alice" || created.Spec.UID != "u-alice" ||
		!slices.Equal(created.Spec.Groups, []string{"staff", "system:authenticated"}) || created.Spec.Extra != nil {
		t.Errorf("requester = %q %q %v %v, want alice's (the client sent mallory in system:masters)",
			created.Spec.Username, created.Spec.UID, created.Spec.Groups, created.Spec.Extra)
	}
	if len(created.Status.Conditions) != 0 {
		t.Errorf("a new request has conditions: %v", created.Status.Conditions)
	}
	// An impersonated user's extra is recorded too; a bootstrap token's
	// group may ask, through the default binding skiff:kubelet-bootstrap.
	asCarol := rest.CopyConfig(c.Config)
	asCarol.Impersonate = rest.ImpersonationConfig{UserName: "carol", Groups: []string{"system:bootstrappers"},
		Extra: map[string][]string{"example.com/team": {"blue"}}}
	carol, err := kubernetes.NewForConfigOrDie(asCarol).CertificatesV1().CertificateSigningRequests().Create(ctx,
		newCSR(t, "carol-1", "example.com/signer", "carol"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]certificatesv1.ExtraValue{"example.com/team": {"blue"}}, carol.Spec.Extra); diff != "" || carol.Spec.Username != "carol" {
		t.Errorf("carol's request: %q, extra (-want +got):\n%s", carol.Spec.Username, diff)
	}

	// Validation and CertificateSubjectRestriction.
	bad := newCSR(t, "bad", "example.com", "alice")
	bad.Spec.ExpirationSeconds = ptr.To[int32](60)
	_, err = csrs.Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.signerName: Invalid value: \"example.com\": must be a fully qualified domain and path of the form 'example.com/signer-name'") ||
		!strings.Contains(err.Error(), "may not specify a duration less than 600 seconds (10 minutes)") {
		t.Errorf("an invalid request: %v", err)
	}
	_, err = csrs.Create(ctx, newCSR(t, "root", certificatesv1.KubeAPIServerClientSignerName, "root", "system:masters"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed") {
		t.Errorf("a kube-apiserver-client request for system:masters: %v, want 403", err)
	}

	// bob may write /approval, but holds no signer: refused by admission.
	approve := func(csr *certificatesv1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequest {
		csr = csr.DeepCopy()
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved in a test"})
		return csr
	}
	_, err = bob.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, "alice-1", approve(created), metav1.UpdateOptions{})
	const refused = `certificatesigningrequests.certificates.k8s.io "alice-1" is forbidden: user not permitted to approve requests with signerName "example.com/signer"`
	if !apierrors.IsForbidden(err) || err.Error() != refused {
		t.Errorf("bob approving: %v, want 403 %q", err, refused)
	}
	// alice may not write /approval at all.
	if _, err := csrs.UpdateApproval(ctx, "alice-1", approve(created), metav1.UpdateOptions{}); !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), `cannot update resource "certificatesigningrequests/approval"`) {
		t.Errorf("alice approving her own request: %v, want 403", err)
	}
	// Nor sneak a condition in through the main resource.
	upd := approve(created)
	upd.Spec.SignerName = "example.com/other"
	if got, err := admin.CertificatesV1().CertificateSigningRequests().Update(ctx, upd, metav1.UpdateOptions{}); err != nil ||
		len(got.Status.Conditions) != 0 || got.Spec.SignerName != "example.com/signer" {
		t.Errorf("an update of the main resource: %v, %+v, want spec and status unchanged", err, got)
	}

	// The admin approves, through client-go as kubectl does.
	cur, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "alice-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	approved, err := admin.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, "alice-1", approve(cur), metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("admin approving: %v", err)
	}
	if len(approved.Status.Conditions) != 1 || approved.Status.Conditions[0].LastUpdateTime.IsZero() || approved.Status.Conditions[0].LastTransitionTime.IsZero() {
		t.Errorf("conditions after approval: %+v, want Approved with times", approved.Status.Conditions)
	}
	if !slices.ContainsFunc(approved.ManagedFields, func(e metav1.ManagedFieldsEntry) bool { return e.Subresource == "approval" }) {
		t.Errorf("managedFields after approval: %+v, want an entry for the approval subresource", approved.ManagedFields)
	}
	// Approval cannot be taken back.
	unapproved := approved.DeepCopy()
	unapproved.Status.Conditions = nil
	if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, "alice-1", unapproved, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), `updates may not remove a condition of type "Approved"`) {
		t.Errorf("removing Approved: %v, want 422", err)
	}

	// bob holds no "sign": the certificate is refused; the admin issues it.
	issue := func(csr *certificatesv1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequest {
		csr = csr.DeepCopy()
		csr.Status.Certificate = selfSigned(t)
		return csr
	}
	_, err = bob.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, issue(approved), metav1.UpdateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `user not permitted to sign requests with signerName "example.com/signer"`) {
		t.Errorf("bob issuing: %v, want 403", err)
	}
	issued, err := admin.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, issue(approved), metav1.UpdateOptions{})
	if err != nil || len(issued.Status.Certificate) == 0 || len(issued.Status.Conditions) != 1 {
		t.Fatalf("admin issuing: %v", err)
	}
	if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, issue(issued), metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "updates may not modify existing certificate content") {
		t.Errorf("replacing the certificate: %v, want 422", err)
	}
	if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, issue(carol), metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "may only be set once the request is Approved") {
		t.Errorf("issuing a pending request: %v, want 422", err)
	}

	// A signer granted on the domain may approve.
	must(t)(admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "example-approver"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"},
			ResourceNames: []string{"example.com/*"}, Verbs: []string{"approve"}}}}, metav1.CreateOptions{}))
	must(t)(admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bob-approver"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "example-approver"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "bob"}}}, metav1.CreateOptions{}))
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err := bob.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, "carol-1", approve(carol), metav1.UpdateOptions{})
		return err == nil
	})

	// A kubelet asks for its own certificate (the Node authorizer, with
	// system:node's rules) and reads it back.
	asNode := rest.CopyConfig(c.Config)
	asNode.Impersonate = rest.ImpersonationConfig{UserName: "system:node:n1", Groups: []string{"system:nodes"}}
	node := kubernetes.NewForConfigOrDie(asNode).CertificatesV1().CertificateSigningRequests()
	if _, err := node.Create(ctx, newCSR(t, "node-n1", certificatesv1.KubeAPIServerClientKubeletSignerName, "system:node:n1", "system:nodes"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a kubelet asking for a client certificate: %v", err)
	}
	if got, err := node.Get(ctx, "node-n1", metav1.GetOptions{}); err != nil || got.Spec.Username != "system:node:n1" {
		t.Errorf("a kubelet reading its request: %v", err)
	}
	bySigner, err := admin.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{
		FieldSelector: "spec.signerName=" + certificatesv1.KubeAPIServerClientKubeletSignerName})
	if err != nil || len(bySigner.Items) != 1 || bySigner.Items[0].Name != "node-n1" {
		t.Errorf("field selector spec.signerName: %v %v", err, bySigner)
	}

	// Discovery publishes both subresources.
	_, lists, err := admin.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var subs []string
	for _, l := range lists {
		if l.GroupVersion != "certificates.k8s.io/v1" {
			continue
		}
		for _, r := range l.APIResources {
			if r.Name == "certificatesigningrequests" && !slices.Equal(r.ShortNames, []string{"csr"}) {
				t.Errorf("short names %v", r.ShortNames)
			}
			if strings.HasPrefix(r.Name, "certificatesigningrequests/") {
				subs = append(subs, r.Name+" "+strings.Join(r.Verbs, ","))
			}
		}
	}
	slices.Sort(subs)
	if want := []string{"certificatesigningrequests/approval get,patch,update", "certificatesigningrequests/status get,patch,update"}; !slices.Equal(subs, want) {
		t.Errorf("discovery subresources = %v, want %v", subs, want)
	}

	t.Run("kubectl", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl is not installed")
		}
		run := func(args ...string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl %v: %v\n%s", args, err, stderr.String())
			}
			return out.String()
		}
		must(t)(csrs.Create(ctx, newCSR(t, "kubectl-yes", "example.com/signer", "alice"), metav1.CreateOptions{}))
		must(t)(csrs.Create(ctx, newCSR(t, "kubectl-no", "example.com/signer", "alice"), metav1.CreateOptions{}))
		if out := run("certificate", "approve", "kubectl-yes"); !strings.Contains(out, "certificatesigningrequest.certificates.k8s.io/kubectl-yes approved") {
			t.Errorf("kubectl certificate approve: %q", out)
		}
		if out := run("certificate", "deny", "kubectl-no"); !strings.Contains(out, "certificatesigningrequest.certificates.k8s.io/kubectl-no denied") {
			t.Errorf("kubectl certificate deny: %q", out)
		}
		if out := run("explain", "csr.spec.signerName"); !strings.Contains(out, "signerName") {
			t.Errorf("kubectl explain csr.spec.signerName: %q", out)
		}
		rows := map[string][]string{}
		out := run("get", "csr")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			rows[f[0]] = f
		}
		for name, want := range map[string][]string{
			"NAME":        {"NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"},
			"alice-1":     {"example.com/signer", "alice", "<none>", "Approved,Issued"},
			"kubectl-yes": {"example.com/signer", "alice", "<none>", "Approved"},
			"kubectl-no":  {"example.com/signer", "alice", "<none>", "Denied"},
			"node-n1":     {certificatesv1.KubeAPIServerClientKubeletSignerName, "system:node:n1", "<none>", "Pending"},
		} {
			got := rows[name]
			if name != "NAME" && len(got) == 6 {
				got = got[2:]
			}
			if !slices.Equal(got, want) {
				t.Errorf("kubectl get csr: row %s = %v, want %v\n%s", name, got, want, out)
			}
		}
	})
}

// must fails t when a call it wraps returns an error:
// must(t)(cs.X().Create(...)).
func must(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// newCSR is a request named name to signer for a client certificate of
// cn in orgs, with a fresh key. It names mallory in system:masters as the
// requester, which the server must ignore.
func newCSR(t *testing.T, name, signer, cn string, orgs ...string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: signer,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			Username:   "mallory",
			Groups:     []string{"system:masters"},
		},
	}
}

// selfSigned is a PEM certificate, as a signer would put in
// status.certificate.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
