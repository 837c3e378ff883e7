// Package apps is the registry of the apps/v1 API group: deployments,
// replicasets, statefulsets, daemonsets and controllerrevisions. For each it
// gives the discovery names, defaulting and validation as upstream's
// apps/v1 defaults and validation do, the status and scale subresources,
// `kubectl get` columns and field selectors. Pod templates are defaulted and
// validated by the core registry (core.DefaultPodTemplateSpec,
// core.ValidatePodTemplateSpec); this package adds the workload rules around
// them (selector matches template, restartPolicy Always, ...).
package apps
