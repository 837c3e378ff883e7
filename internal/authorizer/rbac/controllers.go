package rbac

import (
	certv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControllerRolePrefix starts the name of every controller's role and
// binding (ClusterRole and ClusterRoleBinding, or Role and RoleBinding in
// kube-system), as upstream names them.
const ControllerRolePrefix = "system:controller:"

// ControllerNamespace holds the service accounts the controllers act as.
const ControllerNamespace = "kube-system"

// eventRule lets a controller record events in both event groups.
func eventRule() rbacv1.PolicyRule {
	return on(l(core, events), l("events"), l("create", "patch", "update"))
}

// controllerRole is one controller's ClusterRole, named after the service
// account it acts as.
func controllerRole(account string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return clusterRole(ControllerRolePrefix+account, nil, append(rules, eventRule())...)
}

// controllerRoles are upstream's per-controller roles
// (system:controller:<account>) for the controllers skiff runs, with
// upstream's rules. A controller reads through the controller-manager's
// shared informers, which act as system:kube-controller-manager (list and
// watch of everything); its own role covers its reads outside them and
// its writes.
func controllerRoles() []*rbacv1.ClusterRole {
	return []*rbacv1.ClusterRole{
		// csrapproving, csrsigning and csrcleaner. approve and sign on
		// signers are checked by the API server's CSR approval and
		// status subresources; legacy-unknown stays among the signers
		// as upstream has it, though skiff serves no API version that
		// can ask for it.
		controllerRole("certificate-controller",
			on(l(certs), l("certificatesigningrequests"), l("delete", "get", "list", "watch")),
			on(l(certs), l("certificatesigningrequests/approval", "certificatesigningrequests/status"), l("update")),
			// kubelet-serving: skiff's approver also approves a node's
			// own serving certificate (upstream's approves none).
			onNamed(l(certs), l("signers"), l(certv1.KubeAPIServerClientKubeletSignerName, certv1.KubeletServingSignerName), l("approve")),
			onNamed(l(certs), l("signers"), l(legacyUnknownSigner, certv1.KubeAPIServerClientSignerName,
				certv1.KubeAPIServerClientKubeletSignerName, certv1.KubeletServingSignerName), l("sign")),
			on(l(authz), l("subjectaccessreviews"), l("create")),
		),
		controllerRole("podcertificaterequestcleaner",
			on(l(certs), l("podcertificaterequests"), l("delete", "get", "list", "watch")),
		),
		controllerRole("cronjob-controller",
			on(l(batch), l("cronjobs"), l("get", "list", "update", "watch")),
			on(l(batch), l("jobs"), l("create", "delete", "get", "list", "patch", "update", "watch")),
			on(l(batch), l("cronjobs/status"), l("update")),
			on(l(batch), l("cronjobs/finalizers"), l("update")),
			on(l(core), l("pods"), l("delete", "list")),
		),
		controllerRole("daemon-set-controller",
			on(l(apps, extensions), l("daemonsets"), read),
			on(l(apps, extensions), l("daemonsets/status"), l("update")),
			on(l(apps, extensions), l("daemonsets/finalizers"), l("update")),
			on(l(core), l("nodes"), l("list", "watch")),
			on(l(core), l("pods"), l("create", "delete", "list", "patch", "watch")),
			on(l(core), l("pods/binding"), l("create")),
			on(l(apps), l("controllerrevisions"), l("create", "delete", "get", "list", "patch", "update", "watch")),
		),
		controllerRole("deployment-controller",
			on(l(apps, extensions), l("deployments"), l("get", "list", "update", "watch")),
			on(l(apps, extensions), l("deployments/status"), l("update")),
			on(l(apps, extensions), l("deployments/finalizers"), l("update")),
			on(l(apps, extensions), l("replicasets"), l("create", "delete", "get", "list", "patch", "update", "watch")),
			// The rolling update looks at pods, and recreate at their state.
			on(l(core), l("pods"), l("get", "list", "update", "watch")),
		),
		controllerRole("disruption-controller",
			on(l(apps, extensions), l("deployments"), read),
			on(l(apps, extensions), l("replicasets"), read),
			on(l(core), l("replicationcontrollers"), read),
			on(l(policyGroup), l("poddisruptionbudgets"), read),
			on(l(apps), l("statefulsets"), read),
			on(l(policyGroup), l("poddisruptionbudgets/status"), l("update")),
			on(l("*"), l("*/scale"), l("get")),
			on(l(core), l("pods/status"), l("patch", "update")),
		),
		controllerRole("endpoint-controller",
			on(l(core), l("pods", "services"), read),
			on(l(core), l("endpoints"), l("create", "delete", "get", "list", "update")),
			on(l(core), l("endpoints/restricted"), l("create")),
		),
		controllerRole("endpointslice-controller",
			on(l(core), l("nodes", "pods", "services"), read),
			on(l(core), l("services/finalizers"), l("update")),
			on(l(discovery), l("endpointslices"), l("create", "delete", "get", "list", "update", "watch")),
		),
		controllerRole("endpointslicemirroring-controller",
			on(l(core), l("endpoints", "services"), read),
			on(l(core), l("endpoints/finalizers", "services/finalizers"), l("update")),
			on(l(discovery), l("endpointslices"), l("create", "delete", "get", "list", "update")),
		),
		controllerRole("generic-garbage-collector",
			on(l("*"), l("*"), l("delete", "get", "list", "patch", "update", "watch")),
		),
		// Upstream's rule for reading heapster's service is left out:
		// heapster is long gone, and skiff ships no role of it.
		controllerRole("horizontal-pod-autoscaler",
			on(l(autoscaling), l("horizontalpodautoscalers"), read),
			on(l(autoscaling), l("horizontalpodautoscalers/status"), l("update")),
			on(l("*"), l("*/scale"), l("get", "update")),
			on(l(core), l("pods"), l("list")),
			on(l(metricsGroup), l("pods"), l("list")),
			on(l(customMetrics), l("*"), l("get", "list")),
			on(l(externalMetrics), l("*"), l("get", "list")),
		),
		controllerRole("job-controller",
			on(l(batch), l("jobs"), l("get", "list", "patch", "update", "watch")),
			on(l(batch), l("jobs/status"), l("update")),
			on(l(batch), l("jobs/finalizers"), l("update")),
			on(l(core), l("pods"), l("create", "delete", "list", "patch", "watch")),
			on(l(core), l("pods/status"), l("patch", "update")),
		),
		controllerRole("namespace-controller",
			on(l(core), l("namespaces"), l("delete", "get", "list", "watch")),
			on(l(core), l("namespaces/finalize", "namespaces/status"), l("update")),
			on(l("*"), l("*"), l("delete", "deletecollection", "get", "list")),
		),
		controllerRole("node-controller",
			on(l(core), l("nodes"), l("delete", "get", "list", "patch", "update")),
			on(l(core), l("nodes/status"), l("patch", "update")),
			on(l(core), l("pods/status"), l("patch", "update")),
			on(l(core), l("pods"), l("delete", "list")),
		),
		controllerRole("replicaset-controller",
			on(l(apps, extensions), l("replicasets"), l("get", "list", "update", "watch")),
			on(l(apps, extensions), l("replicasets/status"), l("update")),
			on(l(apps, extensions), l("replicasets/finalizers"), l("update")),
			on(l(core), l("pods"), l("create", "delete", "list", "patch", "watch")),
		),
		controllerRole("replication-controller",
			on(l(core), l("replicationcontrollers"), l("get", "list", "update", "watch")),
			on(l(core), l("replicationcontrollers/status"), l("update")),
			on(l(core), l("replicationcontrollers/finalizers"), l("update")),
			on(l(core), l("pods"), l("create", "delete", "list", "patch", "watch")),
		),
		controllerRole("resourcequota-controller",
			on(l("*"), l("*"), l("list", "watch")),
			on(l(core), l("resourcequotas/status"), l("update")),
		),
		controllerRole("root-ca-cert-publisher",
			on(l(core), l("configmaps"), l("create", "update")),
		),
		controllerRole("service-account-controller",
			on(l(core), l("serviceaccounts"), l("create")),
		),
		controllerRole("service-controller",
			on(l(core), l("services"), l("get", "list", "patch", "update", "watch")),
			on(l(core), l("services/status"), l("patch", "update")),
			on(l(core), l("nodes"), l("list", "watch")),
		),
		controllerRole("statefulset-controller",
			on(l(core), l("pods"), l("create", "delete", "get", "list", "patch", "update", "watch")),
			on(l(apps), l("statefulsets"), read),
			on(l(apps), l("statefulsets/status"), l("update")),
			on(l(apps), l("statefulsets/finalizers"), l("update")),
			on(l(core), l("persistentvolumeclaims"), l("create", "delete", "get", "patch", "update")),
			on(l(apps), l("controllerrevisions"), l("create", "delete", "get", "list", "patch", "update", "watch")),
		),
		controllerRole("ttl-after-finished-controller",
			on(l(batch), l("jobs"), l("delete", "get", "list", "watch")),
		),
		controllerRole("validatingadmissionpolicy-status-controller",
			on(l("admissionregistration.k8s.io"), l("validatingadmissionpolicies"), l("get", "list", "watch")),
			on(l("admissionregistration.k8s.io"), l("validatingadmissionpolicies/status"), l("get", "patch", "update")),
		),
		// Upstream's roles, less what only its in-tree volume plugins use
		// (endpoints, services, secrets, nodes): skiff has none.
		controllerRole("persistent-volume-binder",
			on(l(core), l("persistentvolumes"), l("create", "delete", "get", "list", "update", "watch")),
			on(l(core), l("persistentvolumes/status"), l("update")),
			on(l(core), l("persistentvolumeclaims"), l("get", "list", "update", "watch")),
			on(l(core), l("persistentvolumeclaims/status"), l("update")),
			on(l(core), l("pods"), l("create", "delete", "get", "list", "watch")),
			on(l(storage), l("storageclasses"), read),
		),
		controllerRole("pvc-protection-controller",
			on(l(core), l("persistentvolumeclaims"), l("get", "list", "update", "watch")),
			on(l(core), l("pods"), l("get", "list", "watch")),
		),
		controllerRole("pv-protection-controller",
			on(l(core), l("persistentvolumes"), l("get", "list", "update", "watch")),
		),
		// Upstream's, less what only in-tree volume plugins use
		// (storageclasses, services, endpoints, secrets).
		controllerRole("expand-controller",
			on(l(core), l("persistentvolumes"), l("get", "list", "watch", "update", "patch")),
			on(l(core), l("persistentvolumeclaims"), l("get", "list", "watch")),
			on(l(core), l("persistentvolumeclaims/status"), l("update", "patch")),
		),
		// skiff's built-in local-path provisioner (internal/localpath),
		// with what upstream's external provisioners are granted.
		controllerRole("local-path-provisioner",
			on(l(core), l("persistentvolumes"), l("create", "delete", "get", "list", "watch")),
			on(l(core), l("persistentvolumeclaims"), l("get", "list", "update", "watch")),
			on(l(core), l("nodes"), read),
			on(l(storage), l("storageclasses"), read),
		),
	}
}

// legacyUnknownSigner is certificates.k8s.io/v1beta1's default signer.
const legacyUnknownSigner = "kubernetes.io/legacy-unknown"

// controllerNamespacedRoles are the controller roles upstream grants in
// kube-system alone, as Roles there.
func controllerNamespacedRoles() []*rbacv1.Role {
	return []*rbacv1.Role{
		// tokencleaner: bootstrap token Secrets live in kube-system.
		namespacedRole(ControllerNamespace, ControllerRolePrefix+"token-cleaner",
			on(l(core), l("secrets"), l("delete", "get", "list", "watch")),
			eventRule(),
		),
	}
}

func namespacedRole(namespace, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels:      map[string]string{BootstrappingLabel: BootstrappingValue},
			Annotations: map[string]string{AutoUpdateAnnotation: "true"}},
		Rules: rules,
	}
}

// ExtensionAuthenticationReader is upstream's Role in kube-system that
// reads the ConfigMap extension-apiserver-authentication: how an
// extension API server (metrics-server) learns whom to trust. Charts
// bind their server's service account to it.
const ExtensionAuthenticationReader = "extension-apiserver-authentication-reader"

// Roles returns upstream's default Roles that skiff reconciles at start,
// fresh on each call: those of the controllers that upstream grants
// rights in kube-system alone (system:controller:token-cleaner), and
// extension-apiserver-authentication-reader.
func Roles() []*rbacv1.Role {
	return append(controllerNamespacedRoles(),
		namespacedRole(ControllerNamespace, ExtensionAuthenticationReader,
			onNamed(l(core), l("configmaps"), l("extension-apiserver-authentication"), l("get", "list", "watch"))))
}

// RoleBindings returns the RoleBindings of Roles, fresh on each call:
// each controller Role bound to its service account, in the Role's
// namespace, under the Role's name, as upstream.
func RoleBindings() []*rbacv1.RoleBinding {
	var out []*rbacv1.RoleBinding
	for _, r := range controllerNamespacedRoles() {
		account := r.Name[len(ControllerRolePrefix):]
		out = append(out, &rbacv1.RoleBinding{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace,
				Labels:      map[string]string{BootstrappingLabel: BootstrappingValue},
				Annotations: map[string]string{AutoUpdateAnnotation: "true"}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: ControllerNamespace}},
		})
	}
	// As upstream: the scheduler and the controller manager read it too.
	return append(out, &rbacv1.RoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "system::" + ExtensionAuthenticationReader, Namespace: ControllerNamespace,
			Labels:      map[string]string{BootstrappingLabel: BootstrappingValue},
			Annotations: map[string]string{AutoUpdateAnnotation: "true"}},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ExtensionAuthenticationReader},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:kube-controller-manager"},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:kube-scheduler"},
		},
	})
}

// controllerRoleBindings bind each controller role to its service account
// in kube-system, as upstream.
func controllerRoleBindings() []*rbacv1.ClusterRoleBinding {
	var out []*rbacv1.ClusterRoleBinding
	for _, r := range controllerRoles() {
		account := r.Name[len(ControllerRolePrefix):]
		out = append(out, clusterRoleBinding(r.Name,
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: ControllerNamespace}))
	}
	return out
}
