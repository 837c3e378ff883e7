package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations of upstream's bootstrap policy.
const (
	// BootstrappingLabel marks every default role and binding
	// ("kubernetes.io/bootstrapping: rbac-defaults").
	BootstrappingLabel = "kubernetes.io/bootstrapping"
	BootstrappingValue = "rbac-defaults"
	// AutoUpdateAnnotation "true" lets the reconciler at start restore a
	// default role or binding; an admin sets it to "false" to keep edits.
	AutoUpdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"

	AggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
	AggregateToEdit  = "rbac.authorization.k8s.io/aggregate-to-edit"
	AggregateToView  = "rbac.authorization.k8s.io/aggregate-to-view"
)

// Well-known users and groups the bootstrap bindings name.
const (
	GroupAuthenticated   = "system:authenticated"
	GroupUnauthenticated = "system:unauthenticated"
	GroupServiceAccounts = "system:serviceaccounts"
	GroupMonitoring      = "system:monitoring"
	UserKubeScheduler    = "system:kube-scheduler"
	UserKubeController   = "system:kube-controller-manager"
	UserKubeProxy        = "system:kube-proxy"
	// UserKubeletAPIClient is the API server's identity to kubelets (its
	// client certificate's common name, as kubeadm names it).
	UserKubeletAPIClient = "kube-apiserver-kubelet-client"
	// GroupBootstrappers holds every bootstrap token's user
	// ("system:bootstrap:<token id>").
	GroupBootstrappers = "system:bootstrappers"
	// GroupNodes holds every kubelet ("system:node:<name>").
	GroupNodes = "system:nodes"
)

// The signers built into Kubernetes, which the approver roles name.
const (
	SignerKubeAPIServerClient        = "kubernetes.io/kube-apiserver-client"
	SignerKubeAPIServerClientKubelet = "kubernetes.io/kube-apiserver-client-kubelet"
	SignerKubeletServing             = "kubernetes.io/kubelet-serving"
	SignerLegacyUnknown              = "kubernetes.io/legacy-unknown"
)

// The roles a CSR approver asks about the requester, through a
// SubjectAccessReview of "create" on a pseudo-subresource of
// certificatesigningrequests that no server serves: may it have a node
// client certificate approved at all (nodeclient, bootstrap tokens), and
// renewed for its own node (selfnodeclient, kubelets).
const (
	RoleNodeClient     = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	RoleSelfNodeClient = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	// RoleSelfNodeServer lets a node have its own serving certificate
	// approved (skiff's; upstream approves none by itself).
	RoleSelfNodeServer = "system:certificates.k8s.io:certificatesigningrequests:selfnodeserver"
	RoleBootstrapper   = "system:node-bootstrapper"
)

// Upstream's verb sets, as its bootstrap policy names them.
var (
	read      = []string{"get", "list", "watch"}
	readWrite = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	write     = []string{"create", "delete", "deletecollection", "patch", "update"}
)

const (
	core        = ""
	apps        = "apps"
	autoscaling = "autoscaling"
	batch       = "batch"
	extensions  = "extensions"
	policyGroup = "policy"
	networking  = "networking.k8s.io"
	coordinate  = "coordination.k8s.io"
	discovery   = "discovery.k8s.io"
	events      = "events.k8s.io"
	storage     = "storage.k8s.io"
	authn       = "authentication.k8s.io"
	authz       = "authorization.k8s.io"
	certs       = "certificates.k8s.io"
	nodeGroup   = "node.k8s.io"
	dra         = "resource.k8s.io"

	metricsGroup    = "metrics.k8s.io"
	customMetrics   = "custom.metrics.k8s.io"
	externalMetrics = "external.metrics.k8s.io"
)

// on builds a resource rule: on(groups, resources, verbs).
func on(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: clone(verbs)}
}

// clone keeps the shared verb sets out of the returned objects, which
// callers may modify.
func clone(s []string) []string { return append([]string(nil), s...) }

// onNamed builds a resource rule limited to resourceNames.
func onNamed(groups, resources, names, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, ResourceNames: names, Verbs: clone(verbs)}
}

// urls builds a non-resource rule.
func urls(paths []string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{NonResourceURLs: paths, Verbs: verbs}
}

func l(s ...string) []string { return s }

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	lbl := map[string]string{BootstrappingLabel: BootstrappingValue}
	for k, v := range labels {
		lbl[k] = v
	}
	return &rbacv1.ClusterRole{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl,
			Annotations: map[string]string{AutoUpdateAnnotation: "true"}},
		Rules: rules,
	}
}

// aggregated is a ClusterRole whose rules the aggregation controller
// gathers from the ClusterRoles labelled with selectorLabel.
func aggregated(name, selectorLabel string, labels map[string]string) *rbacv1.ClusterRole {
	cr := clusterRole(name, labels)
	cr.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
		{MatchLabels: map[string]string{selectorLabel: "true"}},
	}}
	return cr
}

// ClusterRoles returns upstream's default ClusterRoles that skiff
// reconciles at start, fresh on each call. admin, edit and view carry
// only their aggregationRule, as upstream: their rules are those of the
// system:aggregate-to-* roles (and, for admin and edit, of edit and
// view), filled in by the aggregation controller. With them: the roles of
// the controllers skiff runs (system:controller:*) and system:coredns,
// kubeadm's and k3s's role of the cluster DNS, and
// system:aggregated-metrics-reader, the role metrics-server installs for
// the resource metrics API, which skiff serves itself. Left out: roles of
// add-ons skiff does not ship (heapster, kube-aggregator, ...).
func ClusterRoles() []*rbacv1.ClusterRole {
	return append(defaultRoles(), controllerRoles()...)
}

func defaultRoles() []*rbacv1.ClusterRole {
	return []*rbacv1.ClusterRole{
		clusterRole("cluster-admin", nil,
			on(l("*"), l("*"), l("*")),
			urls(l("*"), "*"),
		),
		aggregated("admin", AggregateToAdmin, nil),
		aggregated("edit", AggregateToEdit, map[string]string{AggregateToAdmin: "true"}),
		aggregated("view", AggregateToView, map[string]string{AggregateToEdit: "true"}),
		clusterRole("system:aggregate-to-admin", map[string]string{AggregateToAdmin: "true"},
			on(l(authz), l("localsubjectaccessreviews"), l("create")),
			on(l("rbac.authorization.k8s.io"), l("rolebindings", "roles"), readWrite),
		),
		clusterRole("system:aggregate-to-edit", map[string]string{AggregateToEdit: "true"},
			// edit reads secrets and reaches into pods; view does not.
			on(l(core), l("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"), read),
			on(l(core), l("serviceaccounts"), l("impersonate")),
			on(l(core), l("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"), write),
			on(l(core), l("pods/eviction"), l("create")),
			on(l(core), l("configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
				"replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"), write),
			on(l(core), l("serviceaccounts/token"), l("create")),
			on(l(apps), l("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
				"replicasets/scale", "statefulsets", "statefulsets/scale"), write),
			on(l(autoscaling), l("horizontalpodautoscalers"), write),
			on(l(batch), l("cronjobs", "jobs"), write),
			on(l(extensions), l("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
				"networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale"), write),
			on(l(policyGroup), l("poddisruptionbudgets"), write),
			on(l(networking), l("ingresses", "networkpolicies"), write),
			on(l(coordinate), l("leases"), readWrite),
			on(l(dra), l("resourceclaims", "resourceclaimtemplates"), write),
		),
		clusterRole("system:aggregate-to-view", map[string]string{AggregateToView: "true"},
			on(l(core), l("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
				"replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
				"services/status"), read),
			on(l(core), l("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
				"replicationcontrollers/status", "resourcequotas", "resourcequotas/status"), read),
			on(l(core), l("namespaces"), read),
			on(l(discovery), l("endpointslices"), read),
			on(l(apps), l("controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
				"deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
				"statefulsets/scale", "statefulsets/status"), read),
			on(l(autoscaling), l("horizontalpodautoscalers", "horizontalpodautoscalers/status"), read),
			on(l(batch), l("cronjobs", "cronjobs/status", "jobs", "jobs/status"), read),
			on(l(extensions), l("daemonsets", "daemonsets/status", "deployments", "deployments/scale",
				"deployments/status", "ingresses", "ingresses/status", "networkpolicies", "replicasets",
				"replicasets/scale", "replicasets/status", "replicationcontrollers/scale"), read),
			on(l(policyGroup), l("poddisruptionbudgets", "poddisruptionbudgets/status"), read),
			on(l(networking), l("ingresses", "ingresses/status", "networkpolicies"), read),
			on(l(dra), l("resourceclaims", "resourceclaims/status", "resourceclaimtemplates"), read),
		),
		// metrics-server's role: whoever may view a namespace may read
		// its pods' usage (kubectl top), as a cluster with metrics-server
		// installed allows.
		clusterRole("system:aggregated-metrics-reader",
			map[string]string{AggregateToView: "true", AggregateToEdit: "true", AggregateToAdmin: "true"},
			on(l(metricsGroup), l("pods", "nodes"), read),
		),
		clusterRole("system:auth-delegator", nil,
			on(l(authn), l("tokenreviews"), l("create")),
			on(l(authz), l("subjectaccessreviews"), l("create")),
		),
		clusterRole("system:basic-user", nil,
			on(l(authz), l("selfsubjectaccessreviews", "selfsubjectrulesreviews"), l("create")),
			on(l(authn), l("selfsubjectreviews"), l("create")),
		),
		clusterRole("system:discovery", nil,
			urls(l("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
				"/readyz", "/version", "/version/"), "get"),
		),
		clusterRole("system:public-info-viewer", nil,
			urls(l("/healthz", "/livez", "/readyz", "/version", "/version/"), "get"),
		),
		clusterRole("system:monitoring", nil,
			urls(l("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz",
				"/readyz/*"), "get"),
		),
		clusterRole("system:service-account-issuer-discovery", nil,
			urls(l("/.well-known/openid-configuration", "/openid/v1/jwks"), "get"),
		),
		// Trust anchors are public: every service account may read them,
		// as a pod may mount them (clusterTrustBundle projections).
		clusterRole("system:cluster-trust-bundle-discovery", nil,
			on(l(certs), l("clustertrustbundles"), read),
		),
		clusterRole("system:kube-scheduler", nil,
			on(l(core, events), l("events"), l("create", "patch", "update")),
			on(l(coordinate), l("leases"), l("create")),
			onNamed(l(coordinate), l("leases"), l("kube-scheduler"), l("get", "update")),
			on(l(core), l("nodes"), read),
			on(l(core), l("pods"), l("delete", "get", "list", "watch")),
			on(l(core), l("bindings", "pods/binding"), l("create")),
			on(l(core), l("pods/status"), l("patch", "update")),
			on(l(core), l("replicationcontrollers", "services"), read),
			on(l(apps, extensions), l("replicasets"), read),
			on(l(apps), l("statefulsets"), read),
			on(l(policyGroup), l("poddisruptionbudgets"), read),
			on(l(core), l("persistentvolumeclaims", "persistentvolumes"), read),
			on(l(authn), l("tokenreviews"), l("create")),
			on(l(authz), l("subjectaccessreviews"), l("create")),
			on(l(storage), l("csinodes"), read),
			on(l(core), l("namespaces"), read),
			on(l(storage), l("csidrivers"), read),
			on(l(storage), l("csistoragecapacities"), read),
		),
		clusterRole("system:volume-scheduler", nil,
			on(l(core), l("persistentvolumes"), l("get", "list", "patch", "update", "watch")),
			on(l(storage), l("storageclasses"), read),
			on(l(core), l("persistentvolumeclaims"), l("get", "list", "patch", "update", "watch")),
		),
		clusterRole("system:kube-controller-manager", nil,
			on(l(core, events), l("events"), l("create", "patch", "update")),
			on(l(coordinate), l("leases"), l("create")),
			onNamed(l(coordinate), l("leases"), l("kube-controller-manager"), l("get", "update")),
			on(l(core), l("secrets", "serviceaccounts"), l("create")),
			on(l(core), l("secrets"), l("delete")),
			on(l(core), l("configmaps", "namespaces", "secrets", "serviceaccounts"), l("get")),
			on(l(core), l("secrets", "serviceaccounts"), l("update")),
			on(l(authn), l("tokenreviews"), l("create")),
			on(l(authz), l("subjectaccessreviews"), l("create")),
			on(l("*"), l("*"), l("list", "watch")),
			on(l(core), l("serviceaccounts/token"), l("create")),
		),
		clusterRole("system:kube-dns", nil,
			on(l(core), l("endpoints", "services"), l("list", "watch")),
		),
		// The cluster DNS, as kubeadm and k3s install CoreDNS.
		clusterRole("system:coredns", nil,
			on(l(core), l("endpoints", "namespaces", "pods", "services"), l("list", "watch")),
			on(l(discovery), l("endpointslices"), l("list", "watch")),
		),
		clusterRole("system:node-proxier", nil,
			on(l(core), l("endpoints", "services"), l("list", "watch")),
			on(l(core), l("nodes"), read),
			on(l(core, events), l("events"), l("create", "patch", "update")),
			on(l(discovery), l("endpointslices"), l("list", "watch")),
		),
		clusterRole("system:kubelet-api-admin", nil,
			on(l(core), l("nodes"), read),
			on(l(core), l("nodes"), l("proxy")),
			on(l(core), l("nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"), l("*")),
		),
		// system:node is the kubelet's role. As upstream it is bound to
		// nobody: the Node authorizer grants kubelets what they need,
		// limited to their own node's objects.
		clusterRole("system:node", nil,
			on(l(authn), l("tokenreviews"), l("create")),
			on(l(authz), l("localsubjectaccessreviews", "subjectaccessreviews"), l("create")),
			on(l(core), l("services"), read),
			on(l(core), l("nodes"), l("create", "get", "list", "watch")),
			on(l(core), l("nodes/status"), l("patch", "update")),
			on(l(core), l("nodes"), l("patch", "update")),
			on(l(core), l("events"), l("create", "patch", "update")),
			on(l(core), l("pods"), read),
			on(l(core), l("pods"), l("create", "delete")),
			on(l(core), l("pods/status"), l("patch", "update")),
			on(l(core), l("pods/eviction"), l("create")),
			on(l(core), l("configmaps", "secrets"), read),
			on(l(core), l("persistentvolumeclaims", "persistentvolumes"), l("get")),
			on(l(core), l("endpoints"), l("get")),
			on(l(certs), l("certificatesigningrequests"), l("create", "get", "list", "watch")),
			on(l(coordinate), l("leases"), l("create", "delete", "get", "patch", "update")),
			on(l(storage), l("volumeattachments"), l("get")),
			on(l(core), l("serviceaccounts/token"), l("create")),
			on(l(core), l("persistentvolumeclaims/status"), l("get", "patch", "update")),
			on(l(storage), l("csidrivers"), read),
			on(l(storage), l("csinodes"), l("create", "delete", "get", "patch", "update")),
			on(l(nodeGroup), l("runtimeclasses"), read),
			// clusterTrustBundle projected volumes.
			on(l(certs), l("clustertrustbundles"), read),
			// podCertificate projected volumes: the request, and the
			// UID of the pod's service account it names.
			on(l(certs), l("podcertificaterequests"), l("create", "get", "list", "watch")),
			on(l(core), l("serviceaccounts"), l("get")),
		),
		// Certificate signing requests: a joining node creates one and
		// watches for its certificate; CSRs are in none of admin, edit
		// and view, as upstream.
		clusterRole(RoleBootstrapper, nil,
			on(l(certs), l("certificatesigningrequests"), l("create", "get", "list", "watch")),
		),
		clusterRole(RoleNodeClient, nil,
			on(l(certs), l("certificatesigningrequests/nodeclient"), l("create")),
		),
		clusterRole(RoleSelfNodeClient, nil,
			on(l(certs), l("certificatesigningrequests/selfnodeclient"), l("create")),
		),
		clusterRole(RoleSelfNodeServer, nil,
			on(l(certs), l("certificatesigningrequests/selfnodeserver"), l("create")),
		),
		// Who holds one of these may approve requests to that signer
		// (besides update on certificatesigningrequests/approval). As
		// upstream, there are no signer roles: signing is the
		// controller's.
		approverRole("legacy-unknown-approver", SignerLegacyUnknown),
		approverRole("kubelet-serving-approver", SignerKubeletServing),
		approverRole("kube-apiserver-client-approver", SignerKubeAPIServerClient),
		approverRole("kube-apiserver-client-kubelet-approver", SignerKubeAPIServerClientKubelet),
	}
}

// approverRole is upstream's system:certificates.k8s.io:<name>: verb
// approve on the signer.
func approverRole(name, signer string) *rbacv1.ClusterRole {
	return clusterRole("system:certificates.k8s.io:"+name, nil,
		onNamed(l(certs), l("signers"), l(signer), l("approve")))
}

func clusterRoleBinding(name string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return bindingTo(name, name, subjects...)
}

// bindingTo is a binding named otherwise than the ClusterRole it binds.
func bindingTo(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{BootstrappingLabel: BootstrappingValue},
			Annotations: map[string]string{AutoUpdateAnnotation: "true"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: subjects,
	}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: name}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}
}

// ClusterRoleBindings returns upstream's default ClusterRoleBindings for
// the roles of ClusterRoles, fresh on each call; each binds the
// ClusterRole of its own name, but for the three of node TLS bootstrap,
// which kubeadm creates and skiff names skiff:*. system:node is bound to
// nobody, as upstream since the Node authorizer.
func ClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	return append(defaultBindings(), controllerRoleBindings()...)
}

func defaultBindings() []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		clusterRoleBinding("cluster-admin", group(SystemMasters)),
		clusterRoleBinding("system:monitoring", group(GroupMonitoring)),
		clusterRoleBinding("system:discovery", group(GroupAuthenticated)),
		clusterRoleBinding("system:basic-user", group(GroupAuthenticated)),
		clusterRoleBinding("system:public-info-viewer", group(GroupAuthenticated), group(GroupUnauthenticated)),
		clusterRoleBinding("system:node-proxier", user(UserKubeProxy)),
		clusterRoleBinding("system:kube-controller-manager", user(UserKubeController)),
		clusterRoleBinding("system:kube-dns",
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "kube-dns", Namespace: "kube-system"}),
		clusterRoleBinding("system:coredns",
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "coredns", Namespace: "kube-system"}),
		clusterRoleBinding("system:kube-scheduler", user(UserKubeScheduler)),
		clusterRoleBinding("system:volume-scheduler", user(UserKubeScheduler)),
		clusterRoleBinding("system:node"),
		// Upstream leaves this binding to the installer (kubeadm grants
		// its kubelet client more); skiff binds the narrow role, which is
		// what the kubelet's SubjectAccessReviews ask for.
		clusterRoleBinding("system:kubelet-api-admin", user(UserKubeletAPIClient)),
		clusterRoleBinding("system:service-account-issuer-discovery", group(GroupServiceAccounts)),
		clusterRoleBinding("system:cluster-trust-bundle-discovery", group(GroupServiceAccounts)),
		// Node TLS bootstrap, as kubeadm binds it (kubeadm:kubelet-bootstrap,
		// kubeadm:node-autoapprove-bootstrap and
		// kubeadm:node-autoapprove-certificate-rotation): a bootstrap token
		// may ask for a node client certificate and have it approved, and
		// a kubelet may renew its own. kubeadm binds its token group
		// system:bootstrappers:kubeadm:default-node-token; skiff every
		// bootstrap token, which `skiff token create` makes for joining
		// nodes.
		bindingTo("skiff:kubelet-bootstrap", RoleBootstrapper, group(GroupBootstrappers)),
		bindingTo("skiff:node-autoapprove-bootstrap", RoleNodeClient, group(GroupBootstrappers)),
		bindingTo("skiff:node-autoapprove-certificate-rotation", RoleSelfNodeClient, group(GroupNodes)),
		bindingTo("skiff:node-autoapprove-serving-certificate", RoleSelfNodeServer, group(GroupNodes)),
	}
}
