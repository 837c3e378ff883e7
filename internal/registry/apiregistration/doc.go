// Package apiregistration is the registry of the apiregistration.k8s.io/v1
// API group: APIServices, cluster-scoped, with their status subresource.
// For each it gives the discovery names, upstream's v1 defaults (a service
// reference's port 443), upstream's validation with its messages and field
// paths, upstream's strategy and `kubectl get apiservices` columns.
//
// This package only keeps the objects well formed. Proxying a group
// version to the service an APIService names, and checking that service's
// availability, is not its business.
//
// The object handled is the v1 type of k8s.io/kube-aggregator, as for every
// other group (skiff has no internal version); validation and strategy are
// our own, written after kube-aggregator's so that skiff refuses what
// upstream refuses, with the same messages:
//
//   - The name must be "<spec.version>.<spec.group>" ("v1beta1.metrics.k8s.io";
//     "v1." for the legacy core group, the only version that may have an
//     empty group), and a path segment. generateName is therefore useless,
//     as upstream: a generated name never matches.
//   - Create resets status and, for a local APIService (no spec.service),
//     records it as Available=True with reason Local at once.
//   - Upstream's strategy leaves metadata.generation alone: it keeps what
//     the creating client sent and never bumps it. So does skiff, unlike
//     the registry's default for types with a spec.
//   - A write to the main resource keeps status; a write to /status keeps
//     the spec, labels, annotations, finalizers and owner references.
package apiregistration
