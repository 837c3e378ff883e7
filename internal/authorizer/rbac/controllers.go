package rbac

import rbacv1 "k8s.io/api/rbac/v1"

// ControllerRolePrefix starts the name of every controller's ClusterRole
// and ClusterRoleBinding, as upstream names them.
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
	}
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
