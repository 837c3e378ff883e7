// Package admissionregistration is the registry of the
// admissionregistration.k8s.io/v1 API group: mutating and validating
// webhook configurations, validating admission policies (with their status
// subresource), mutating admission policies, and the bindings of both. For
// each it gives the discovery names, upstream's v1 defaults, upstream's
// validation with its messages and field paths, and `kubectl get` columns.
//
// This package only keeps the objects well formed. Calling the webhooks and
// evaluating the policies on admission is not its business.
//
// CEL expressions (match conditions, validations, message expressions,
// audit annotation values, variables, and a mutating policy's apply
// configurations and JSON patches, with the patch types Object and
// JSONPatch in scope) are compiled with k8s.io/apiserver's admission CEL
// compiler in the environments upstream uses: a new or changed expression
// in the NewExpressions environment, one already stored in the
// StoredExpressions one. So skiff refuses to store what upstream
// refuses, with upstream's "compilation failed: ..." messages.
//
// Updates relax some checks as upstream does, so that an object stored by
// an older server can still be changed: the webhooks' sideEffects may stay
// Unknown or Some, admissionReviewVersions may lack a known version,
// webhook names may repeat and selectors may keep invalid label values when
// the stored object already did; unchanged match conditions are not
// compiled again.
//
// Where skiff differs from upstream (docs/compatibility.md):
//
//   - Upstream's policy and binding strategies also authorize the writer
//     against spec.paramKind and spec.paramRef: a writer who may not read
//     the parameter resource gets a Forbidden on spec.paramKind or
//     spec.paramRef. That check needs the request's user and the
//     authorizer, which a registry.Strategy does not have; skiff leaves it
//     out.
//   - On an update of a mutating policy, upstream compiles an unchanged
//     JSON patch expression in the NewExpressions environment (it looks
//     the expression up among the stored apply configurations); skiff
//     looks it up among the stored JSON patches, so an unchanged JSON
//     patch is checked in the StoredExpressions environment, as every
//     other unchanged expression is.
package admissionregistration
