package rbac

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
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

// The replication manager writes ReplicationControllers, their status and
// pods, as upstream's system:controller:replication-controller lets it;
// the workload roles that people bind cover ReplicationControllers as
// upstream's do.
func TestReplicationControllerRoles(t *testing.T) {
	a := New()
	a.Replace(ClusterRoles(), Roles(), ClusterRoleBindings(), RoleBindings())
	rcm := &User{Name: "system:serviceaccount:kube-system:replication-controller",
		Groups: l("system:serviceaccounts", "system:serviceaccounts:kube-system", GroupAuthenticated)}
	tests := []struct {
		name string
		req  Attributes
		want bool
	}{
		{"list rcs", in(res("list", "", "replicationcontrollers", "", ""), rcm, ""), true},
		{"update rc", in(res("update", "", "replicationcontrollers", "", "web"), rcm, "ns"), true},
		{"update rc status", in(res("update", "", "replicationcontrollers", "status", "web"), rcm, "ns"), true},
		{"update rc finalizers", in(res("update", "", "replicationcontrollers", "finalizers", "web"), rcm, "ns"), true},
		{"create pods", in(res("create", "", "pods", "", ""), rcm, "ns"), true},
		{"patch pods", in(res("patch", "", "pods", "", "p"), rcm, "ns"), true},
		{"delete pods", in(res("delete", "", "pods", "", "p"), rcm, "ns"), true},
		{"record events", in(res("create", "", "events", "", ""), rcm, "ns"), true},
		{"no pod updates", in(res("update", "", "pods", "", "p"), rcm, "ns"), false},
		{"no rc deletes", in(res("delete", "", "replicationcontrollers", "", "web"), rcm, "ns"), false},
		{"no replicasets", in(res("update", "apps", "replicasets", "status", "web"), rcm, "ns"), false},
	}
	for _, tt := range tests {
		if ok, reason, _ := a.Authorize(context.Background(), tt.req); ok != tt.want {
			t.Errorf("%s: allowed=%v (%q), want %v", tt.name, ok, reason, tt.want)
		}
	}

	for _, tt := range []struct {
		role string
		req  Attributes
		want bool
	}{
		{"view", res("get", "", "replicationcontrollers", "", "web"), true},
		{"view", res("get", "", "replicationcontrollers", "status", "web"), true},
		{"view", res("get", "", "replicationcontrollers", "scale", "web"), true},
		{"view", res("update", "", "replicationcontrollers", "scale", "web"), false},
		{"edit", res("create", "", "replicationcontrollers", "", ""), true},
		{"edit", res("patch", "", "replicationcontrollers", "scale", "web"), true},
		{"edit", res("update", "", "replicationcontrollers", "status", "web"), false},
		{"admin", res("delete", "", "replicationcontrollers", "", "web"), true},
		// As upstream, no default role names podtemplates.
		{"admin", res("list", "", "podtemplates", "", ""), false},
	} {
		b := bootstrapped(t, nil, nil, []*rbacv1.RoleBinding{rb("app", "u-"+tt.role, "ClusterRole", tt.role, user("u"))})
		u := &User{Name: "u", Groups: l(GroupAuthenticated)}
		if ok, reason, _ := b.Authorize(context.Background(), in(tt.req, u, "app")); ok != tt.want {
			t.Errorf("%s %s %s/%s: allowed=%v (%q), want %v", tt.role, tt.req.Verb, tt.req.Resource, tt.req.Subresource, ok, reason, tt.want)
		}
	}
}
