// Package customresource builds, at run time, the registry descriptors of
// the custom resources a CustomResourceDefinition defines, so that the API
// server (internal/apiserver) serves them through the same generic code as
// the built-in resources: one *registry.Resource per served version, whose
// objects are *unstructured.Unstructured.
//
// # What the library does and what we do
//
// The schema engine is upstream's, from k8s.io/apiextensions-apiserver, as
// ARCHITECTURE.md rule 4 allows for this bounded piece: structural schemas
// (schema.NewStructural), pruning of unknown fields (schema/pruning),
// coercion of embedded ObjectMeta (schema/objectmeta), defaulting
// (schema/defaulting), OpenAPI validation (apiserver/validation), list-type
// invariants (schema/listtype) and x-kubernetes-validations rules in CEL
// (schema/cel). This package decides when each runs and in which order —
// the order of upstream's custom resource handler and strategy — and
// writes the rest itself: the write-path preparation (status and
// generation), the scale subresource, printer columns, selectable fields,
// names and version conversion.
//
// # Order of work on a write
//
// The server calls Resource.Prune on the decoded body: root metadata is
// normalised through ObjectMeta (its unknown fields reported as
// "metadata.foo"), fields the version's schema does not know are dropped
// and reported ("spec.foo", "spec.items[0].bar"), non-nullable nulls
// without a default are dropped, and the ObjectMeta of embedded resources
// is coerced. Then Strategy.Default applies the schema's defaults, the
// Prepare funcs keep status and generation as upstream does, and the
// Validate funcs check apiVersion/kind, the OpenAPI schema, the scale
// paths, embedded resources, list sets and maps and, when none of those
// found a blocking error, the CEL rules (transition rules with oldSelf on
// updates, errors in unchanged fields ratcheted as upstream).
//
// # Where skiff differs from upstream
//
//   - A metadata object that cannot be decoded as ObjectMeta is reported by
//     the Validate funcs as a 422 on "metadata"; upstream refuses it while
//     decoding, with a 400. Resource.Prune has no way to fail.
//   - Another served version is stored as the storage version: with
//     strategy None only apiVersion is rewritten, as upstream's
//     nopConverter does; with strategy Webhook the webhook client that
//     Resources is given converts, one object at a time (upstream sends
//     a list in one review).
//   - A CRD whose storage version is not served cannot be served (Resources
//     fails): the registry has no stored-but-not-served descriptor.
package customresource
