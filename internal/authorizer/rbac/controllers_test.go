package rbac

import (
	"context"
	"testing"
)

// The default Roles carry the bootstrap metadata, and each RoleBinding
// refers to a Role of its own namespace.
func TestBootstrapRolesMetadata(t *testing.T) {
	roles := map[string]bool{}
	for _, r := range Roles() {
		roles[r.Namespace+"/"+r.Name] = true
		if r.Namespace == "" || r.Labels[BootstrappingLabel] != BootstrappingValue || r.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("Role %s/%s: labels %v annotations %v", r.Namespace, r.Name, r.Labels, r.Annotations)
		}
	}
	for _, b := range RoleBindings() {
		if b.RoleRef.Kind != "Role" || !roles[b.Namespace+"/"+b.RoleRef.Name] {
			t.Errorf("RoleBinding %s/%s refers to unknown %s %s", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		if b.Labels[BootstrappingLabel] != BootstrappingValue || b.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("RoleBinding %s/%s: labels %v annotations %v", b.Namespace, b.Name, b.Labels, b.Annotations)
		}
	}
}

// The CSR controllers and the token cleaner may do their work, as
// upstream's roles let them, and no more.
func TestCertificateAndTokenCleanerRoles(t *testing.T) {
	a := New()
	a.Replace(ClusterRoles(), Roles(), ClusterRoleBindings(), RoleBindings())
	account := func(name string) *User {
		return &User{Name: "system:serviceaccount:kube-system:" + name,
			Groups: l("system:serviceaccounts", "system:serviceaccounts:kube-system", GroupAuthenticated)}
	}
	csr, tc := account("certificate-controller"), account("token-cleaner")
	const certsGroup = "certificates.k8s.io"
	tests := []struct {
		name string
		req  Attributes
		want bool
	}{
		{"csr list", in(res("list", certsGroup, "certificatesigningrequests", "", ""), csr, ""), true},
		{"csr delete", in(res("delete", certsGroup, "certificatesigningrequests", "", "c"), csr, ""), true},
		{"csr approve", in(res("update", certsGroup, "certificatesigningrequests", "approval", "c"), csr, ""), true},
		{"csr write status", in(res("update", certsGroup, "certificatesigningrequests", "status", "c"), csr, ""), true},
		{"csr update spec", in(res("update", certsGroup, "certificatesigningrequests", "", "c"), csr, ""), false},
		{"approve kubelet client", in(res("approve", certsGroup, "signers", "", "kubernetes.io/kube-apiserver-client-kubelet"), csr, ""), true},
		// skiff approves a node's own serving certificate.
		{"approve kubelet serving", in(res("approve", certsGroup, "signers", "", "kubernetes.io/kubelet-serving"), csr, ""), true},
		{"approve API server clients", in(res("approve", certsGroup, "signers", "", "kubernetes.io/kube-apiserver-client"), csr, ""), false},
		{"sign kubelet serving", in(res("sign", certsGroup, "signers", "", "kubernetes.io/kubelet-serving"), csr, ""), true},
		{"sign apiserver client", in(res("sign", certsGroup, "signers", "", "kubernetes.io/kube-apiserver-client"), csr, ""), true},
		{"sign other signer", in(res("sign", certsGroup, "signers", "", "example.com/mine"), csr, ""), false},
		{"subject access review", in(res("create", "authorization.k8s.io", "subjectaccessreviews", "", ""), csr, ""), true},
		{"csr controller secrets", in(res("delete", "", "secrets", "", "s"), csr, "kube-system"), false},

		{"token cleaner deletes in kube-system", in(res("delete", "", "secrets", "", "bootstrap-token-abcdef"), tc, "kube-system"), true},
		{"token cleaner lists in kube-system", in(res("list", "", "secrets", "", ""), tc, "kube-system"), true},
		{"token cleaner records events", in(res("create", "", "events", "", ""), tc, "kube-system"), true},
		{"token cleaner elsewhere", in(res("delete", "", "secrets", "", "s"), tc, "default"), false},
		{"token cleaner updates", in(res("update", "", "secrets", "", "s"), tc, "kube-system"), false},
	}
	for _, tt := range tests {
		if ok, reason, _ := a.Authorize(context.Background(), tt.req); ok != tt.want {
			t.Errorf("%s: allowed=%v (%q), want %v", tt.name, ok, reason, tt.want)
		}
	}
}
