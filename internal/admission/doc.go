// Package admission holds skiff's built-in admission plugins: the checks and
// mutations the API server applies to writes after defaulting and before
// validation, as upstream's NamespaceLifecycle, Priority, RuntimeClass,
// ServiceAccount (the token volume), DefaultTolerationSeconds style pod
// defaults, the service IP and node port allocators, PodSecurity (the Pod Security
// Standards that namespace labels ask for, checked by upstream's
// k8s.io/pod-security-admission library), and the certificate plugins
// (CertificateApproval, CertificateSigning, CertificateSubjectRestriction,
// and the requester of a CertificateSigningRequest), NodeRestriction,
// LimitRanger, ResourceQuota (which charges quota usage as it admits), and
// the storage plugins (DefaultStorageClass, StorageObjectInUseProtection,
// PersistentVolumeClaimResize) do.
package admission
