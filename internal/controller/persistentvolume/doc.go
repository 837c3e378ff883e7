// Package persistentvolume is the PersistentVolume binder (upstream's
// "persistentvolume-binder", pkg/controller/volume/persistentvolume): it
// binds PersistentVolumeClaims to PersistentVolumes, hands claims without
// a volume to their StorageClass's external provisioner, keeps both sides'
// phases, and carries out a released volume's reclaim policy.
//
// # Binding
//
// A claim and a volume point at each other: pv.spec.claimRef (with the
// claim's UID once bound) and pvc.spec.volumeName. The binder writes the
// volume first (claimRef, annotation pv.kubernetes.io/bound-by-controller
// when it chose the pair, phase Bound), then the claim (volumeName,
// pv.kubernetes.io/bind-completed, bound-by-controller when it chose the
// volume, phase Bound with the volume's capacity and access modes). Any
// step may fail or race another writer; the next sync finishes or undoes
// it. A claim with pv.kubernetes.io/bind-completed is "bound" and is never
// matched again: losing its volume makes it Lost.
//
// An unbound claim gets the smallest Available volume with its storage
// class ("" is no class), a volumeMode and volumeAttributesClassName equal
// to its own, at least its request, its selector's labels and all its
// access modes, preferring volumes with the fewest extra access modes
// (upstream's index by access modes). A volume pre-bound to the claim
// (claimRef by name, without UID) is taken whatever its size order. A
// claim naming a volume (spec.volumeName) is bound to it if it is free and
// fits, and waits otherwise.
//
// A claim of a WaitForFirstConsumer class is left to the scheduler until it
// carries volume.kubernetes.io/selected-node. A claim without a volume
// whose class has a provisioner gets volume.kubernetes.io/storage-provisioner
// (and the beta annotation) naming it; the provisioner creates a volume
// pre-bound to the claim, which the binder then binds. A claim without a
// class is given the default StorageClass when one appears (upstream's
// retroactive default class).
//
// # Reclaiming
//
// A bound volume whose claim is gone becomes Released, keeping claimRef.
// Retain leaves it so. Delete leaves a volume provisioned by an external
// provisioner (pv.kubernetes.io/provisioned-by not under kubernetes.io/)
// or a CSI volume to that provisioner; any other volume needs an in-tree
// deleter, and since skiff has none it goes Failed, as upstream's does
// when no plugin matches. Recycle needs an in-tree recycler: Failed too.
//
// # Caches and writes
//
// The binder reads claims, volumes, classes and pods from the shared
// informers and writes with Update and UpdateStatus carrying the cached
// resourceVersion, so a decision made on stale data fails with 409 and is
// made again. It remembers what it wrote until its informers catch up
// (written.go), so its own writes do not make it decide on stale data. One
// worker per queue, as upstream: two concurrent syncs could otherwise race
// each other to bind one volume to two claims (the API would refuse the
// second, at the cost of a retry). Every claim and volume is looked at
// again every SyncPeriod (15 s).
//
// # Differences from upstream
//
// No in-tree volume plugins: nothing is provisioned, deleted or recycled
// in-process, so a provisioner or provisioned-by under kubernetes.io/
// fails with upstream's "no volume plugin matched" message, and Delete of
// a volume without an external provisioner or Recycle marks it Failed.
// No CSI migration (pv.kubernetes.io/migrated-to is honoured, never set)
// and no kubernetes.io/pv-controller finalizer (it guards in-tree deletes
// only). Reclaiming runs in the sync itself rather than as an asynchronous
// operation. Before calling a bound claim Lost the binder asks the API
// server for its volume, so a lagging cache cannot make a claim Lost.
package persistentvolume
