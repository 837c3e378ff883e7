package certificates

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	servingMessage = "Auto approving self kubelet serving certificate after SubjectAccessReview."
	selfMessage    = "Auto approving self kubelet client certificate after SubjectAccessReview."
	nodeMessage    = "Auto approving kubelet client certificate after SubjectAccessReview."
)

func TestApproverSync(t *testing.T) {
	const bootstrapper = "system:bootstrap:abcdef"
	client := certv1.KubeAPIServerClientKubeletSignerName
	serving := request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}}
	servingIP := request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, ips: []string{"10.0.0.1"}}
	nodeN1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}}}
	tests := []struct {
		name string
		csr  *certv1.CertificateSigningRequest
		// allowed are the subresources the SubjectAccessReview allows.
		allowed []string
		// wantSARs are the subresources asked about, in order.
		wantSARs    []string
		wantMessage string // "" when not to be approved
		// node is the Node object n1, when there is one.
		node *corev1.Node
	}{
		{name: "bootstrapping node", csr: csrObject(t, "c", client, nodeClient("n1"), clientUsages, bootstrapper, "system:bootstrappers"),
			allowed: []string{"nodeclient"}, wantSARs: []string{"nodeclient"}, wantMessage: nodeMessage},
		{name: "node renewing", csr: csrObject(t, "c", client, nodeClient("n1"), clientUsages, "system:node:n1", "system:nodes"),
			allowed: []string{"selfnodeclient"}, wantSARs: []string{"selfnodeclient"}, wantMessage: selfMessage},
		{name: "node renewing, allowed any node", csr: csrObject(t, "c", client, nodeClient("n1"), clientUsages, "system:node:n1", "system:nodes"),
			allowed: []string{"nodeclient"}, wantSARs: []string{"selfnodeclient", "nodeclient"}, wantMessage: nodeMessage},
		{name: "rsa usages", csr: csrObject(t, "c", client, nodeClient("n1"), []certv1.KeyUsage{certv1.UsageKeyEncipherment, certv1.UsageDigitalSignature, certv1.UsageClientAuth}, bootstrapper),
			allowed: []string{"nodeclient"}, wantSARs: []string{"nodeclient"}, wantMessage: nodeMessage},
		{name: "another node's name, self only", csr: csrObject(t, "c", client, nodeClient("n2"), clientUsages, "system:node:n1", "system:nodes"),
			allowed: []string{"selfnodeclient"}, wantSARs: []string{"nodeclient"}},
		{name: "refused", csr: csrObject(t, "c", client, nodeClient("n1"), clientUsages, "jane"),
			wantSARs: []string{"nodeclient"}},
		{name: "kubelet serving, no such node", csr: csrObject(t, "c", certv1.KubeletServingSignerName, serving, servingUsages, "system:node:n1", "system:nodes"),
			allowed: []string{"selfnodeclient", "nodeclient", "selfnodeserver"}},
		{name: "own kubelet serving, names of the node", csr: csrObject(t, "c", certv1.KubeletServingSignerName, servingIP, servingUsages, "system:node:n1", "system:nodes"),
			node: nodeN1, allowed: []string{"selfnodeserver"}, wantSARs: []string{"selfnodeserver"}, wantMessage: servingMessage},
		{name: "own kubelet serving, refused", csr: csrObject(t, "c", certv1.KubeletServingSignerName, servingIP, servingUsages, "system:node:n1", "system:nodes"),
			node: nodeN1, allowed: []string{"selfnodeclient"}, wantSARs: []string{"selfnodeserver"}},
		{name: "kubelet serving for an address the node lacks", csr: csrObject(t, "c", certv1.KubeletServingSignerName,
			request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, ips: []string{"10.0.0.9"}}, servingUsages, "system:node:n1", "system:nodes"),
			node: nodeN1, allowed: []string{"selfnodeserver"}},
		{name: "kubelet serving for the API server's name, which the node claims", csr: csrObject(t, "c", certv1.KubeletServingSignerName,
			request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1", "kubernetes"}}, servingUsages, "system:node:n1", "system:nodes"),
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "kubernetes"}}}},
			allowed: []string{"selfnodeserver"}},
		{name: "kubelet serving for 0.0.0.0, which the node claims", csr: csrObject(t, "c", certv1.KubeletServingSignerName,
			request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, ips: []string{"0.0.0.0"}}, servingUsages, "system:node:n1", "system:nodes"),
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "0.0.0.0"}}}},
			allowed: []string{"selfnodeserver"}},
		{name: "own kubelet serving on loopback (a node on the server's machine)", csr: csrObject(t, "c", certv1.KubeletServingSignerName,
			request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, ips: []string{"127.0.0.1"}}, servingUsages, "system:node:n1", "system:nodes"),
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}},
			allowed: []string{"selfnodeserver"}, wantSARs: []string{"selfnodeserver"}, wantMessage: servingMessage},
		{name: "another node's kubelet serving", csr: csrObject(t, "c", certv1.KubeletServingSignerName, servingIP, servingUsages, "system:node:n2", "system:nodes"),
			node: nodeN1, allowed: []string{"selfnodeserver"}},
		{name: "server auth asked", csr: csrObject(t, "c", client, nodeClient("n1"), []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth, certv1.UsageServerAuth}, bootstrapper),
			allowed: []string{"nodeclient"}},
		{name: "not a node", csr: csrObject(t, "c", client, request{cn: "admin", orgs: []string{"system:nodes"}}, clientUsages, bootstrapper),
			allowed: []string{"nodeclient"}},
		{name: "with a DNS name", csr: csrObject(t, "c", client, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}}, clientUsages, bootstrapper),
			allowed: []string{"nodeclient"}},
		{name: "already denied", csr: withConditions(csrObject(t, "c", client, nodeClient("n1"), clientUsages, bootstrapper), t0, certv1.CertificateDenied),
			allowed: []string{"nodeclient"}},
		{name: "already approved", csr: withConditions(csrObject(t, "c", client, nodeClient("n1"), clientUsages, bootstrapper), t0, certv1.CertificateApproved),
			allowed: []string{"nodeclient"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.csr.Spec.Extra = map[string]certv1.ExtraValue{"k": {"v"}}
			before := tt.csr.DeepCopy()
			f := newFakeCluster(tt.csr)
			if tt.node != nil {
				_ = f.client.Tracker().Add(tt.node)
			}
			var sars []string
			f.client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
				ra := sar.Spec.ResourceAttributes
				want := authorizationv1.SubjectAccessReviewSpec{
					User: before.Spec.Username, UID: before.Spec.UID, Groups: before.Spec.Groups,
					Extra: map[string]authorizationv1.ExtraValue{"k": {"v"}},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "certificatesigningrequests",
						Verb: "create", Subresource: ra.Subresource},
				}
				if diff := cmp.Diff(want, sar.Spec); diff != "" {
					t.Errorf("subject access review (-want +got):\n%s", diff)
				}
				sars = append(sars, ra.Subresource)
				for _, s := range tt.allowed {
					sar.Status.Allowed = sar.Status.Allowed || s == ra.Subresource
				}
				return true, sar, nil
			})
			a, err := NewApprover(f.client, f.factory, ApproverOptions{Clock: clocktesting.NewFakePassiveClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			f.start(t)
			if err := a.sync(t.Context(), tt.csr.Name); err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(sars, tt.wantSARs) {
				t.Errorf("asked about %v, want %v", sars, tt.wantSARs)
			}
			got := f.get(t, tt.csr.Name)
			if tt.wantMessage == "" {
				if diff := cmp.Diff(before.Status, got.Status); diff != "" {
					t.Errorf("status changed (-before +after):\n%s", diff)
				}
				return
			}
			if n := len(got.Status.Conditions); n != 1 {
				t.Fatalf("%d conditions, want 1: %+v", n, got.Status.Conditions)
			}
			c := got.Status.Conditions[0]
			if c.Type != certv1.CertificateApproved || c.Status != corev1.ConditionTrue || c.Reason != ReasonAutoApproved ||
				c.Message != tt.wantMessage || !c.LastUpdateTime.Time.Equal(t0) {
				t.Errorf("condition %+v, want Approved/%s %q at %v", c, ReasonAutoApproved, tt.wantMessage, t0)
			}
			approvals := 0
			for _, act := range f.client.Actions() {
				if act.GetVerb() == "update" && act.GetSubresource() == "approval" {
					approvals++
				}
			}
			if approvals != 1 {
				t.Errorf("%d updates of the approval subresource, want 1", approvals)
			}
		})
	}
}
