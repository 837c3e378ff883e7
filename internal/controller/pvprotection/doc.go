// Package pvprotection holds upstream's two storage-object-in-use
// protection controllers, which keep a claim or a volume from vanishing
// while it is still in use:
//
//   - pvc-protection (ClaimProtection) adds the kubernetes.io/pvc-protection
//     finalizer to every PersistentVolumeClaim and removes it from a claim
//     being deleted once no scheduled pod uses the claim, found through an
//     index of pods by the claims they use and, to catch pods its cache has
//     not seen yet, a live list of the claim's namespace.
//   - pv-protection (VolumeProtection) adds kubernetes.io/pv-protection to
//     every PersistentVolume and removes it from a volume being deleted once
//     the volume is not Bound.
//
// Both only ever add or remove their own finalizer, with an Update that
// carries the cached resourceVersion, so a stale cache costs a 409 and a
// retry, never a lost write.
//
// The pod index (IndexPodsByClaim) is shared: the persistentvolume binder
// reads it too, and one copy lives on the shared pod informer.
//
// As upstream, a claim stays protected while a scheduled pod object
// refers to it, even a pod that has Succeeded or Failed (upstream's
// podUsesPVC does not look at the phase; kubernetes/kubernetes#120756
// is the open request to change that); a generic ephemeral volume's claim
// is released as soon as its pod is shut down (deleted with grace period
// 0). Where upstream batches a namespace's claims under one lazily made
// live pod list, skiff shares a namespace's live list for about a second.
package pvprotection
