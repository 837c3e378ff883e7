// Package localpath is skiff's built-in volume provisioner, "local-path"
// as k3s users know it: a claim of a StorageClass whose provisioner is
// skiff.io/local-path gets a directory on the node its first pod is
// scheduled to, <data-dir>/storage/<volume name>.
//
// # The parts and the flow
//
// The server creates the StorageClass "local-path" at start when it is
// missing (the default class unless another is; WaitForFirstConsumer,
// reclaim policy Delete, expandable), unless --disable-local-storage.
//
//  1. Each node agent announces its storage directory in the Node
//     annotation skiff.io/local-path-dir.
//  2. The binder (internal/controller/persistentvolume) hands a claim to
//     the class's provisioner (volume.kubernetes.io/storage-provisioner);
//     the scheduler picks a node for the pod and writes it in the claim's
//     volume.kubernetes.io/selected-node.
//  3. The Controller (control plane, the controller "local-path-provisioner",
//     acting as system:serviceaccount:kube-system:local-path-provisioner)
//     creates the volume "pvc-<claim uid>" pre-bound to the claim: a
//     `local` volume at the node's directory, with node affinity to the
//     node's kubernetes.io/hostname, the label skiff.io/local-path-node
//     naming the node, the annotation pv.kubernetes.io/provisioned-by and
//     the finalizer skiff.io/local-path. The binder binds it; the scheduler
//     binds the pod.
//  4. The kubelet creates the directory (mode 0777) at the volume's first
//     mount (internal/kubelet/volume), only for a volume Owns says is the
//     node's.
//  5. When the claim is deleted the binder marks the volume Released;
//     with reclaim policy Delete the Controller deletes it. The node's
//     Cleaner, which watches the volumes labelled with its node, removes
//     the directory once no claim is bound (the pv-protection finalizer
//     is gone) and then drops the finalizer. Retain keeps the volume
//     Released; deleting it by hand keeps the data.
//
// # Security
//
// A node never creates volumes: the control plane does, and a node may
// only list and watch the volumes labelled with its name and remove the
// local-path finalizer from them (the Node authorizer and NodeRestriction).
// It touches only the directory it would have given the volume, checked
// by Owns from its own storage directory and the volume's name, so that a
// volume written by hand with another path cannot make it remove or
// create anything else.
//
// # Differences from k3s's local-path-provisioner
//
// No helper pods (the kubelet and the agent do the file work), no
// ConfigMap of per-node paths, no shared (ReadWriteMany) volumes, no
// Immediate binding mode (a claim of such a class is refused with an
// event), no size limit: capacity is what the claim asked for, not
// enforced. A volume whose node is gone stays until the node returns (its
// finalizer waits for the directory's removal); remove the finalizer by
// hand to give it up.
package localpath
