// Package openapi generates the OpenAPI documents the API server publishes
// at /openapi/v2 and /openapi/v3: the schema of every served type, by
// reflection over the k8s.io/api Go types, and the paths and operations of
// every served resource.
//
// Schemas carry what upstream's (kube-openapi's generated) ones carry and
// clients read: property names and types as the JSON encoding has them
// (embedded structs flattened), descriptions from the types' SwaggerDoc(),
// references between definitions named as upstream names them
// ("io.k8s.api.core.v1.Pod"), the strategic-merge-patch strategies and
// merge keys from the patchStrategy/patchMergeKey struct tags, the list and
// map semantics (+listType, +listMapKey, +mapType, +structType), required
// fields and enums from the comment markers, and
// x-kubernetes-group-version-kind on the top-level kinds. Comment markers
// are not visible to reflection: markergen reads them from the k8s.io/api
// sources into zz_generated.markers.go (go generate).
//
// kubectl explain, kubectl apply's strategic-merge patches and its server
// field-validation check, and a server-side-apply type converter
// (Definitions feeds managedfields.NewTypeConverter) all consume these.
//
// Differences from upstream, on purpose or for now: no "default" values
// (upstream publishes +default markers and `default: {}` on struct
// fields), no x-kubernetes-validations, no x-kubernetes-unions, and the
// operations list fewer query parameters than upstream's.
package openapi
