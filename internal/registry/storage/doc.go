// Package storage is the registry of the storage.k8s.io/v1 API group:
// StorageClasses ("sc"), CSIDrivers, CSINodes, VolumeAttachments (with
// their status subresource), CSIStorageCapacities (namespaced) and
// VolumeAttributesClasses ("vac"). For each it gives the discovery names,
// upstream's v1 defaults, upstream's validation with its messages and field
// paths, upstream's create and update rules and `kubectl get` columns.
//
// This package only keeps the objects well formed. Provisioning volumes
// for a class, attaching them, registering drivers on nodes and reporting
// capacity is not its business.
//
// The objects handled are the v1 types of k8s.io/api (skiff has no
// internal version); validation and strategy are our own, written after
// upstream's so that skiff refuses what upstream refuses, with the same
// messages. Upstream behaviour worth knowing:
//
//   - Kubernetes 1.37 enforces declarative validation at beta for some
//     storage fields, and where it does the client sees the declarative
//     error rather than the handwritten one. So a change to a
//     StorageClass's provisioner, parameters, reclaimPolicy or
//     volumeBindingMode, or to a VolumeAttachment's spec, reads
//     `<field>: Invalid value: null: field is immutable` (no longer
//     "Forbidden: updates to provisioner are forbidden."), and a new
//     VolumeAttachment's spec.attacher is checked as a case-insensitive DNS
//     subdomain of at most 63 bytes, with a lone Required when it is empty.
//     VolumeAttributesClass, CSIDriver and CSINode keep the handwritten
//     messages ("Forbidden: updates to driverName are forbidden.").
//   - Upstream's paths and quirks are kept where a client can see them:
//     CSIDriver's attachRequired is reported at spec.attachedRequired,
//     CSINode topology key errors at the driver (spec.drivers[i]), a
//     VolumeAttachment error message over 1024 bytes as "may not be more
//     than 262144 bytes", an allowedTopologies term without expressions as
//     a Duplicate.
//   - Create leaves metadata.generation as the client sent it, as
//     upstream does for every type here; only a CSIDriver's spec change
//     bumps it.
//   - CSIDriver, CSINode, StorageClass, VolumeAttachment and
//     VolumeAttributesClass answer a DELETE with the deleted object.
//
// Where skiff differs from upstream (docs/compatibility.md):
//
//   - `kubectl get storageclasses` marks with "(default)" every class
//     annotated as default, as upstream's printer long did; a newer
//     upstream marks only the effective default (the newest such class)
//     when it can see the whole list. A table row here sees one object.
//   - csinodes/status is not served: its only field, storageHealth, is
//     behind the alpha CSIVolumeHealth gate, off by default, under which
//     upstream drops it too. CSINode status is cleared on create and kept
//     on update.
//   - A VolumeAttachment's inline volume spec gets upstream's inline rules
//     and the CSI source's checks; the fields of any other volume source
//     in it are not checked one by one (a CSI source is required there
//     anyway), and the in-tree sources' defaults are not applied.
package storage
